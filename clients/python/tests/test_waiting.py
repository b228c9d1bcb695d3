"""The id key's value of a job waiting in `later`: its state and the entry it becomes, one MessagePack array of strings; anything else is not such a value."""

from __future__ import annotations

import msgpack
import pytest

from flotilla_client.waiting import Waiting, parse_waiting, unpack_strings


def fixstr(b: bytes) -> bytes:
    return bytes([0xA0 | len(b)]) + b


def test_an_array_of_fixstr_as_cmsgpack_packs_short_strings() -> None:
    packed = bytes([0x92]) + fixstr(b"id") + fixstr(b"job-1")
    assert unpack_strings(packed) == [b"id", b"job-1"]


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (bytes([0xD9, 40]), 40),
        (bytes([0xDA, 0x01, 0x00]), 256),
        (bytes([0xDB, 0x00, 0x01, 0x00, 0x00]), 65_536),
        (bytes([0xC4, 3]), 3),
        (bytes([0xC5, 0x00, 0x03]), 3),
        (bytes([0xC6, 0x00, 0x00, 0x00, 0x03]), 3),
    ],
    ids=["str8", "str16", "str32", "bin8", "bin16", "bin32"],
)
def test_every_string_and_byte_string_header_reads(header: bytes, length: int) -> None:
    value = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    packed = bytes([0x92]) + fixstr(b"payload") + header + value
    assert unpack_strings(packed) == [b"payload", value]


def test_array16_and_array32_headers_read() -> None:
    items = [fixstr(b"f%d" % i) for i in range(20)]
    assert unpack_strings(bytes([0xDC, 0x00, 20]) + b"".join(items)) == [b"f%d" % i for i in range(20)]
    assert unpack_strings(bytes([0xDD, 0, 0, 0, 2]) + fixstr(b"a") + fixstr(b"")) == [b"a", b""]
    assert unpack_strings(bytes([0x90])) == []


def test_what_a_msgpack_packer_writes_reads_back() -> None:
    # Payloads as cmsgpack meets them: short and long text, and binary (msgpack itself).
    items = [b"id", b"x" * 31, b"y" * 32, b"z" * 300, "é€".encode(), msgpack.packb({"a": 1}), b"\xff\x00"]
    assert unpack_strings(msgpack.packb(items, use_bin_type=False)) == items
    assert unpack_strings(msgpack.packb(items, use_bin_type=True)) == items
    many = [b"v%d" % i for i in range(70_000)]
    assert unpack_strings(msgpack.packb(many)) == many


@pytest.mark.parametrize(
    "packed",
    [
        b"",
        bytes([0x92]) + fixstr(b"id"),  # an item missing
        bytes([0x91]) + bytes([0xA5]) + b"abc",  # a string cut short
        bytes([0x91, 0xD9]),  # a length cut short
        bytes([0x91, 0xDA, 0x00]),
        bytes([0x91, 0xDB, 0x00, 0x00, 0x00]),
        bytes([0x91, 0xC6, 0xFF, 0xFF, 0xFF, 0xFF]) + b"abc",  # longer than the data
        bytes([0xDC, 0x00]),  # an array header cut short
        bytes([0xDD, 0xFF, 0xFF, 0xFF, 0xFF]) + fixstr(b"a"),  # more items than the data holds
        bytes([0x91]) + fixstr(b"a") + b"!",  # bytes after the array
        bytes([0x91, 0x01]),  # an integer
        bytes([0x91, 0x90]),  # a nested array
        bytes([0x81]) + fixstr(b"a") + fixstr(b"b"),  # a map
        fixstr(b"id"),  # a string, not an array
    ],
)
def test_malformed_or_truncated_input_is_no_array_of_strings(packed: bytes) -> None:
    assert unpack_strings(packed) is None


def test_a_waiting_value_gives_its_state_and_fields() -> None:
    fields = [b"id", b"job-1", b"type", b"render", b"payload", b"\x81\xa1a\x01", b"run_at", b"1700000060000"]
    for state in ["scheduled", "failed", "grouped"]:
        waiting = parse_waiting(state.encode() + b" " + msgpack.packb(fields))
        assert waiting == Waiting(
            state=state,
            fields={"id": b"job-1", "type": b"render", "payload": b"\x81\xa1a\x01", "run_at": b"1700000060000"},
        )


@pytest.mark.parametrize(
    "value",
    [
        b"1700000000000-3",
        b"done 1700000000250-0",
        b"scheduled",
        b"scheduled ",
        b"pending " + msgpack.packb([b"id", b"a"]),
        b"Scheduled " + msgpack.packb([b"id", b"a"]),
        b"failed " + msgpack.packb([b"id", b"a", b"type"]),  # a name without its value
        b"failed " + msgpack.packb([b"\xff", b"a"]),  # a name that is not text
        b"failed " + msgpack.packb([b"id", b"a"])[:-1],
        b"failed " + msgpack.packb([b"id", b"a"]) + b" ",
        b"scheduled " + msgpack.packb({"id": "a"}),
    ],
)
def test_any_other_value_is_not_a_waiting_job(value: bytes) -> None:
    assert parse_waiting(value) is None
