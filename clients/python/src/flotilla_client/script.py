"""Runs the published enqueue script (bundled as enqueue.lua): its arguments, defaults and replies."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

import redis

from .errors import QueueFull
from .keys import Keys

# What the script writes for an option the job leaves out: the protocol's defaults.
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_MS = 30 * 60 * 1000
DEFAULT_BACKOFF = "exponential:1000:600000"

_CONTENT_TYPE = "json"
_PROTOCOL_VERSION = "2"
# This client carries no trace context.
_NO_TRACE = ""
# 0 means "no cap" to the script.
_NO_QUEUE_CAP = 0
# ARGV[15]: "expiry" keeps a unique key for its whole TTL; anything else releases it when
# the job completes, is cancelled or expires.
_HOLD_FOR_TTL = "expiry"
_RELEASE_WHEN_FINISHED = "finished"
# ARGV[16] and ARGV[17], the debounce delay and max: 0 says the job is not debounced.
_NOT_DEBOUNCED = 0
# ARGV[18], the expiry: 0 says the job never expires.
_NEVER_EXPIRES = 0
# ARGV[19], the group: empty says the job is of no group.
_NO_GROUP = ""

Outcome = Literal["created", "duplicate", "exists", "debounced"]
_OUTCOMES: dict[str, Outcome] = {
    "created": "created",
    "duplicate": "duplicate",
    "exists": "exists",
    "debounced": "debounced",
}


# This package, wherever it is installed (or vendored).
_PACKAGE = __name__.rpartition(".")[0]


def script_text() -> str:
    """The script's text as bundled: byte for byte protocol/v2/enqueue.lua."""
    return resources.files(_PACKAGE).joinpath("enqueue.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ScriptJob:
    """One job as the script takes it, already checked."""

    queue: str
    id: str
    type: str
    payload: str
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff: str | None = None
    # Protocol 2.16: when the job may no longer start, ms since the Unix epoch; None: never.
    expires_at_ms: int | None = None
    # Milliseconds since the Unix epoch; None runs now (or after `delay_ms`).
    run_at_ms: int | None = None
    # Measured on the Redis server's clock, so producers with skewed clocks agree.
    delay_ms: int = 0
    unique_key: str | None = None
    unique_ttl_ms: int = 0
    hold_unique_for_ttl: bool = False
    max_queue_len: int | None = None
    # Protocol 2.14: jobs with one debounce key fold into the one waiting for its first run.
    debounce_key: str | None = None
    debounce_delay_ms: int = 0
    debounce_max_ms: int = 0
    # Protocol 2.17: where the queue limits how many jobs of a group run at once (or, since
    # 2.18, how fast), a job whose group has no room waits its turn; one with a time takes
    # its turn when its time comes. Since 2.18 it may hold a unique key: it holds it while
    # it waits its group's turn; with a time it waits for its time first, then for its turn.
    group: str | None = None


class EnqueueScript:
    """The script registered on one connection: redis-py sends EVALSHA and falls back to
    loading it when the server does not have it yet."""

    def __init__(self, connection: redis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = connection.register_script(script_text())

    def run(self, job: ScriptJob) -> tuple[str, Outcome]:
        """Puts the job on its stream: as one entry carrying it, with an id key remembering
        its id, when it runs now and holds no unique key; else with a record, on the stream
        or in `delayed` when it is due later (a unique job of a group waiting its group's
        turn, once its time has come, has its record `pending`, with no entry, until let
        through). Returns the job's id and what happened: `created`; `duplicate` (another
        job holds the unique key, and the id is that job's); `exists` (a job with this id
        was enqueued before, and nothing changed; a completed one counts while `done_ids`
        remembers it); `debounced` (folded into the job waiting under the debounce key,
        whose id this is)."""
        keys = [
            self._keys.stream(job.queue),
            self._keys.job(job.queue, job.id),
            self._keys.delayed(job.queue),
        ]
        if job.unique_key is not None:
            keys.append(self._keys.unique(job.queue, job.unique_key))
        elif job.debounce_key is not None:
            keys.append(self._keys.debounce(job.queue, job.debounce_key))
        args = _leading_args(job)
        if job.debounce_key is not None:
            args += [job.debounce_delay_ms, job.debounce_max_ms]
        elif job.expires_at_ms is not None or job.group is not None:
            # The expiry is ARGV[18]: the two before it say "not debounced".
            args += [_NOT_DEBOUNCED, _NOT_DEBOUNCED]
        if job.expires_at_ms is not None:
            # Left out when the job never expires, as a script before 2.16 was called.
            args.append(job.expires_at_ms)
        elif job.group is not None:
            args.append(_NEVER_EXPIRES)
        if job.group is not None:
            # ARGV[19]; left out for a job of no group, as a script before 2.17 was called.
            args.append(job.group)
        try:
            reply = self._script(keys=keys, args=args)
        except redis.ResponseError as e:
            if str(e).startswith("QUEUE_FULL"):
                raise QueueFull(job.queue, str(e)) from None
            raise
        return _parse_reply(reply)


def _leading_args(job: ScriptJob) -> list[str | int]:
    """ARGV[1] to ARGV[15], which every call passes."""
    return [
        job.id,
        job.type,
        job.payload,
        _CONTENT_TYPE,
        job.max_attempts if job.max_attempts is not None else DEFAULT_MAX_ATTEMPTS,
        job.timeout_ms if job.timeout_ms is not None else DEFAULT_TIMEOUT_MS,
        job.backoff if job.backoff is not None else DEFAULT_BACKOFF,
        # 0 means "not set" to the script, so the epoch itself goes as 1 ms after it.
        0 if job.run_at_ms is None else max(job.run_at_ms, 1),
        job.delay_ms,
        job.unique_ttl_ms,
        job.max_queue_len if job.max_queue_len is not None else _NO_QUEUE_CAP,
        job.queue,
        _NO_TRACE,
        _PROTOCOL_VERSION,
        _HOLD_FOR_TTL if job.hold_unique_for_ttl else _RELEASE_WHEN_FINISHED,
    ]


def all_args(job: ScriptJob) -> list[str | int]:
    """All 19 of the script's arguments, none left out, as the flow script takes each of
    its jobs (protocol 2.19): `0` or empty for what the job does not set."""
    return [
        *_leading_args(job),
        job.debounce_delay_ms if job.debounce_key is not None else _NOT_DEBOUNCED,
        job.debounce_max_ms if job.debounce_key is not None else _NOT_DEBOUNCED,
        job.expires_at_ms if job.expires_at_ms is not None else _NEVER_EXPIRES,
        job.group if job.group is not None else _NO_GROUP,
    ]


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _parse_reply(reply: object) -> tuple[str, Outcome]:
    if isinstance(reply, (list, tuple)) and len(reply) == 2:
        outcome = _OUTCOMES.get(_text(reply[1]))
        if outcome is not None:
            return _text(reply[0]), outcome
    raise redis.ResponseError(f"unexpected reply from the enqueue script: {reply!r}")
