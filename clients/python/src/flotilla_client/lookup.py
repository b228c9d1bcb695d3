"""Finding a job by id where docs/PROTOCOL.md says it is: its record, its stream entry, or its completion in `done`."""

from __future__ import annotations

from typing import Any, cast

import redis
from redis.client import NEVER_DECODE

from .keys import CONSUMER_GROUP, Keys
from .status import JobStatus, RawFields, entry_time_ms, from_done, from_entry, from_record

# How many `done` entries one read returns while looking for a completion.
DONE_PAGE = 500

# How many completions after a job's enqueue are searched for its own, as the Rust tools
# search: a job completed later than that is reported not found rather than scanned for.
DONE_SEARCH_LIMIT = 50_000


def find_job(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """The job as it is now, or None when it is found nowhere (trimmed by retention, never
    enqueued, or an entry with an id of its own that no worker has read yet)."""
    record = _record(connection, keys, queue, job_id)
    if record:
        return from_record(queue, job_id, record)
    if entry_time_ms(job_id) is None:
        # Without a record only a fast-path job, whose id is its entry id, can be found:
        # a raw entry with an id of its own could only be found by scanning its stream.
        return None
    found = _from_stream(connection, keys, queue, job_id) or _from_done(connection, keys, queue, job_id)
    if found is not None:
        return found
    # Between the reads above the job may have failed, been handed back or cancelled:
    # each gives a fast-path job a record and takes its entry off the stream.
    record = _record(connection, keys, queue, job_id)
    return from_record(queue, job_id, record) if record else None


def _raw(connection: redis.Redis, *args: str | int) -> Any:
    """A read whose reply stays bytes whatever the connection's decode_responses: a
    payload may be msgpack, which is not text."""
    # redis-py leaves execute_command unannotated.
    return connection.execute_command(*args, **{NEVER_DECODE: True})  # type: ignore[no-untyped-call]


def _record(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> RawFields:
    return cast(RawFields, _raw(connection, "HGETALL", keys.job(queue, job_id)) or {})


def _entries(connection: redis.Redis, stream: str, start: str, end: str, count: int) -> list[tuple[str, RawFields]]:
    reply = _raw(connection, "XRANGE", stream, start, end, "COUNT", count) or []
    return [(_text(entry_id), fields) for entry_id, fields in reply]


def _from_stream(connection: redis.Redis, keys: Keys, queue: str, entry_id: str) -> JobStatus | None:
    stream = keys.stream(queue)
    # The pending list first, then the entry: a job that finishes between the two reads
    # is then missing from the stream and looked for in `done`, rather than reported
    # pending after it completed.
    delivery = _delivery(connection, stream, entry_id)
    entries = _entries(connection, stream, entry_id, entry_id, 1)
    if not entries:
        return None
    return from_entry(queue, entry_id, entries[0][1], delivery)


def _delivery(connection: redis.Redis, stream: str, entry_id: str) -> tuple[str, int] | None:
    """The consumer holding the entry and its delivery count, when the group's pending
    list has it."""
    try:
        pending = cast(
            list[dict[str, Any]],
            connection.xpending_range(stream, CONSUMER_GROUP, min=entry_id, max=entry_id, count=1),
        )
    except redis.ResponseError:
        # No group yet (no worker has read this stream): nothing is being delivered.
        return None
    for item in pending:
        if _text(item["message_id"]) == entry_id:
            return _text(item["consumer"]), int(item["times_delivered"])
    return None


def _from_done(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """The job's completion. `done` entry ids are completion times, so it is at or after
    the millisecond of the job's own entry id; not at or after the id itself, since a
    completion in the same millisecond can take a lower sequence number in `done`."""
    done = keys.done(queue)
    start = f"{entry_time_ms(job_id)}-0"
    searched = 0
    while searched < DONE_SEARCH_LIMIT:
        page = _entries(connection, done, start, "+", DONE_PAGE)
        for done_id, fields in page:
            if _field(fields, "id") == job_id:
                return from_done(queue, job_id, done_id, fields)
        if len(page) < DONE_PAGE:
            return None
        searched += len(page)
        start = _next_id(page[-1][0])
    return None


def _next_id(entry_id: str) -> str:
    # The id right after, so the next page starts past this one on any Redis version.
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq) + 1}"


def _field(fields: RawFields, name: str) -> str | None:
    for key, value in fields.items():
        if _text(key) == name:
            return _text(value)
    return None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
