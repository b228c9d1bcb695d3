"""Finding a job by id where docs/PROTOCOL.md says it is: its record, its stream entry, its place in `later`, or its completion in `done`.

A job without a record is found in a few reads whatever its queue holds: a fast-path job's
id is its entry id, and a job with an id of its own has an id key naming its entry, or
holding the whole job while it waits in `later` for its time or a retry. Once it completed
its key is gone and the queue's `done_ids` set holds the id, scored by the millisecond
from which its completion is in `done` (a key written by protocol 2.7 names the completion
instead: `done <entry id>`). A fast-path job retried without a record gets an id key too,
under its entry id. A job waiting for its parents (protocol 2.19) has an id key holding
`waiting`, and what it was given is in its `deps` hash. Only a completion is searched
for: a fast-path job's from its enqueue time on, one in `done_ids` from its score on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis
from redis.client import NEVER_DECODE

from .dependencies import Dependencies, parse_dependencies
from .keys import CONSUMER_GROUP, Keys
from .status import (
    JobStatus,
    RawFields,
    completions_of,
    entry_time_ms,
    from_deps,
    from_done,
    from_entry,
    from_record,
    from_waiting,
)
from .waiting import Waiting, parse_waiting, unpack_strings

# How many `done` entries one read returns while looking for a completion.
DONE_PAGE = 500

# How many completions after a job's enqueue are searched for its own, as the Rust tools
# search: a job completed later than that is reported not found rather than scanned for.
DONE_SEARCH_LIMIT = 50_000


class JobPlace(NamedTuple):
    """Where an id key says its job is: the entry `entry_id` of the queue's stream, or of
    its `done` stream when `completed` (the form protocol 2.7 wrote at completion)."""

    completed: bool
    entry_id: str


@dataclass(frozen=True)
class ForParents:
    """An id key holding `waiting` (protocol 2.19): its job waits for its parents, on no
    stream, and what it was given is in its `deps` hash."""


# What an id key holds while its job waits for its parents.
_FOR_PARENTS = b"waiting"


def find_job(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """The job as it is now, or None when it is found nowhere (trimmed by retention, never
    enqueued, or a raw entry with an id of its own that no worker has read yet). A record,
    when there is one, always says where the job is."""
    record = _record(connection, keys, queue, job_id)
    if record:
        return from_record(queue, job_id, record)
    if entry_time_ms(job_id) is None:
        found = _by_id_key(connection, keys, queue, job_id)
    else:
        # A job whose id is its entry id is on that entry until it first fails; retried
        # without a record, it is where its id key says, which it has from then on; the
        # completion of one never retried is searched for.
        found = (
            _from_stream(connection, keys, queue, job_id)
            or _by_id_key(connection, keys, queue, job_id)
            or _from_done(connection, keys, queue, job_id)
        )
    if found is not None:
        return found
    # Between the reads above the job may have failed, been handed back or cancelled:
    # each gives a job without a record one, and takes its entry off the stream.
    record = _record(connection, keys, queue, job_id)
    return from_record(queue, job_id, record) if record else None


def find_dependencies(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> Dependencies | None:
    """What job `job_id` of `queue` waits or waited for, from its `deps` hash (protocol
    2.19); None when the hash is not there."""
    # Read as bytes: a parent's result may be any text, and `job` is MessagePack.
    return parse_dependencies(cast(RawFields, _raw(connection, "HGETALL", keys.deps(queue, job_id)) or {}))


def parse_id_key(value: str | bytes) -> JobPlace | Waiting | ForParents | None:
    """What an id key holds: the entry id of the stream entry carrying the job while it
    waits or runs, or, while the job waits in `later`, its state and the entry it becomes
    (binary: read the key as bytes), or `waiting` while it waits for its parents. A key
    written by protocol 2.7 for a completed job holds `done <done entry id>` until it
    expires, and is still read (a rolling upgrade); from 2.8 on the key goes at completion
    and `done_ids` remembers the id. A value of another form is None, so that the lookup
    falls back on the record rather than reading a wrong entry."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    if raw == _FOR_PARENTS:
        return ForParents()
    waiting = parse_waiting(raw)
    if waiting is not None:
        return waiting
    text = raw.decode("utf-8", "replace")
    head, sep, done_id = text.partition(" ")
    if not sep:
        return JobPlace(completed=False, entry_id=text) if entry_time_ms(text) is not None else None
    if head == "done" and entry_time_ms(done_id) is not None:
        return JobPlace(completed=True, entry_id=done_id)
    return None


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


def _by_id_key(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """A job without a record, read where its id key says it is: one with an id of its
    own, or one whose id is its entry id once it was retried."""
    held = _id_key(connection, keys, queue, job_id)
    found = _at(connection, keys, queue, job_id, held)
    if found is None and (isinstance(held, JobPlace) and not held.completed or isinstance(held, ForParents)):
        # The entry left the stream after the key was read: the key says where the job
        # went (`later` when a retry waits; completed, most likely, when it is gone and
        # `done_ids` has the id), unless it failed for good or was cancelled and has a
        # record, which is read next. That is followed once. So is a job that waited for
        # its parents and was let go meanwhile (its key then names its entry, or it
        # waits in `later`).
        moved = _id_key(connection, keys, queue, job_id)
        if moved != held:
            found = _at(connection, keys, queue, job_id, moved)
    return found


def _id_key(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobPlace | Waiting | ForParents | None:
    # Read as bytes: a waiting job's value is MessagePack, whose payload need not be text.
    value = _raw(connection, "GET", keys.id_key(queue, job_id))
    return None if value is None else parse_id_key(cast(bytes, value))


def _at(
    connection: redis.Redis, keys: Keys, queue: str, job_id: str, held: JobPlace | Waiting | ForParents | None
) -> JobStatus | None:
    if held is None:
        # No key (or one of no known form): the job completed, if `done_ids` has it.
        return _from_done_ids(connection, keys, queue, job_id)
    if isinstance(held, ForParents):
        return _from_deps(connection, keys, queue, job_id)
    if isinstance(held, Waiting):
        return _from_later(connection, keys, queue, job_id, held)
    if held.completed:
        return _completion_at(connection, keys, queue, job_id, held.entry_id)
    return _from_stream(connection, keys, queue, held.entry_id, job_id)


def _from_later(connection: redis.Redis, keys: Keys, queue: str, job_id: str, waiting: Waiting) -> JobStatus:
    """A job waiting in `later`, with its due time there. A job promoted since the key was
    read is no longer in the set: it is reported as it was a moment ago, waiting."""
    try:
        score = _raw(connection, "ZSCORE", keys.later(queue), job_id)
    except redis.exceptions.NoPermissionError:
        # A user whose rule grants no ZSCORE still reads the job: its due time is then
        # what the entry it becomes says.
        score = None
    # Scores are whole milliseconds, which a double holds exactly.
    due = None if score is None else int(float(_text(score)))
    return from_waiting(queue, job_id, waiting, due)


def _from_deps(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """A job waiting for its parents, from what its `deps` hash says it was given. None
    once it was let go (its `job` field goes then) or cancelled (the hash goes): its id
    key or its record says where it is."""
    packed, created = _raw(connection, "HMGET", keys.deps(queue, job_id), "job", "created_at")
    args = None if packed is None else unpack_strings(cast(bytes, packed))
    return None if args is None else from_deps(queue, job_id, args, cast("bytes | None", created))


def _from_stream(
    connection: redis.Redis, keys: Keys, queue: str, entry_id: str, job_id: str | None = None
) -> JobStatus | None:
    """The job stream entry `entry_id` carries: a fast-path job, whose id is the entry id,
    or the job `job_id`, which its id key named. An entry is the job's only when its `id`
    field names that job, or it has none and is a fast-path job's: a copy of a requeued
    job names the job it carries, not its own entry id."""
    stream = keys.stream(queue)
    # The pending list first, then the entry: a job that finishes between the two reads
    # is then missing from the stream and looked for in `done`, rather than reported
    # pending after it completed.
    delivery = _delivery(connection, stream, entry_id)
    entries = _entries(connection, stream, entry_id, entry_id, 1)
    if not entries:
        return None
    fields = entries[0][1]
    # A retry of a job without an id of its own names it in `retry_of`.
    if (_field(fields, "id") or _field(fields, "retry_of")) != job_id:
        return None
    return from_entry(queue, entry_id, fields, delivery, job_id)


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
    """A fast-path job's completion. `done` entry ids are completion times, so it is at or
    after the millisecond of the job's own entry id; not at or after the id itself, since
    a completion in the same millisecond can take a lower sequence number in `done`."""
    ms = entry_time_ms(job_id)
    return None if ms is None else _search_done(connection, keys, queue, job_id, ms)


def _from_done_ids(connection: redis.Redis, keys: Keys, queue: str, job_id: str) -> JobStatus | None:
    """A job that completed without a record and whose id key went with its completion
    (protocol 2.8): `done_ids` scores its id by the millisecond from which its completion
    is in `done`, so two reads find it however long ago it was enqueued. None when the set
    does not have it (never completed, trimmed by retention, or a fast-path job never
    retried, whose completion is searched for from its enqueue)."""
    score = _raw(connection, "ZSCORE", keys.done_ids(queue), job_id)
    if score is None:
        return None
    # Scores are whole milliseconds, which a double holds exactly.
    since = max(0, int(float(_text(score))))
    return _search_done(connection, keys, queue, job_id, since)


def _search_done(connection: redis.Redis, keys: Keys, queue: str, job_id: str, from_ms: int) -> JobStatus | None:
    """The completion of `job_id` in `done`, at or after the millisecond `from_ms`, a page
    at a time, among at most DONE_SEARCH_LIMIT entries: each read costs Redis the same
    whatever the stream holds."""
    done = keys.done(queue)
    start = f"{from_ms}-0"
    searched = 0
    while searched < DONE_SEARCH_LIMIT:
        page = _done_entries(connection, done, start, "+", DONE_PAGE)
        for done_id, completions in page:
            for fields in completions:
                if _field(fields, "id") == job_id:
                    return from_done(queue, job_id, done_id, fields)
        if len(page) < DONE_PAGE:
            return None
        searched += len(page)
        start = _next_id(page[-1][0])
    return None


def _completion_at(
    connection: redis.Redis, keys: Keys, queue: str, job_id: str, done_id: str
) -> JobStatus | None:
    """The completion a protocol 2.7 id key (`done <entry id>`) names, read at its id:
    None once retention trimmed it."""
    for _, completions in _done_entries(connection, keys.done(queue), done_id, done_id, 1):
        for fields in completions:
            if _field(fields, "id") == job_id:
                return from_done(queue, job_id, done_id, fields)
    return None


def _done_entries(
    connection: redis.Redis, stream: str, start: str, end: str, count: int
) -> list[tuple[str, list[RawFields]]]:
    """Entries of a `done` stream with their completions: from protocol 2.10 an entry may
    hold several (a worker's batch), each a run of fields that begins with `id`. The
    reply is read as Redis sends it, since redis-py turns an entry's fields into a dict,
    which keeps only the last of each name."""
    raw = redis.Redis(connection_pool=connection.connection_pool)
    raw.set_response_callback("XRANGE", _as_sent)
    reply = raw.execute_command("XRANGE", stream, start, end, "COUNT", count, **{NEVER_DECODE: True})  # type: ignore[no-untyped-call]
    return [(_text(entry_id), completions_of(flat or [])) for entry_id, flat in reply or []]


def _as_sent(reply: Any, **_options: Any) -> Any:
    return reply


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
