"""The Flotilla client: enqueue jobs (fast path or the published script), read their status, wait for them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Union

from redis import Redis
from redis.typing import EncodableT, FieldT

from . import validate
from .batches import MAX_CALL_JOBS, Batch, BatchCall, BatchCounts, BatchJob, BatchScript, CallbackKind, parse_batch
from .dependencies import Dependencies
from .errors import InvalidJob, QueueFull, WaitTimeout
from .flows import DEFAULT_POLICY, UNNAMED, Enqueued, FlowItem, FlowJob, FlowScript, Parent, ParentRef, check_policy
from .ids import parse_full_id
from .keys import DEFAULT_NAMESPACE, DEFAULT_QUEUE, Keys
from .lookup import find_dependencies, find_job
from .partitions import Placement, split_partition
from .script import EnqueueScript, ScriptJob
from .status import JobStatus

# How long a unique key is held when the caller does not say: an hour.
DEFAULT_UNIQUE_TTL_SECONDS = 3600.0

# The URL scheme Flotilla's own settings use for a unix socket; redis-py spells it unix://.
_UNIX_SCHEME = "redis+unix://"

# Why a job that waits for other jobs cannot take a unique or debounce key.
_NO_KEY_AFTER = (
    "not with a unique or debounce key: a job that waits for other jobs holds neither "
    "(enqueue it with enqueue, enqueue_in or enqueue_at)"
)

# Why a job of a batch cannot wait for other jobs.
_NO_AFTER_IN_BATCH = (
    "not in a batch: a job of a batch waits for no other job and holds no unique or debounce key "
    "(enqueue it with enqueue_flow, or give a batch callback instead)"
)

# A job of a batch, or a callback, as a caller may give it.
BatchJobLike = Union[BatchJob, FlowJob]


@dataclass(frozen=True)
class Unique:
    """What `enqueue_unique` did: `created` is False when another job holds the key, and
    `id` is then that job's."""

    id: str
    created: bool


@dataclass(frozen=True)
class Debounced:
    """What `enqueue_debounced` did: `folded` is True when the job was folded into the one
    waiting under its debounce key, and `id` is then that job's."""

    id: str
    folded: bool


@dataclass(frozen=True)
class _Options:
    """A job's options, checked."""

    queue: str
    type: str
    payload: str
    max_attempts: int | None
    timeout_ms: int | None
    backoff: str | None
    # When the job may no longer start, ms since the Unix epoch; None: never.
    expires_at_ms: int | None


class Client:
    """Enqueues Flotilla jobs on one Redis and reads them back. Works with connections
    made with or without `decode_responses`."""

    def __init__(
        self,
        redis: Redis,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        max_payload_bytes: int = validate.DEFAULT_MAX_PAYLOAD_BYTES,
        max_queue_len: int | None = None,
    ) -> None:
        """`max_payload_bytes` should match the workers' `limits.max_payload_bytes`.
        `max_queue_len` caps each queue's depth (ready plus scheduled jobs): enqueues
        beyond it raise QueueFull. The script keeps the cap exactly; a fast-path enqueue
        reads the depth first, so producers racing may overshoot it by a few jobs."""
        self._redis = redis
        self._keys = Keys(validate.check_name("namespace", namespace))
        self._max_payload_bytes = validate.check_max_payload_bytes(max_payload_bytes)
        self._max_queue_len = None if max_queue_len is None else validate.check_max_queue_len(max_queue_len)
        self._script = EnqueueScript(redis, self._keys)
        self._flow_script = FlowScript(redis, self._keys)
        self._batch_script = BatchScript(redis, self._keys)
        self._placement = Placement(redis, self._keys)

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        max_payload_bytes: int = validate.DEFAULT_MAX_PAYLOAD_BYTES,
        max_queue_len: int | None = None,
    ) -> Client:
        """A client on a new connection to `url` (redis://, rediss://, unix:// or
        redis+unix://, the form Flotilla's settings use)."""
        if url.startswith(_UNIX_SCHEME):
            connection = Redis(unix_socket_path=url[len(_UNIX_SCHEME) :])
        else:
            connection = Redis.from_url(url)
        return cls(connection, namespace, max_payload_bytes=max_payload_bytes, max_queue_len=max_queue_len)

    @property
    def keys(self) -> Keys:
        """The key names this client writes to."""
        return self._keys

    def enqueue(
        self,
        job_type: str,
        payload: object = None,
        *,
        queue: str = DEFAULT_QUEUE,
        id: str | None = None,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        backoff: str | None = None,
        expires_in_ms: int | None = None,
        expires_at_ms: int | None = None,
        group: str | None = None,
        after: Sequence[ParentRef] | None = None,
    ) -> str:
        """Enqueues a job to run now and returns its id. Without `id` it takes the fast
        path: one XADD carrying the whole job, whose entry id is the job id; fields left
        out take the workers' defaults. With `id` it goes through the published script: one
        entry carrying the job, and an id key remembering the id (no record unless the job
        dies, is handed back or the like), so the same id enqueued again runs once. On a
        queue split into partitions, a job without `id` gets a new UUID and goes through the
        script.

        The id returned is the job's id within `queue`: an entry id (fast path) is unique
        there only, and `full_id(queue, id)` gives the id that names the job anywhere
        (`<queue>:<entry id>`; an id of the job's own is its full id as it is).

        `expires_in_ms` (from now, by this process's clock) or `expires_at_ms` (ms since
        the Unix epoch) is when the job may no longer start: one not started by then (its
        queue paused or backed up, its retry due later) ends as `expired`, unrun; one
        already running finishes. The other enqueue methods take them too.

        `group` (a name) makes the job one of a group: where the queue's limit says
        `group_concurrency=N`, at most N jobs of a group run at once, and where it says
        `group_rate=10/s`, at most that many start per interval; the rest wait their turn
        (reported `pending`). A job of a group goes through the script, with a
        new UUID unless `id` is given. `enqueue_in`, `enqueue_at` and `enqueue_debounced`
        take a group too: their job waits for its time and then waits its group's turn as
        a new one does. So does `enqueue_unique`: a unique job of a group holds its key
        while it waits its group's turn; with a `delay` it waits for its time first, then
        for its turn.

        `after` (protocol 2.19) names jobs enqueued before, in any queue, that this one
        waits for: a Parent(queue, id, policy), a `(queue, id)` or `(queue, id, policy)`
        tuple, an Enqueued, or an id as `status` takes it (a full id names its queue, any
        other id is of "default"). The job waits (reported `waiting`) until each has
        completed, then is enqueued as it would have been now, and its handler reads their
        results. If a parent ends without completing, `policy` says what the job does:
        `cancel` (the default: it ends cancelled, unrun), `run` (it runs anyway) or `wait`
        (it waits for an operator's retry of the dead parent). It goes through the flow
        script, with a new UUID unless `id` is given; an id taken already, a parent not
        known or already ended under `cancel` raise InvalidJob with the script's reason,
        and nothing is written. `enqueue_in` and `enqueue_at` take `after` too: their delay
        or time counts from when the last parent is done. See `enqueue_flow` for many jobs
        with edges between them."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        job_group = self._group(group)
        if after:
            return self._enqueue_after(options, self._job_id(id), after, group=job_group)
        if job_group is not None:
            return self._enqueue_scripted(options, self._job_id(id), group=job_group)[0]
        if id is None and not self._placement.is_split(options.queue):
            return self._enqueue_fast(options)
        # On a queue of several partitions a job gets an id of its own: entry ids are per
        # stream, so two partitions may hand out the same one, and `status` could not tell
        # the two jobs apart.
        return self._enqueue_scripted(options, self._job_id(id))[0]

    def enqueue_in(
        self,
        delay: float | timedelta,
        job_type: str,
        payload: object = None,
        *,
        queue: str = DEFAULT_QUEUE,
        id: str | None = None,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        backoff: str | None = None,
        expires_in_ms: int | None = None,
        expires_at_ms: int | None = None,
        group: str | None = None,
        after: Sequence[ParentRef] | None = None,
    ) -> str:
        """Enqueues a job to run after `delay` (seconds, or a timedelta), measured on the
        Redis server's clock. Returns its id (a new UUID unless given). Until then it has no
        record: its id waits in the queue's `later` set and its id key holds the job.

        With `group` (see `enqueue`), once its time comes the job waits its group's turn
        as a new one does (reported `pending`). With `after` (see `enqueue`), the delay
        counts from when its last parent is done."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        wait_ms = validate.delay_ms("delay", delay)
        job_group = self._group(group)
        if after:
            return self._enqueue_after(options, self._job_id(id), after, delay_ms=wait_ms, group=job_group)
        return self._enqueue_scripted(options, self._job_id(id), delay_ms=wait_ms, group=job_group)[0]

    def enqueue_at(
        self,
        when: datetime | int,
        job_type: str,
        payload: object = None,
        *,
        queue: str = DEFAULT_QUEUE,
        id: str | None = None,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        backoff: str | None = None,
        expires_in_ms: int | None = None,
        expires_at_ms: int | None = None,
        group: str | None = None,
        after: Sequence[ParentRef] | None = None,
    ) -> str:
        """Enqueues a job to run no earlier than `when` (an aware datetime, or milliseconds
        since the Unix epoch); a time in the past runs now. Returns its id. It waits as
        `enqueue_in`'s job does, with `group` too. With `after` (see `enqueue`) it runs no
        earlier than `when` nor before its last parent is done."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        due_ms = validate.run_at_ms(when)
        job_group = self._group(group)
        if after:
            return self._enqueue_after(options, self._job_id(id), after, run_at_ms=due_ms, group=job_group)
        return self._enqueue_scripted(options, self._job_id(id), run_at_ms=due_ms, group=job_group)[0]

    def enqueue_unique(
        self,
        unique_key: str,
        job_type: str,
        payload: object = None,
        *,
        ttl: float | timedelta = DEFAULT_UNIQUE_TTL_SECONDS,
        queue: str = DEFAULT_QUEUE,
        id: str | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        backoff: str | None = None,
        expires_in_ms: int | None = None,
        expires_at_ms: int | None = None,
        hold_for_ttl: bool = False,
        group: str | None = None,
        after: None = None,
    ) -> Unique:
        """Enqueues a job unless another job of the queue holds `unique_key`. The key is
        held for `ttl` (seconds, or a timedelta) and released when the job completes or is
        cancelled, or kept for the whole TTL with `hold_for_ttl`.

        With `group` (see `enqueue`) the job holds its key while it waits its group's turn
        (reported `pending`), so a unique enqueue of the same key meanwhile answers its id;
        with a `delay` it waits for its time first (reported `scheduled`), then for its
        turn.

        A unique job waits for no other job: `after` is refused (InvalidJob)."""
        if after is not None:
            raise InvalidJob("after", _NO_KEY_AFTER)
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        key = validate.check_name("unique_key", unique_key)
        lock_ms = validate.ttl_ms("ttl", ttl)
        wait_ms = 0 if delay is None else validate.delay_ms("delay", delay)
        job_group = self._group(group)
        job_id, outcome = self._enqueue_scripted(
            options,
            self._job_id(id),
            delay_ms=wait_ms,
            unique_key=key,
            unique_ttl_ms=lock_ms,
            hold_unique_for_ttl=hold_for_ttl,
            group=job_group,
        )
        return Unique(id=job_id, created=outcome == "created")

    def enqueue_debounced(
        self,
        debounce_key: str,
        job_type: str,
        payload: object = None,
        *,
        delay: float | timedelta,
        max_delay: float | timedelta | None = None,
        queue: str = DEFAULT_QUEUE,
        id: str | None = None,
        max_attempts: int | None = None,
        timeout_ms: int | None = None,
        backoff: str | None = None,
        expires_in_ms: int | None = None,
        expires_at_ms: int | None = None,
        group: str | None = None,
        after: None = None,
    ) -> Debounced:
        """Enqueues a job that runs `delay` (seconds, or a timedelta) after the last enqueue
        of `debounce_key`, once for a burst: while a job of this key waits for its first
        run, this one is folded into it (its payload and options win, the waiting job's id
        stays), and it runs no later than `max_delay` after the burst's first enqueue.

        With `group` (see `enqueue`), once its time comes the job waits its group's turn
        as a new one does. A job folded into the waiting one brings its group (or none),
        as it brings its payload.

        A debounced job waits for no other job: `after` is refused (InvalidJob)."""
        if after is not None:
            raise InvalidJob("after", _NO_KEY_AFTER)
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        key = validate.check_name("debounce_key", debounce_key)
        delay_ms = validate.ttl_ms("delay", delay)
        max_ms = 0 if max_delay is None else validate.ttl_ms("max_delay", max_delay)
        job_group = self._group(group)
        job_id, outcome = self._enqueue_scripted(
            options,
            self._job_id(id),
            debounce=(key, delay_ms, max_ms),
            group=job_group,
        )
        return Debounced(id=job_id, folded=outcome == "debounced")

    def status(self, id: str, queue: str | None = None) -> JobStatus | None:
        """The job as it is now, or None when it is found nowhere: trimmed by retention,
        never enqueued, or a raw entry with an id of its own that no worker has read yet.

        `id` is the job's id within `queue` or its full id (`<queue>:<entry id>`, see
        `full_id`). A full id names its queue, so `queue` may be left out; given, it must
        be that queue (or the queue that partition belongs to), else the job is not in it
        and the answer is None. Left out with any other id, `queue` is "default".

        A job waiting for its parents (see `enqueue`'s `after`) is `waiting`, with the
        type, payload and options it was given and when it was created."""
        located = self._locate(id, queue)
        if located is None:
            return None
        where, job_id = located
        # A partitioned queue's job is in one of its partitions: its id names the likeliest.
        for partition in self._placement.candidates(where, job_id):
            found = find_job(self._redis, self._keys, partition, job_id)
            if found is not None:
                return found
        return None

    def dependencies(self, id: str, queue: str | None = None) -> Dependencies | None:
        """What a job that waits (or waited) for other jobs waits for, from its `deps` hash
        (protocol 2.19): how many parents it has (`edges`) and still waits for (`left`,
        None once it was let go), and each parent that ended, with how (`outcome`) and its
        result (decoded JSON) when it completed with one; `blocked` for one that died
        under a `wait` edge. None when the job never had parents, was cancelled while it
        waited, or was let go over a week ago (the hash is kept that long for its handler
        to read). `id` and `queue` are as `status` takes them."""
        located = self._locate(id, queue)
        if located is None:
            return None
        where, job_id = located
        for partition in self._placement.candidates(where, job_id):
            found = find_dependencies(self._redis, self._keys, partition, job_id)
            if found is not None:
                return found
        return None

    def enqueue_flow(self, jobs: Sequence[FlowJob], *, flow_id: str | None = None) -> list[Enqueued]:
        """Creates a flow (protocol 2.19): jobs that wait for other jobs, their parents,
        in one script call. Each FlowJob names its parents in `after`: jobs of this flow
        (by id, in any order) or jobs enqueued before, in any queue, each with what the job
        does if that parent ends without completing (`cancel`, the default; `run`;
        `wait`). Everything is checked first, then written, so the whole flow exists or
        none of it does: a cycle, a parent not known, a parent already ended under
        `cancel`, an id twice or taken, or a job the enqueue script would refuse raise
        InvalidJob with the script's reason, and nothing is written.

        Answers each job, in order: its id (a new UUID unless given), the queue (or
        partition) it is in, and `created` (it waits for nothing still running, so it
        was enqueued at once) or `waiting` (reported `waiting` by `status` until its last
        parent is done; then it is enqueued as it would have been then, its delay or time
        counting from that moment). A flow is let in whatever its queues' length caps. On
        a queue split into partitions each job goes to the partition its group (else its
        id) names, and its children name that partition.

        The flow's jobs are listed under `flow_id` (a name; a new UUID when left out) in
        its first job's queue for a week, for `flotilla flows show`, and each waiting
        job's dependencies name it; a flow id already listed there is refused."""
        if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
            raise InvalidJob("jobs", "a list of FlowJob", jobs)
        flow = str(uuid.uuid4()) if flow_id is None else validate.check_name("flow_id", flow_id)
        if not jobs:
            return []
        given: list[tuple[FlowJob, _Options, str, str | None]] = []
        for job in jobs:
            if not isinstance(job, FlowJob):
                raise InvalidJob("jobs", "a list of FlowJob", job)
            options = self._options(
                job.type,
                job.payload,
                job.queue,
                job.max_attempts,
                job.timeout_ms,
                job.backoff,
                job.expires_in_ms,
                job.expires_at_ms,
            )
            given.append((job, options, self._job_id(job.id), self._group(job.group)))
        # The partition each job goes to, by the queue it was given and its id: its
        # children in the flow name it by those.
        placed: dict[tuple[str, str], str] = {}
        queues_of: dict[str, set[str]] = {}
        for _, options, job_id, group in given:
            placed[(options.queue, job_id)] = self._placement.place(options.queue, group if group is not None else job_id)
            queues_of.setdefault(job_id, set()).add(options.queue)
        items = []
        for job, options, job_id, group in given:
            delay_ms = 0 if job.delay is None else validate.delay_ms("delay", job.delay)
            if job.run_at is not None and job.delay is not None:
                raise InvalidJob("run_at", "not together with delay: give one or the other")
            run_at_ms = None if job.run_at is None else validate.run_at_ms(job.run_at)
            parents = self._parents(job.after, queues_of)
            items.append(
                FlowItem(
                    job=self._flow_job(options, job_id, placed[(options.queue, job_id)], run_at_ms, delay_ms, group),
                    parents=[self._parent_partition(parent, placed) for parent in parents],
                )
            )
        return self._run_flow(items, flow, "flow")

    def enqueue_batch(
        self,
        batch_id: str,
        jobs: Sequence[BatchJobLike],
        queue: str = DEFAULT_QUEUE,
        on_success: BatchJobLike | None = None,
        on_complete: BatchJobLike | None = None,
        on_death: BatchJobLike | None = None,
        keep_open: bool = False,
    ) -> BatchCounts:
        """Creates batch `batch_id` (a name, unique in `queue`, where its counts live; protocol
        2.19): its jobs, whose ends it counts, and up to three callbacks, each a job enqueued
        once when its condition holds: `on_success` once every job completed, `on_complete`
        once every job ended however, `on_death` at the first job that ends without
        completing. Until then a callback is `waiting`; it is cancelled once its condition
        can no longer hold. The batch is sealed (no job may be added) unless `keep_open`:
        then add jobs with `add_to_batch` and seal it with `seal_batch`; its `success` and
        `complete` callbacks wait for the seal.

        Jobs and callbacks are BatchJob (or FlowJob without `after`): a job without an id
        gets a new UUID, a callback without one `<batch id>.on_<kind>`; one without a queue
        goes to `queue`. A job of a batch holds no unique or debounce key and waits for no
        other job. Up to 20 000 jobs go in one script call, checked whole before anything is
        written; more are sent in several calls (the batch opened unsealed with the first
        20 000, sealed by the last), so a process that stops between them leaves the batch
        open. A batch id in use, an id twice or taken, or a job the enqueue script would
        refuse raise InvalidJob with the script's reason. Returns the batch's counts."""
        name = validate.check_name("batch_id", batch_id)
        where = validate.check_name("queue", queue)
        members = self._batch_members(jobs, where)
        callbacks: list[tuple[CallbackKind, ScriptJob]] = []
        given: tuple[tuple[CallbackKind, BatchJobLike | None], ...] = (
            ("success", on_success),
            ("complete", on_complete),
            ("death", on_death),
        )
        for kind, callback in given:
            if callback is not None:
                callbacks.append((kind, self._batch_member(callback, where, f"on_{kind}", f"{name}.on_{kind}")))
        chunks = self._batch_chunks(members)
        calls = [BatchCall(mode="open", seal=False, callbacks=callbacks, jobs=chunks[0])]
        calls += [BatchCall(mode="add", seal=False, callbacks=(), jobs=chunk) for chunk in chunks[1:]]
        if not keep_open:
            calls[-1] = BatchCall(mode=calls[-1].mode, seal=True, callbacks=calls[-1].callbacks, jobs=calls[-1].jobs)
        return self._run_batch(name, where, calls, [job for _, job in callbacks])

    def add_to_batch(
        self,
        batch_id: str,
        jobs: Sequence[BatchJobLike],
        queue: str = DEFAULT_QUEUE,
        seal: bool = False,
    ) -> BatchCounts:
        """Adds jobs (as `enqueue_batch` takes them) to the open batch `batch_id` of `queue`,
        sealing it after them when `seal`. More than 20 000 jobs are sent in several calls,
        the last sealing. A batch not known or sealed, an id twice or taken, or a job the
        enqueue script would refuse raise InvalidJob with the script's reason. Returns the
        batch's counts."""
        name = validate.check_name("batch_id", batch_id)
        where = validate.check_name("queue", queue)
        chunks = self._batch_chunks(self._batch_members(jobs, where))
        calls = [
            BatchCall(mode="add", seal=seal and n == len(chunks) - 1, callbacks=(), jobs=chunk)
            for n, chunk in enumerate(chunks)
        ]
        return self._run_batch(name, where, calls, [])

    def seal_batch(self, batch_id: str, queue: str = DEFAULT_QUEUE) -> BatchCounts:
        """Seals the open batch `batch_id` of `queue`: no job may be added from now on, and
        its `success` and `complete` callbacks fire once its jobs have ended (at once when
        they all have). Sealing a sealed batch changes nothing. A batch not known raises
        InvalidJob. Returns the batch's counts."""
        name = validate.check_name("batch_id", batch_id)
        where = validate.check_name("queue", queue)
        return self._run_batch(name, where, [BatchCall(mode="seal", seal=True, callbacks=(), jobs=())], [])

    def batch(self, batch_id: str, queue: str = DEFAULT_QUEUE) -> Batch | None:
        """Batch `batch_id` of `queue` as it stands (`HGETALL` of its hash): its counts,
        whether it is sealed, when it was created and finished, its callbacks (each with
        `fired`, `dropped` or None while undecided) and its dead jobs. None when there is
        none: never opened, or forgotten a week after it finished."""
        name = validate.check_name("batch_id", batch_id)
        where = validate.check_name("queue", queue)
        return parse_batch(name, where, self._redis.hgetall(self._keys.batch(where, name)))

    def _batch_members(self, jobs: object, queue: str) -> list[ScriptJob]:
        if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
            raise InvalidJob("jobs", "a list of BatchJob", jobs)
        members = [self._batch_member(job, queue, "jobs", None) for job in jobs]
        # Several calls are checked one by one: an id twice is refused before the first.
        if len(members) > MAX_CALL_JOBS:
            seen: set[tuple[str, str]] = set()
            for member in members:
                if (member.queue, member.id) in seen:
                    raise InvalidJob("jobs", f"job id {member.id} is in the batch twice")
                seen.add((member.queue, member.id))
        return members

    def _batch_member(self, job: object, queue: str, field: str, default_id: str | None) -> ScriptJob:
        """A job of a batch (or a callback, `default_id` its id unless given) checked and
        placed: in its queue (else the batch's), the partition its group (else its id)
        names."""
        if not isinstance(job, (BatchJob, FlowJob)):
            raise InvalidJob(field, "a BatchJob", job)
        if isinstance(job, FlowJob) and job.after:
            raise InvalidJob("after", _NO_AFTER_IN_BATCH)
        options = self._options(
            job.type,
            job.payload,
            queue if job.queue is None else job.queue,
            job.max_attempts,
            job.timeout_ms,
            job.backoff,
            job.expires_in_ms,
            job.expires_at_ms,
        )
        job_id = self._job_id(job.id if job.id is not None else default_id)
        group = self._group(job.group)
        delay_ms = 0 if job.delay is None else validate.delay_ms("delay", job.delay)
        if job.run_at is not None and job.delay is not None:
            raise InvalidJob("run_at", "not together with delay: give one or the other")
        run_at_ms = None if job.run_at is None else validate.run_at_ms(job.run_at)
        placed = self._placement.place(options.queue, group if group is not None else job_id)
        return self._flow_job(options, job_id, placed, run_at_ms, delay_ms, group)

    @staticmethod
    def _batch_chunks(members: list[ScriptJob]) -> list[list[ScriptJob]]:
        """The jobs of each call: at most 20 000 each, and one call (maybe of none) at least."""
        return [members[at : at + MAX_CALL_JOBS] for at in range(0, len(members), MAX_CALL_JOBS)] or [[]]

    def _run_batch(self, batch_id: str, queue: str, calls: list[BatchCall], callbacks: list[ScriptJob]) -> BatchCounts:
        # The queues are named first, so tools list them (and find the batch) by the time
        # its jobs are there.
        pipe = self._redis.pipeline(transaction=False)
        named = [queue, *(job.queue for job in callbacks), *(job.queue for call in calls for job in call.jobs)]
        for name in dict.fromkeys(named):
            pipe.sadd(self._keys.queues(), name)
        pipe.execute()
        counts = self._batch_script.run(queue, batch_id, calls[0])
        for call in calls[1:]:
            counts = self._batch_script.run(queue, batch_id, call)
        return counts

    def _locate(self, id: str, queue: str | None) -> tuple[str, str] | None:
        """Where the job `id` (an id within a queue, or a full id) is looked for, with
        `queue` as the caller gave it: the queue or partition and the id within it, or
        None when a full id names another queue than `queue`."""
        given = validate.check_name("id", id)
        named, job_id = parse_full_id(given)
        if queue is not None:
            validate.check_name("queue", queue)
        if named is None:
            return DEFAULT_QUEUE if queue is None else queue, job_id
        if queue is None or queue == named or split_partition(named)[0] == queue:
            # The full id names the very queue (or partition) the job was written to.
            return named, job_id
        return None

    def wait(
        self,
        id: str,
        queue: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> JobStatus:
        """Polls until the job is completed, dead, cancelled or expired, and returns it: a
        job that is `waiting` (for its parents), `scheduled`, or `failed` with a retry due,
        is waited for. Raises WaitTimeout (a TimeoutError) carrying the last status seen
        when time runs out. `id` and `queue` are as `status` takes them: a full id may
        stand without its queue."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.status(id, queue)
            if last is not None and last.finished:
                return last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(id, timeout, last)
            time.sleep(min(poll_interval, remaining))

    def _options(
        self,
        job_type: str,
        payload: object,
        queue: str,
        max_attempts: int | None,
        timeout_ms: int | None,
        backoff: str | None,
        expires_in_ms: int | None,
        expires_at_ms: int | None,
    ) -> _Options:
        return _Options(
            queue=validate.check_name("queue", queue),
            type=validate.check_name("type", job_type),
            payload=validate.encode_payload(payload, self._max_payload_bytes),
            max_attempts=None if max_attempts is None else validate.check_max_attempts(max_attempts),
            timeout_ms=None if timeout_ms is None else validate.check_timeout_ms(timeout_ms),
            backoff=None if backoff is None else validate.check_backoff(backoff),
            # On this process's clock: the protocol takes an expiry as a time, not a
            # duration, on the fast path and through the script alike, so nothing on the
            # server's side can count it from the enqueue.
            expires_at_ms=validate.expiry_ms(expires_in_ms, expires_at_ms, time.time_ns() // 1_000_000),
        )

    @staticmethod
    def _group(group: str | None) -> str | None:
        return None if group is None else validate.check_name("group", group)

    @staticmethod
    def _job_id(id: str | None) -> str:
        return str(uuid.uuid4()) if id is None else validate.check_job_id(id)

    def _enqueue_after(
        self,
        options: _Options,
        job_id: str,
        after: Sequence[ParentRef],
        *,
        run_at_ms: int | None = None,
        delay_ms: int = 0,
        group: str | None = None,
    ) -> str:
        """A job that waits for jobs enqueued before: a flow of one."""
        parents = [self._parent_partition(parent, {}) for parent in self._parents(after, {})]
        queue = self._placement.place(options.queue, group if group is not None else job_id)
        job = self._flow_job(options, job_id, queue, run_at_ms, delay_ms, group)
        return self._run_flow([FlowItem(job=job, parents=parents)], UNNAMED, "after")[0].id

    def _flow_job(
        self,
        options: _Options,
        job_id: str,
        queue: str,
        run_at_ms: int | None,
        delay_ms: int,
        group: str | None,
    ) -> ScriptJob:
        """A job of a flow as the flow script takes it: placed in `queue`, with no unique
        or debounce key and no queue cap (a flow is let in whole)."""
        return ScriptJob(
            queue=queue,
            id=job_id,
            type=options.type,
            payload=options.payload,
            max_attempts=options.max_attempts,
            timeout_ms=options.timeout_ms,
            backoff=options.backoff,
            expires_at_ms=options.expires_at_ms,
            run_at_ms=run_at_ms,
            delay_ms=delay_ms,
            group=group,
        )

    def _run_flow(self, items: list[FlowItem], flow_id: str, refused_field: str) -> list[Enqueued]:
        # The queues are named first, so tools list them by the time their jobs are there.
        pipe = self._redis.pipeline(transaction=False)
        for queue in dict.fromkeys(item.job.queue for item in items):
            pipe.sadd(self._keys.queues(), queue)
        pipe.execute()
        outcomes = self._flow_script.run(items, flow_id, refused_field)
        return [Enqueued(id=item.job.id, queue=item.job.queue, outcome=outcome) for item, outcome in zip(items, outcomes)]

    @staticmethod
    def _parents(after: object, flow_ids: dict[str, set[str]]) -> list[Parent]:
        """The parents `after` names, checked, by the queue each was given in. A string
        names the job of the flow with that id (`flow_ids`: id -> the queues of the flow's
        jobs with it), else a job as `status` takes its id."""
        if isinstance(after, (str, bytes, Parent, Enqueued)) or not isinstance(after, Sequence):
            raise InvalidJob("after", "a list of parents: Parent, (queue, id), (queue, id, policy), Enqueued or id", after)
        parents = []
        for ref in after:
            queue: object
            parent_id: object
            policy: object = DEFAULT_POLICY
            if isinstance(ref, Parent):
                queue, parent_id, policy = ref.queue, ref.id, ref.policy
            elif isinstance(ref, Enqueued):
                queue, parent_id = ref.queue, ref.id
            elif isinstance(ref, tuple) and len(ref) in (2, 3):
                queue, parent_id = ref[0], ref[1]
                if len(ref) == 3:
                    policy = ref[2]
            elif isinstance(ref, str):
                in_flow = flow_ids.get(ref, set())
                if len(in_flow) > 1:
                    raise InvalidJob("after", "names jobs of the flow in two queues: give (queue, id)", ref)
                if in_flow:
                    queue, parent_id = next(iter(in_flow)), ref
                else:
                    named, parent_id = parse_full_id(ref)
                    queue = DEFAULT_QUEUE if named is None else named
            else:
                raise InvalidJob("after", "a Parent, (queue, id), (queue, id, policy), Enqueued or id", ref)
            parents.append(
                Parent(
                    queue=validate.check_name("after", queue),
                    id=validate.check_name("after", parent_id),
                    policy=check_policy(policy),
                )
            )
        return parents

    def _parent_partition(self, parent: Parent, placed: dict[tuple[str, str], str]) -> Parent:
        """The parent named by the partition that holds it: a job of the flow where it was
        placed, a job enqueued before in the partition of its queue that knows its id."""
        partition = placed.get((parent.queue, parent.id))
        if partition is None:
            partition = self._partition_knowing(parent.queue, parent.id)
        return Parent(queue=partition, id=parent.id, policy=parent.policy)

    def _partition_knowing(self, queue: str, job_id: str) -> str:
        """The partition of `queue` that knows job `job_id` (by its record, its id key or
        `done_ids`): the queue itself when it has one partition, or is a partition."""
        if split_partition(queue)[1] or self._placement.count(queue) <= 1:
            return queue
        candidates = self._placement.candidates(queue, job_id)
        pipe = self._redis.pipeline(transaction=False)
        for partition in candidates:
            pipe.exists(self._keys.job(partition, job_id), self._keys.id_key(partition, job_id))
            pipe.zscore(self._keys.done_ids(partition), job_id)
        replies = pipe.execute()
        for partition, exists, done in zip(candidates, replies[0::2], replies[1::2]):
            if exists or done is not None:
                return partition
        raise InvalidJob("after", f"parent {job_id} is not known in any partition of queue {queue}")

    def _enqueue_fast(self, options: _Options) -> str:
        # Only what the job sets of its own, as the Rust producer writes it: the workers'
        # defaults fill the rest.
        fields: dict[FieldT, EncodableT] = {"type": options.type, "payload": options.payload}
        if options.max_attempts is not None:
            fields["max_attempts"] = options.max_attempts
        if options.timeout_ms is not None:
            fields["timeout"] = options.timeout_ms
        if options.backoff is not None:
            fields["backoff"] = options.backoff
        if options.expires_at_ms is not None:
            fields["expires_at"] = options.expires_at_ms
        queue = self._placement.place(options.queue, None)
        if self._max_queue_len is not None:
            self._check_depth(queue, self._max_queue_len)
        pipe = self._redis.pipeline(transaction=False)
        # The queue is named first, so tools list it by the time its job is there.
        pipe.sadd(self._keys.queues(), queue)
        pipe.xadd(self._keys.stream(queue), fields)
        _, entry_id = pipe.execute()
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def _check_depth(self, queue: str, cap: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(self._keys.stream(queue))
        # Jobs waiting for a time are in `delayed` (with a record) or `later` (without);
        # jobs waiting their group's turn are counted in `grouped` (none: 0).
        pipe.zcard(self._keys.delayed(queue))
        pipe.zcard(self._keys.later(queue))
        pipe.get(self._keys.grouped(queue))
        ready, scheduled, later, grouped = pipe.execute()
        depth = int(ready) + int(scheduled) + int(later) + max(int(grouped or 0), 0)
        if depth >= cap:
            raise QueueFull(queue, f"QUEUE_FULL queue {queue} holds {depth} jobs, its limit is {cap}")

    def _enqueue_scripted(
        self,
        options: _Options,
        job_id: str,
        *,
        run_at_ms: int | None = None,
        delay_ms: int = 0,
        unique_key: str | None = None,
        unique_ttl_ms: int = 0,
        hold_unique_for_ttl: bool = False,
        debounce: tuple[str, int, int] | None = None,
        group: str | None = None,
    ) -> tuple[str, str]:
        # Every enqueue of one group, unique key or debounce key (else one id) goes to the
        # same partition, so it meets the group's line and window, the lock, the waiting
        # job, the id key or the record there. A group comes first: a unique or debounced
        # job of a group waits its turn in its group's partition, and its key is unique
        # there.
        placed_by = (
            group if group is not None else unique_key if unique_key is not None else debounce[0] if debounce else job_id
        )
        queue = self._placement.place(options.queue, placed_by)
        self._redis.sadd(self._keys.queues(), queue)
        return self._script.run(
            ScriptJob(
                queue=queue,
                id=job_id,
                type=options.type,
                payload=options.payload,
                max_attempts=options.max_attempts,
                timeout_ms=options.timeout_ms,
                backoff=options.backoff,
                expires_at_ms=options.expires_at_ms,
                run_at_ms=run_at_ms,
                delay_ms=delay_ms,
                unique_key=unique_key,
                unique_ttl_ms=unique_ttl_ms,
                hold_unique_for_ttl=hold_unique_for_ttl,
                max_queue_len=self._max_queue_len,
                debounce_key=debounce[0] if debounce else None,
                debounce_delay_ms=debounce[1] if debounce else 0,
                debounce_max_ms=debounce[2] if debounce else 0,
                group=group,
            )
        )
