"""The Flotilla client: enqueue jobs (fast path or the published script), read their status, wait for them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from redis.typing import EncodableT, FieldT

from . import validate
from .errors import QueueFull, WaitTimeout
from .ids import parse_full_id
from .keys import DEFAULT_NAMESPACE, Keys
from .lookup import find_job
from .partitions import Placement, split_partition
from .script import EnqueueScript, ScriptJob
from .status import JobStatus

DEFAULT_QUEUE = "default"

# How long a unique key is held when the caller does not say: an hour.
DEFAULT_UNIQUE_TTL_SECONDS = 3600.0

# The URL scheme Flotilla's own settings use for a unix socket; redis-py spells it unix://.
_UNIX_SCHEME = "redis+unix://"


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
        for its turn."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        job_group = self._group(group)
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
    ) -> str:
        """Enqueues a job to run after `delay` (seconds, or a timedelta), measured on the
        Redis server's clock. Returns its id (a new UUID unless given). Until then it has no
        record: its id waits in the queue's `later` set and its id key holds the job.

        With `group` (see `enqueue`), once its time comes the job waits its group's turn
        as a new one does (reported `pending`)."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        wait_ms = validate.delay_ms("delay", delay)
        job_group = self._group(group)
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
    ) -> str:
        """Enqueues a job to run no earlier than `when` (an aware datetime, or milliseconds
        since the Unix epoch); a time in the past runs now. Returns its id. It waits as
        `enqueue_in`'s job does, with `group` too."""
        options = self._options(
            job_type, payload, queue, max_attempts, timeout_ms, backoff, expires_in_ms, expires_at_ms
        )
        due_ms = validate.run_at_ms(when)
        job_group = self._group(group)
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
    ) -> Unique:
        """Enqueues a job unless another job of the queue holds `unique_key`. The key is
        held for `ttl` (seconds, or a timedelta) and released when the job completes or is
        cancelled, or kept for the whole TTL with `hold_for_ttl`.

        With `group` (see `enqueue`) the job holds its key while it waits its group's turn
        (reported `pending`), so a unique enqueue of the same key meanwhile answers its id;
        with a `delay` it waits for its time first (reported `scheduled`), then for its
        turn."""
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
    ) -> Debounced:
        """Enqueues a job that runs `delay` (seconds, or a timedelta) after the last enqueue
        of `debounce_key`, once for a burst: while a job of this key waits for its first
        run, this one is folded into it (its payload and options win, the waiting job's id
        stays), and it runs no later than `max_delay` after the burst's first enqueue.

        With `group` (see `enqueue`), once its time comes the job waits its group's turn
        as a new one does. A job folded into the waiting one brings its group (or none),
        as it brings its payload."""
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
        and the answer is None. Left out with any other id, `queue` is "default"."""
        given = validate.check_name("id", id)
        named, job_id = parse_full_id(given)
        if queue is not None:
            validate.check_name("queue", queue)
        if named is None:
            where = DEFAULT_QUEUE if queue is None else queue
        elif queue is None or queue == named or split_partition(named)[0] == queue:
            # The full id names the very queue (or partition) the job was written to.
            where = named
        else:
            return None
        # A partitioned queue's job is in one of its partitions: its id names the likeliest.
        for partition in self._placement.candidates(where, job_id):
            found = find_job(self._redis, self._keys, partition, job_id)
            if found is not None:
                return found
        return None

    def wait(
        self,
        id: str,
        queue: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> JobStatus:
        """Polls until the job is completed, dead, cancelled or expired, and returns it: a
        job that is `scheduled`, or `failed` with a retry due, is waited for. Raises
        WaitTimeout (a TimeoutError) carrying the last status seen when time runs out. `id`
        and `queue` are as `status` takes them: a full id may stand without its queue."""
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
