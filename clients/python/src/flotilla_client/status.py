"""What a job looks like to a caller (JobStatus), built from a record, a stream entry, a completion, the entry a job waiting in `later` becomes, or what a job waiting for its parents was given."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .waiting import Waiting

# The states a job does not leave by itself. `expired` (protocol 2.16): not started by its
# `expires_at`, it ended without running.
TERMINAL_STATUSES = frozenset({"completed", "dead", "cancelled", "expired"})

# Content types whose payload is JSON text (an entry that names none holds JSON).
_JSON_CONTENT_TYPES = frozenset({"", "json", "application/json"})

# A reply's fields as redis-py hands them over: names and values as bytes or str,
# depending on the connection's decode_responses.
RawFields = Mapping[Any, Any]


@dataclass(frozen=True)
class AttemptError:
    """One attempt that ended without success: its number, when (ms since the Unix epoch),
    and its error."""

    attempt: int
    at: int
    error: str


@dataclass(frozen=True)
class JobStatus:
    """A job as last seen. `result` and `payload` are decoded JSON (a payload in another
    encoding, such as msgpack, stays bytes); times are ms since the Unix epoch. `status`
    is one of the protocol's states: `waiting` (for its parents, protocol 2.19),
    `scheduled`, `pending`, `running`, `completed`, `failed`, `dead`, `cancelled`,
    `expired`."""

    id: str
    queue: str
    status: str
    type: str
    attempts: int
    # None where the job does not say: a fast-path entry that leaves it to the worker's
    # defaults, or a completion, which keeps only the attempts used.
    max_attempts: int | None = None
    result: Any = None
    error: str | None = None
    errors: list[AttemptError] = field(default_factory=list)
    payload: Any = None
    created_at: int | None = None
    finished_at: int | None = None
    worker: str | None = None
    # When the job became (or becomes) due, where that is kept: a completion keeps no such
    # time, and a retry waiting without a record has only `next_run_at`.
    run_at: int | None = None
    # When a failed job's retry is due; None in any other state.
    next_run_at: int | None = None
    # When the job may no longer start (protocol 2.16), where its record, entry or waiting
    # entry says so: not started by then, it ends as `expired`. None: it never expires, or
    # nothing kept says (a completion).
    expires_at: int | None = None
    # The job's group (protocol 2.17), where its record, entry or waiting entry says so.
    group: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job is in a state it does not leave by itself."""
        return self.status in TERMINAL_STATUSES

    @property
    def full_id(self) -> str:
        """The id that names the job in its namespace: `<queue>:<entry id>` for a job
        without an id of its own, else its id."""
        return ids.full_id(self.queue, self.id)


def from_record(queue: str, job_id: str, raw: RawFields) -> JobStatus:
    """A job from its record (hash)."""
    f = _fields(raw)
    return JobStatus(
        id=_text(f, "id") or job_id,
        queue=_text(f, "queue") or queue,
        status=_text(f, "status") or "unknown",
        type=_text(f, "type") or "",
        attempts=_int(f.get("attempts")) or 0,
        max_attempts=_int(f.get("max_attempts")),
        result=_json_or_none(f.get("result")),
        error=_text(f, "error") or None,
        errors=_attempt_errors(f.get("errors")),
        payload=_payload(f.get("payload"), _text(f, "content_type") or ""),
        created_at=_int(f.get("created_at")),
        finished_at=_int(f.get("finished_at")),
        worker=_text(f, "worker") or None,
        run_at=_int(f.get("run_at")),
        # A record keeps the field after its retry went ahead: it means something only
        # while the retry waits.
        next_run_at=_int(f.get("next_run_at")) if _text(f, "status") == "failed" else None,
        expires_at=_expiry(f),
        group=_text(f, "group") or None,
    )


def from_entry(
    queue: str,
    entry_id: str,
    raw: RawFields,
    delivery: tuple[str, int] | None,
    job_id: str | None = None,
) -> JobStatus:
    """A job from the stream entry carrying it: `pending`, or `running` when `delivery` (the
    consumer holding it and its delivery count) says the group's pending list has it.
    A fast-path job's id is its entry id; a job with an id of its own (found through its
    id key) passes it as `job_id`, so it is reported under the id it was enqueued with.
    A job retried without a record is on a new entry that carries its past: the attempts
    spent, their errors, and when it was first enqueued."""
    f = _fields(raw)
    spent = _int(f.get("attempts")) or 0
    # A retried job's entry says when the job was enqueued; the entry's own time is when
    # its retry went ahead.
    created = _int(f.get("created_at")) or entry_time_ms(entry_id)
    return JobStatus(
        id=job_id or entry_id,
        queue=queue,
        status="running" if delivery else "pending",
        type=_text(f, "type") or "",
        # Its attempt is the attempts spent before plus the deliveries, as workers count it.
        attempts=spent + (delivery[1] if delivery else 0),
        max_attempts=_int(f.get("max_attempts")),
        error=_text(f, "error") or None,
        errors=_attempt_errors(f.get("errors")),
        payload=_payload(f.get("payload"), _text(f, "content_type") or ""),
        created_at=created,
        worker=delivery[0] if delivery else None,
        # An entry promoted from waiting carries the time it was due.
        run_at=_int(f.get("run_at")) or created,
        expires_at=_expiry(f),
        group=_text(f, "group") or None,
    )


def from_waiting(queue: str, job_id: str, waiting: Waiting, due_ms: int | None) -> JobStatus:
    """A job waiting in `later` without a record, from the entry its id key holds and its
    score there (`due_ms`, None once it left the set, or when the connection's user may
    not read scores): `scheduled` until its first run is due, `failed` until its retry
    is, or `pending` while it waits its group's turn (its id key says `grouped`). The entry carries what a record would: the
    attempts spent, the last error and each attempt's, when the job was enqueued."""
    f = _fields(waiting.fields)
    failed = waiting.state == "failed"
    # A job waiting its group's turn (protocol 2.17) is not in `later`: it is due now,
    # and pending like a job on the stream no worker has taken yet.
    grouped = waiting.state == "grouped"
    # The set's score is when a worker will take the job; the entry's `run_at` was
    # written with it and tells the same once the job has left the set.
    due = due_ms if due_ms is not None else _int(f.get("run_at"))
    return JobStatus(
        id=job_id,
        queue=queue,
        status="pending" if grouped else waiting.state,
        type=_text(f, "type") or "",
        attempts=_int(f.get("attempts")) or 0,
        max_attempts=_int(f.get("max_attempts")),
        error=_text(f, "error") or None,
        errors=_attempt_errors(f.get("errors")),
        payload=_payload(f.get("payload"), _text(f, "content_type") or ""),
        created_at=_int(f.get("created_at")) or entry_time_ms(job_id),
        run_at=None if failed else due,
        next_run_at=due if failed else None,
        expires_at=_expiry(f),
        group=_text(f, "group") or None,
    )


def from_deps(queue: str, job_id: str, args: list[bytes], created_at: bytes | None) -> JobStatus:
    """A job waiting for its parents (protocol 2.19), from its `deps` hash: `args` are the
    enqueue script's arguments it was given (its `job` field, unpacked: id, type, payload,
    content type, max attempts, ..., expires at, group), `created_at` when the flow
    was created. It is on no stream yet, so it has no due time: a delay counts from when
    its last parent is done."""

    def arg(position: int) -> bytes:
        # ARGV[position] of the enqueue script, 1-based as the protocol numbers them.
        return args[position - 1] if len(args) >= position else b""

    content_type = arg(4).decode("utf-8", "replace")
    return JobStatus(
        id=job_id,
        queue=queue,
        status="waiting",
        type=arg(2).decode("utf-8", "replace"),
        attempts=0,
        # 0 would leave it to the worker's default.
        max_attempts=_int(arg(5)) or None,
        payload=_payload(arg(3), content_type),
        created_at=_int(created_at),
        expires_at=_int(arg(18)) or None,
        group=arg(19).decode("utf-8", "replace") or None,
    )


def from_done(queue: str, job_id: str, done_entry_id: str, raw: RawFields) -> JobStatus:
    """A job that completed without a record (a fast-path job, or one found through its
    id key or the queue's `done_ids`), from its `done` entry, whose id is the completion time. A completion keeps
    no payload, nor the entry id the job ran from: only a fast-path job, whose id is that
    entry id, still says when it was enqueued (`created_at`)."""
    f = _fields(raw)
    return JobStatus(
        id=job_id,
        queue=queue,
        status="completed",
        type=_text(f, "type") or "",
        # Left out when it took one attempt (protocol 2.11).
        attempts=_int(f.get("attempts")) or 1,
        result=_json_or_none(f.get("result")),
        created_at=entry_time_ms(job_id),
        # A completion written again (its entry lost another job's) says when it finished.
        finished_at=_int(f.get("finished_at")) or entry_time_ms(done_entry_id),
        worker=_text(f, "worker") or None,
    )


def completions_of(flat: list[Any]) -> list[RawFields]:
    """The completions a `done` entry holds, from its flat field/value list: one, or from
    protocol 2.10 several (a worker's batch), each a run of fields that begins with `id`.
    Fields before the first `id` are every completion's (a completion's own wins)."""
    completions: list[dict[Any, Any]] = []
    shared: dict[Any, Any] = {}
    for name, value in zip(flat[0::2], flat[1::2]):
        if _as_bytes(name) == b"id":
            completions.append(dict(shared))
        (completions[-1] if completions else shared)[name] = value
    return list(completions) if completions or not shared else [shared]


def entry_time_ms(entry_id: str) -> int | None:
    """The milliseconds part of a stream entry id (`<ms>-<seq>`): when Redis added it."""
    ms, sep, seq = entry_id.partition("-")
    return int(ms) if sep and ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit() else None


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _fields(raw: RawFields) -> dict[str, bytes]:
    return {_as_bytes(k).decode("utf-8", "replace"): _as_bytes(v) for k, v in raw.items()}


def _text(fields: dict[str, bytes], name: str) -> str:
    return fields.get(name, b"").decode("utf-8", "replace")


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _expiry(fields: dict[str, bytes]) -> int | None:
    # 0 means "never" wherever the protocol takes an expiry.
    return _int(fields.get("expires_at")) or None


def _json_or_none(value: bytes | None) -> Any:
    """JSON text decoded; empty (a handler that returned nothing) is None. Text that does
    not decode is returned as it is rather than lost."""
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value.decode("utf-8", "replace")


def _payload(value: bytes | None, content_type: str) -> Any:
    if content_type not in _JSON_CONTENT_TYPES:
        return value
    if not value:
        return None  # an empty JSON payload means null
    try:
        return json.loads(value)
    except ValueError:
        return value


def _attempt_errors(value: bytes | None) -> list[AttemptError]:
    # A history that does not decode reads as empty, as workers treat it.
    try:
        history = json.loads(value) if value else []
    except ValueError:
        return []
    if not isinstance(history, list):
        return []
    errors = []
    for item in history:
        if isinstance(item, dict):
            errors.append(
                AttemptError(
                    attempt=_int_of(item.get("attempt")),
                    at=_int_of(item.get("at")),
                    error=str(item.get("error", "")),
                )
            )
    return errors


def _int_of(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
