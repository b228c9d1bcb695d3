"""Batches (protocol 2.19): the published batch script (bundled as batch.lua), its arguments and replies, and how a batch reads.

A *batch* is a set of jobs whose ends are counted, with up to three callbacks, each a job
of its own enqueued exactly once when its condition holds: `success` once every job of
the sealed batch completed, `complete` once every job of the sealed batch ended, however,
and `death` at the first job that ends without completing. A callback waits as a job
waits for its parents (`waiting`), and is cancelled once its condition can no longer
hold. The batch lives in one queue, in its `batch:<id>` hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Literal

import redis

from .errors import InvalidJob
from .keys import Keys
from .script import ScriptJob, all_args

# A callback's kind, in the script's words: it fires once every job completed (`success`),
# once every job ended (`complete`), or at the first job that ends without completing
# (`death`).
CallbackKind = Literal["success", "complete", "death"]
CALLBACK_KINDS: tuple[CallbackKind, ...] = ("success", "complete", "death")

# What became of a callback once decided: let go (`fired`) or cancelled (`dropped`).
Decision = Literal["fired", "dropped"]
_DECISIONS: dict[str, Decision] = {"fired": "fired", "dropped": "dropped"}

# ARGV[4]: what a call does.
Mode = Literal["open", "add", "seal"]
# ARGV[5]: seal in the same call, or not.
_SEAL = "seal"
_KEEP_OPEN = ""

# The most jobs one call of the script takes; a larger batch is filled by several calls.
MAX_CALL_JOBS = 20_000

# The script's refusals, each with nothing written: the batch (BAD_BATCH), or one of its
# jobs as the enqueue script would refuse it (BAD_ARG, BAD_ID).
_REFUSALS = ("BAD_BATCH", "BAD_ARG", "BAD_ID")

# This package, wherever it is installed (or vendored).
_PACKAGE = __name__.rpartition(".")[0]


def batch_script_text() -> str:
    """The batch script's text as bundled: byte for byte protocol/v2/batch.lua."""
    return resources.files(_PACKAGE).joinpath("batch.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class BatchJob:
    """One job of a batch, or one of its callbacks, as `Client.enqueue_batch` takes it. A
    job without `id` gets a new UUID; a callback without one gets `<batch id>.on_<kind>`.
    Without `queue` it goes to the batch's queue. `delay` (seconds, or a timedelta) or
    `run_at` (an aware datetime, or ms since the Unix epoch) count from its enqueue (for a
    callback, from when it fires). A job of a batch holds no unique or debounce key and
    waits for no other job."""

    type: str
    payload: object = None
    id: str | None = None
    queue: str | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff: str | None = None
    delay: float | timedelta | None = None
    run_at: datetime | int | None = None
    expires_in_ms: int | None = None
    expires_at_ms: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class BatchCounts:
    """A batch's counts, as the script answers them after a call: its jobs (`total`), those
    not yet ended (`pending`), completed, dead (and so still able to complete after an
    operator's retry), ended for good otherwise (cancelled, expired or deleted), and
    whether it is sealed (no job may be added)."""

    total: int
    pending: int
    completed: int
    dead: int
    ended: int
    sealed: bool


@dataclass(frozen=True)
class BatchCallback:
    """One of a batch's callbacks: its kind, the job (`queue`, `id`) enqueued when it fires,
    and what became of it: `fired`, `dropped` (cancelled: its condition can no longer
    hold), or None while undecided."""

    kind: CallbackKind
    queue: str
    id: str
    decided: Decision | None = None


@dataclass(frozen=True)
class BatchMember:
    """A job of a batch, named by its queue (or partition) and id."""

    queue: str
    id: str


@dataclass(frozen=True)
class Batch:
    """A batch as its hash says it stands (`HGETALL <ns>:{<queue>}:batch:<id>`): its counts,
    when it was created and finished (ms since the Unix epoch; `finished_at` None until
    every job of the sealed batch ended), its callbacks, and its dead jobs."""

    id: str
    queue: str
    total: int
    pending: int
    completed: int
    dead: int
    ended: int
    sealed: bool
    created_at: int | None
    finished_at: int | None
    callbacks: Sequence[BatchCallback] = field(default_factory=tuple)
    dead_jobs: Sequence[BatchMember] = field(default_factory=tuple)

    @property
    def counts(self) -> BatchCounts:
        """The counts alone, as the script answers them."""
        return BatchCounts(self.total, self.pending, self.completed, self.dead, self.ended, self.sealed)

    @property
    def finished(self) -> bool:
        """Whether every job of the sealed batch ended."""
        return self.finished_at is not None

    def callback(self, kind: CallbackKind) -> BatchCallback | None:
        """The callback of `kind`, or None when the batch has none."""
        return next((cb for cb in self.callbacks if cb.kind == kind), None)


@dataclass(frozen=True)
class BatchCall:
    """One call of the script: checked and placed callbacks (with their kinds) and jobs."""

    mode: Mode
    seal: bool
    callbacks: Sequence[tuple[CallbackKind, ScriptJob]]
    jobs: Sequence[ScriptJob]


class BatchScript:
    """The batch script registered on one connection: redis-py sends EVALSHA and falls
    back to loading it when the server does not have it yet."""

    def __init__(self, connection: redis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = connection.register_script(batch_script_text())

    def run(self, queue: str, batch_id: str, call: BatchCall) -> BatchCounts:
        """Opens batch `batch_id` of `queue`, adds jobs to it or seals it, as `call` says;
        answers its counts after the call. A refusal raises InvalidJob naming `batch`,
        with the script's reason (`BAD_BATCH`: the batch exists already or is not known,
        it is sealed, an id twice or taken, too many jobs; `BAD_ARG` or `BAD_ID`: a job the
        enqueue script would refuse); nothing was written."""
        args: list[str | int] = [
            self._keys.namespace,
            queue,
            batch_id,
            call.mode,
            _SEAL if call.seal else _KEEP_OPEN,
            len(call.callbacks),
        ]
        for kind, job in call.callbacks:
            args.append(kind)
            args += all_args(job)
        args.append(len(call.jobs))
        for job in call.jobs:
            args += all_args(job)
        try:
            # The call goes where the batch's queue's stream is (a cluster client routes by it).
            reply = self._script(keys=[self._keys.stream(queue)], args=args)
        except redis.ResponseError as e:
            if str(e).startswith(_REFUSALS):
                raise InvalidJob("batch", str(e)) from None
            raise
        return parse_counts(reply)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _count(value: object) -> int | None:
    text = _text(value)
    return int(text) if text.isdigit() else None


def parse_counts(reply: object) -> BatchCounts:
    """The script's answer, `{total, pending, completed, dead, ended, sealed}`."""
    if isinstance(reply, (list, tuple)) and len(reply) == 6:
        counts = [_count(value) for value in reply]
        if all(count is not None for count in counts):
            total, pending, completed, dead, ended, sealed = (count or 0 for count in counts)
            return BatchCounts(total, pending, completed, dead, ended, sealed == 1)
    raise redis.ResponseError(f"unexpected reply from the batch script: {reply!r}")


def parse_batch(batch_id: str, queue: str, fields: Mapping[bytes | str, bytes | str]) -> Batch | None:
    """A batch from its hash's fields (bytes or str, as the connection decodes them); None
    for an empty hash (no such batch, or forgotten a week after it finished)."""
    if not fields:
        return None
    hash_ = {_text(name): _text(value) for name, value in fields.items()}

    def number(name: str) -> int:
        return _count(hash_.get(name, "0")) or 0

    def time(name: str) -> int | None:
        value = hash_.get(name)
        return None if value is None else _count(value)

    callbacks = []
    for kind in CALLBACK_KINDS:
        at = hash_.get(f"cb:{kind}")
        if at is None:
            continue
        cb_queue, _, cb_id = at.partition(" ")
        callbacks.append(
            BatchCallback(kind=kind, queue=cb_queue, id=cb_id, decided=_DECISIONS.get(hash_.get(f"done:{kind}", "")))
        )
    dead_jobs = []
    for name in sorted(hash_):
        if name.startswith("m:"):
            member_queue, _, member_id = name[2:].partition(" ")
            dead_jobs.append(BatchMember(queue=member_queue, id=member_id))
    return Batch(
        id=batch_id,
        queue=queue,
        total=number("total"),
        pending=number("pending"),
        completed=number("completed"),
        dead=number("dead"),
        ended=number("ended"),
        sealed=hash_.get("sealed") == "1",
        created_at=time("created_at"),
        finished_at=time("finished_at"),
        callbacks=tuple(callbacks),
        dead_jobs=tuple(dead_jobs),
    )
