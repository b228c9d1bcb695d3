"""What an id key holds while its job waits in the queue's `later` set without a record.

The value is the job's state (`scheduled`: its first run waits; `failed`: a retry waits;
`grouped`: it waits its group's turn, protocol 2.17),
one space, then the stream entry the job becomes once due, as one MessagePack array of
strings: field, value, field, value, and so on. The enqueue and fail scripts write it
with Redis's `cmsgpack.pack`, so only arrays and strings (or byte strings) are read here;
anything else is not a waiting job's value, and the lookup goes on as for an unknown id
key rather than reading a wrong job.
"""

from __future__ import annotations

from typing import NamedTuple

# The states a job waits in without a record, as its id key spells them. `grouped`
# (protocol 2.17): the job waits its group's turn, in the group's line rather than `later`;
# it is reported `pending`.
WAITING_STATES = frozenset({"scheduled", "failed", "grouped"})

# Array headers: fixarray holds up to 15 items in the marker itself; array16 and array32
# give the count in the next 2 or 4 bytes (big-endian).
_FIXARRAY_MIN, _FIXARRAY_MAX = 0x90, 0x9F
_ARRAY16, _ARRAY32 = 0xDC, 0xDD

# String headers: fixstr holds up to 31 bytes' length in the marker; the others give the
# length in the next 1, 2 or 4 bytes. A packer may write a byte string as bin instead of
# str: both carry bytes as they are, which a payload (msgpack, say) needs.
_FIXSTR_MIN, _FIXSTR_MAX = 0xA0, 0xBF
_LENGTH_BYTES = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}


class Waiting(NamedTuple):
    """A job waiting in `later`: its state and the fields of the entry it becomes."""

    state: str
    fields: dict[str, bytes]


def parse_waiting(value: bytes) -> Waiting | None:
    """The waiting job an id key's value holds, or None for a value of another form (an
    entry id, `done <entry id>`) or a malformed one."""
    head, sep, packed = value.partition(b" ")
    state = head.decode("ascii", "replace")
    if not sep or state not in WAITING_STATES:
        return None
    items = unpack_strings(packed)
    if items is None or len(items) % 2:
        return None
    fields = {}
    for i in range(0, len(items), 2):
        try:
            name = items[i].decode("utf-8")
        except UnicodeDecodeError:
            return None
        fields[name] = items[i + 1]
    return Waiting(state=state, fields=fields)


def unpack_strings(data: bytes) -> list[bytes] | None:
    """One MessagePack array of strings (str or bin), decoded to their bytes; None unless
    `data` is exactly that, with nothing after it."""
    header = _array_header(data)
    if header is None:
        return None
    count, at = header
    items = []
    # A count larger than the data could hold stops at the first item missing, before
    # anything of that size is allocated.
    for _ in range(count):
        item = _string_at(data, at)
        if item is None:
            return None
        value, at = item
        items.append(value)
    return items if at == len(data) else None


def _array_header(data: bytes) -> tuple[int, int] | None:
    """The item count of the array `data` starts with, and where its first item is."""
    if not data:
        return None
    marker = data[0]
    if _FIXARRAY_MIN <= marker <= _FIXARRAY_MAX:
        return marker - _FIXARRAY_MIN, 1
    width = {_ARRAY16: 2, _ARRAY32: 4}.get(marker)
    if width is None or len(data) < 1 + width:
        return None
    return int.from_bytes(data[1 : 1 + width], "big"), 1 + width


def _string_at(data: bytes, at: int) -> tuple[bytes, int] | None:
    """The string at offset `at` and the offset past it; None when there is no whole
    string there."""
    if at >= len(data):
        return None
    marker = data[at]
    if _FIXSTR_MIN <= marker <= _FIXSTR_MAX:
        length, start = marker - _FIXSTR_MIN, at + 1
    else:
        width = _LENGTH_BYTES.get(marker)
        if width is None or len(data) < at + 1 + width:
            return None
        length, start = int.from_bytes(data[at + 1 : at + 1 + width], "big"), at + 1 + width
    end = start + length
    if end > len(data):
        return None
    return data[start:end], end
