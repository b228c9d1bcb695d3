"""Entries that cannot be decoded: each goes to the dead-letter stream with a reason naming the problem, and the worker carries on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import msgpack
import pytest

from fleet import Fleet

# The payload limit workers apply by default (`limits.max_payload_bytes`).
PAYLOAD_LIMIT = 524_288

NAME_RULE = "expected 1-256 printable characters without spaces, braces or control characters"
ATTEMPTS_RULE = "expected a whole number from 1 to 10000"
DURATION_RULE = "expected milliseconds, or a number with a unit: 500ms, 30s, 5m, 1h"


@dataclass(frozen=True)
class Case:
    fields: dict[str, str | bytes]
    # The reason starts with this; where it ends in a decoder's own message (JSON and
    # msgpack errors), only the part the protocol controls is compared.
    reason: str
    exact: bool = True


def oversize_payload(size: int) -> bytes:
    """A JSON string of exactly `size` bytes."""
    return b'"' + b"x" * (size - 2) + b'"'


CASES = {
    "missing-type": Case({"payload": "{}"}, "malformed entry: entry has neither an `id` of a known job nor a `type`"),
    "bad-json": Case({"type": "noop", "payload": "{oops"}, "malformed entry: payload is not valid json: ", exact=False),
    "invalid-utf8-in-json": Case(
        {"type": "noop", "payload": b'{"name": "\xff\xfe"}'}, "malformed entry: payload is not valid json: ", exact=False
    ),
    "unknown-content-type": Case(
        {"type": "noop", "content_type": "xml", "payload": "<a/>"},
        'malformed entry: unknown content type "xml": expected "json" or "msgpack"',
    ),
    "oversize-payload": Case(
        {"type": "noop", "payload": oversize_payload(PAYLOAD_LIMIT + 1)},
        f"malformed entry: payload is {PAYLOAD_LIMIT + 1} bytes, over the {PAYLOAD_LIMIT}-byte limit",
    ),
    "control-characters-in-type": Case(
        {"type": "a\r\nforged"}, f'malformed entry: field "type" is "a\\r\\nforged": {NAME_RULE}'
    ),
    "control-characters-in-id": Case(
        {"id": "x\ny", "type": "noop"}, f'malformed entry: field "id" is "x\\ny": {NAME_RULE}'
    ),
    "brace-in-type": Case({"type": "a{b}"}, f'malformed entry: field "type" is "a{{b}}": {NAME_RULE}'),
    "space-in-type": Case({"type": "a b"}, f'malformed entry: field "type" is "a b": {NAME_RULE}'),
    "type-too-long": Case({"type": "t" * 257}, f'malformed entry: field "type" is "{"t" * 257}": {NAME_RULE}'),
    "max-attempts-0": Case(
        {"type": "noop", "max_attempts": "0"}, f'malformed entry: field "max_attempts" is "0": {ATTEMPTS_RULE}'
    ),
    "max-attempts-10001": Case(
        {"type": "noop", "max_attempts": "10001"}, f'malformed entry: field "max_attempts" is "10001": {ATTEMPTS_RULE}'
    ),
    "max-attempts-abc": Case(
        {"type": "noop", "max_attempts": "abc"}, f'malformed entry: field "max_attempts" is "abc": {ATTEMPTS_RULE}'
    ),
    "timeout-0": Case(
        {"type": "noop", "timeout": "0"},
        'malformed entry: field "timeout" is "0": expected a duration of at least 1ms '
        '(there is no "no timeout"; use a long one)',
    ),
    "timeout-soon": Case(
        {"type": "noop", "timeout": "soon"}, f'malformed entry: field "timeout" is "soon": {DURATION_RULE}'
    ),
    "bad-backoff": Case(
        {"type": "noop", "backoff": "linear:5"},
        'malformed entry: backoff "linear:5" is not one of fixed:MS, exponential:BASE_MS:CAP_MS, list:MS,MS,… '
        "(whole milliseconds, each at most 315360000000: ten years)",
    ),
    "bad-run-at": Case(
        {"type": "noop", "run_at": "tomorrow"},
        'malformed entry: field "run_at" is "tomorrow": expected milliseconds since the Unix epoch',
    ),
    "msgpack-that-does-not-decode": Case(
        {"type": "noop", "content_type": "msgpack", "payload": b"\xc1"},
        "malformed entry: payload is not valid msgpack: ",
        exact=False,
    ),
    "msgpack-string-not-utf8": Case(
        {"type": "noop", "content_type": "msgpack", "payload": b"\xa2\xff\xfe"},
        "malformed entry: payload is not valid msgpack: ",
        exact=False,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_entry_is_dead_lettered_with_its_reason(fleet: Fleet, case: Case) -> None:
    entry = fleet.xadd(case.fields)
    # A malformed id never becomes part of a key: the job is named by its entry id.
    dead = fleet.wait_dead(entry, since=entry)
    assert set(dead) == {"id", "type", "queue", "attempts", "error", "failed_at"}
    assert dead["queue"] == "default"
    if case.exact:
        assert dead["error"] == case.reason
    else:
        assert dead["error"].startswith(case.reason), dead["error"]
    # A record with status `dead` is kept for inspection.
    record = fleet.wait_record(entry, "dead")
    assert record["error"] == dead["error"]
    assert fleet.r.xrange(fleet.stream(), entry, entry) == [], "the bad entry was removed"
    # The worker carries on.
    fleet.run_noop()


def test_a_payload_of_exactly_the_limit_runs(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "noop", "payload": oversize_payload(PAYLOAD_LIMIT)})
    fleet.wait_done(entry, since=entry)


def test_an_id_of_no_known_job_without_a_type_is_dead_lettered(fleet: Fleet) -> None:
    job_id = str(uuid.uuid4())
    entry = fleet.xadd({"id": job_id})
    dead = fleet.wait_dead(job_id, since=entry)
    assert dead["error"] == "malformed entry: entry has neither an `id` of a known job nor a `type`", dead["error"]
    fleet.run_noop()


def test_a_good_msgpack_map_next_to_bad_entries_runs(fleet: Fleet) -> None:
    bad = fleet.xadd({"type": "noop", "content_type": "msgpack", "payload": b"\xc1"})
    good = fleet.xadd({"type": "sleep", "content_type": "msgpack", "payload": msgpack.packb({"ms": 1})})
    fleet.wait_dead(bad, since=bad)
    _, done = fleet.wait_done(good, since=good)
    assert done["result"] == '{"slept_ms":1}'
