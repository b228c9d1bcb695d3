"""The running fleet as the conformance tests see it: its keys, raw writes, the published script, and waits for outcomes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgpack
import redis
from flotilla_client import Client, JobStatus

REPO_ROOT = Path(__file__).resolve().parents[2]
ENQUEUE_LUA = REPO_ROOT / "protocol" / "v2" / "enqueue.lua"

NAMESPACE = "flotilla"
GROUP = "workers"

# Long enough for any single job of these tests on a loaded machine, short enough that a
# broken fleet fails the suite quickly.
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.02

T = TypeVar("T")
ENTRY_ID = re.compile(r"\d+-\d+")
Fields = Mapping[str, str | bytes | int]

# The states a job waits in without a record, as its id key spells them.
WAITING_STATES = frozenset({"scheduled", "failed"})


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def decoded(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    return {text(k): text(v) for k, v in fields.items()}


def pairs_to_dict(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[0::2], flat[1::2]))


def completions_of(flat: list[bytes]) -> list[dict[bytes, bytes]]:
    """A `done` entry's completions: a new one starts at each `id` field."""
    completions: list[dict[bytes, bytes]] = []
    shared: dict[bytes, bytes] = {}  # fields before the first `id`: every completion's
    for name, value in zip(flat[0::2], flat[1::2]):
        if name == b"id":
            completions.append(dict(shared))
        (completions[-1] if completions else shared)[name] = value
    return completions if completions or not shared else [shared]


def next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq) + 1}"


def unpack_waiting(value: bytes) -> tuple[str, dict[str, bytes]] | None:
    """What an id key holds while its job waits in `later` without a record: its state and
    the fields of the entry it becomes. Read with the msgpack library rather than the
    client's reader, so that the suite checks the documented form itself: the state, one
    space, then exactly one array of strings, field and value in turn. None for a value of
    another form (an entry id, or `done <entry id>` as protocol 2.7 wrote); a value that names a waiting state but
    does not hold such an array fails the test."""
    head, sep, packed = value.partition(b" ")
    if not sep or text(head) not in WAITING_STATES:
        return None
    try:
        # raw: strings stay bytes, since a payload (msgpack, say) need not be text.
        items = msgpack.unpackb(packed, raw=True)
    except (ValueError, msgpack.UnpackException) as e:
        raise AssertionError(f"a waiting id key holds {value!r}: {e}") from None
    assert isinstance(items, list) and len(items) % 2 == 0, f"a waiting id key holds {value!r}"
    assert all(isinstance(item, bytes) for item in items), f"a waiting id key holds {value!r}"
    return text(head), {text(items[i]): items[i + 1] for i in range(0, len(items), 2)}


@dataclass(frozen=True)
class Found:
    """A job where PROTOCOL.md's lookup by id finds it: its record, which leads whenever
    there is one; else, for a job with an id key (an id of its own, or a job retried
    without a record), what its id key holds: the stream entry carrying it while it is
    ready or runs, or the entry it becomes while it waits in `later`; once it completed,
    its completion in `done`, from the millisecond its `done_ids` score names (or where
    a protocol 2.7 key, `done <entry id>`, names it)."""

    # "record", "entry" (on the queue's stream), "later" (waiting for its time or a
    # retry) or "done" (a completion).
    where: str
    # The record's status; "pending" or "running" (while the entry is in the group's
    # pending list) for an entry; "scheduled" or "failed" (a retry waits) in `later`;
    # "completed" for a completion.
    status: str
    fields: dict[str, str]
    # The id of the stream or `done` entry; None for a record or a job in `later`.
    entry_id: str | None = None

    def started_ms(self) -> int:
        """When the (last) attempt began: the record's `started_at`, or for a completion
        its entry's time (when it completed) less its `run_ms`."""
        if self.where == "done" and self.entry_id is not None:
            return int(self.entry_id.split("-")[0]) - int(self.fields.get("run_ms", "0"))
        return int(self.fields["started_at"])


class Fleet:
    """A Redis shared with one worker serving `critical`, `default` and `low`, read and
    written with plain commands (bytes in, bytes out)."""

    def __init__(self, r: redis.Redis, flotilla_bin: str, redis_url: str) -> None:
        self.r = r
        self.flotilla_bin = flotilla_bin
        self.redis_url = redis_url
        self.script_source = ENQUEUE_LUA.read_bytes()
        self.script_sha = self.r.script_load(self.script_source)
        # The Python client's lookup, for reading a job's state wherever the protocol keeps
        # it; the tests check the raw layout with their own reads.
        self.client = Client(r)

    # Keys, as PROTOCOL.md spells them.
    def stream(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:q"

    def job_key(self, job_id: str, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:job:{job_id}"

    def id_key(self, job_id: str, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:id:{job_id}"

    def delayed(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:delayed"

    def later(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:later"

    def done(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:done"

    def done_ids(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:done_ids"

    def dead(self, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:dead"

    def index(self, status: str, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:idx:{status}"

    def unique(self, key: str, queue: str = "default") -> str:
        return f"{NAMESPACE}:{{{queue}}}:unique:{key}"

    def queues(self) -> str:
        return f"{NAMESPACE}:{{global}}:queues"

    def paused(self) -> str:
        return f"{NAMESPACE}:{{global}}:paused"

    def workers(self) -> str:
        return f"{NAMESPACE}:{{global}}:workers"

    # Writing.
    def xadd(self, fields: Fields, queue: str = "default") -> str:
        """A raw entry, as a producer in any language writes it; returns its entry id."""
        return text(self.r.xadd(self.stream(queue), dict(fields)))

    def script(
        self,
        job_id: str,
        job_type: str,
        payload: str | bytes = "",
        *,
        queue: str = "default",
        content_type: str = "json",
        max_attempts: int = 3,
        timeout_ms: int = 1_800_000,
        backoff: str = "fixed:50",
        run_at_ms: int = 0,
        delay_ms: int = 0,
        unique_key: str | None = None,
        unique_ttl_ms: int = 0,
        queue_cap: int = 0,
        trace: str = "",
        version: str = "2",
        unique_hold: str = "",
    ) -> tuple[str, str]:
        """The published enqueue script, called by hand with EVALSHA (EVAL when the server
        has not loaded it): its KEYS and ARGV as its header lists them."""
        keys = [self.stream(queue), self.job_key(job_id, queue), self.delayed(queue)]
        if unique_key is not None:
            keys.append(self.unique(unique_key, queue))
        args: list[str | bytes | int] = [
            job_id, job_type, payload, content_type, max_attempts, timeout_ms, backoff,
            run_at_ms, delay_ms, unique_ttl_ms, queue_cap, queue, trace, version, unique_hold,
        ]
        try:
            reply = self.r.evalsha(self.script_sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            reply = self.r.eval(self.script_source, len(keys), *keys, *args)
        job, outcome = reply
        return text(job), text(outcome)

    # Reading.
    def server_ms(self) -> int:
        seconds, micros = self.r.time()
        return seconds * 1000 + micros // 1000

    def record(self, job_id: str, queue: str = "default") -> dict[str, str]:
        return decoded(self.r.hgetall(self.job_key(job_id, queue)))

    def record_raw(self, job_id: str, queue: str = "default") -> dict[str, bytes]:
        return {text(k): v for k, v in self.r.hgetall(self.job_key(job_id, queue)).items()}

    def entries_for(self, stream: str, job_id: str, since: str = "-") -> list[tuple[str, dict[str, str]]]:
        """The entries of a stream naming `job_id` in their `id` field, from the millisecond
        of the entry id `since` on. From its millisecond, not the id itself: an entry of
        another stream written in the same millisecond may take a lower sequence number."""
        found = []
        start = since if since == "-" else f"{since.partition('-')[0]}-0"
        while True:
            page = self._raw_range(stream, start, "+", 500)
            for entry_id, flat in page:
                # A `done` entry may hold several completions (a worker's batch), each a
                # run of fields that begins with `id`; any other entry is one whole.
                parts = completions_of(flat) if stream.endswith(":done") else [pairs_to_dict(flat)]
                for fields in parts:
                    entry = decoded(fields)
                    if entry.get("id") == job_id:
                        found.append((text(entry_id), entry))
            if len(page) < 500:
                return found
            start = next_id(text(page[-1][0]))

    def _raw_range(self, stream: str, start: str, end: str, count: int) -> list[tuple[bytes, list[bytes]]]:
        """XRANGE as Redis sends it: redis-py makes a dict of an entry's fields, which keeps
        only the last of each name."""
        raw = redis.Redis(connection_pool=self.r.connection_pool)
        raw.set_response_callback("XRANGE", lambda reply, **_: reply)
        return [(entry_id, flat or []) for entry_id, flat in raw.execute_command("XRANGE", stream, start, end, "COUNT", count) or []]

    def stream_entries_for(self, job_id: str, queue: str = "default") -> list[str]:
        """Entries still on a queue's stream that carry `job_id` in their `id` field."""
        return [eid for eid, _ in self.entries_for(self.stream(queue), job_id)]

    def in_pending_list(self, entry_id: str, queue: str = "default") -> tuple[str, int] | None:
        try:
            pending = self.r.xpending_range(self.stream(queue), GROUP, min=entry_id, max=entry_id, count=1)
        except redis.exceptions.ResponseError as e:
            if str(e).startswith("NOGROUP"):
                return None  # no worker ever read the stream: nothing of it is delivered
            raise
        for item in pending:
            return text(item["consumer"]), int(item["times_delivered"])
        return None

    def id_key_value(self, job_id: str, queue: str = "default") -> str | None:
        """The id key's value as text: for the forms that are text (an entry id, or `done
        <entry id>` as protocol 2.7 wrote it); `waiting` reads a job waiting in `later`."""
        held = self.r.get(self.id_key(job_id, queue))
        return None if held is None else text(held)

    def done_since(self, job_id: str, queue: str = "default") -> int | None:
        """The job's score in `done_ids` (the millisecond from which its completion is in
        `done`), None when the set does not have it."""
        score = self.r.zscore(self.done_ids(queue), job_id)
        return None if score is None else int(score)

    def remembered_done(self, job_id: str, queue: str = "default") -> tuple[str, dict[str, str]]:
        """The completion of a job that completed without a record, as protocol 2.8 leaves
        it: its id key gone, its id in `done_ids`, and its completion in `done` at or after
        the millisecond of its score. The test fails otherwise."""
        assert self.r.get(self.id_key(job_id, queue)) is None, f"the id key of {job_id} outlived its completion"
        since = self.done_since(job_id, queue)
        assert since is not None, f"{job_id} is not in done_ids"
        found = self.entries_for(self.done(queue), job_id, f"{since}-0")
        assert found, f"no completion of {job_id} in done from {since} on"
        assert int(found[0][0].partition("-")[0]) >= since
        return found[0]

    def waiting_raw(self, job_id: str, queue: str = "default") -> tuple[str, dict[str, bytes]] | None:
        """The state and entry fields a waiting job's id key holds, as bytes; None when the
        key is missing or holds another form."""
        held = self.r.get(self.id_key(job_id, queue))
        return None if held is None else unpack_waiting(held)

    def waiting(self, job_id: str, queue: str = "default") -> tuple[str, dict[str, str]] | None:
        """The same, with the fields as text."""
        found = self.waiting_raw(job_id, queue)
        return None if found is None else (found[0], decoded(found[1]))

    def status(self, job_id: str, queue: str = "default") -> JobStatus | None:
        """The job as the Python client's lookup finds it, wherever it is: record, stream
        entry, id key (with `later`) or `done`."""
        return self.client.status(job_id, queue)

    def find(self, job_id: str, queue: str = "default") -> Found | None:
        """The job as PROTOCOL.md says to look it up by id, read here with plain commands:
        its record first (it leads), else what its id key holds: the stream entry carrying
        it, whose place in the group's pending list says pending or running; or the entry it
        becomes while it waits in `later`. Without a key, its completion in `done`, at or
        after the millisecond its `done_ids` score names; a key protocol 2.7 wrote, `done
        <entry id>`, names the completion. None when neither is there, or the key names an
        entry the job has just left (a poll again sees where it went). An id key of any
        other form fails the test."""
        record = self.record(job_id, queue)
        if record:
            return Found("record", record.get("status", ""), record)
        held = self.r.get(self.id_key(job_id, queue))
        if held is None:
            return self._find_done_id(job_id, queue)
        waiting = unpack_waiting(held)
        if waiting is not None:
            return Found("later", waiting[0], decoded(waiting[1]))
        value = text(held)
        head, sep, done_id = value.partition(" ")
        if sep:
            assert head == "done" and ENTRY_ID.fullmatch(done_id), f"id key of {job_id} holds {value!r}"
            completions = self.r.xrange(self.done(queue), done_id, done_id)
            if not completions:
                return None
            fields = decoded(completions[0][1])
            assert fields.get("id") == job_id, f"id key of {job_id} names the completion of {fields.get('id')}"
            return Found("done", "completed", fields, done_id)
        assert ENTRY_ID.fullmatch(value), f"id key of {job_id} holds {value!r}"
        # The pending list first, then the entry: a job that completes between the two
        # reads is then missing from the stream, not reported pending after it completed.
        delivery = self.in_pending_list(value, queue)
        entries = self.r.xrange(self.stream(queue), value, value)
        if not entries:
            return None
        fields = decoded(entries[0][1])
        # A retry of a job without an id of its own names it in `retry_of`, not `id`.
        named = fields.get("id") or fields.get("retry_of")
        assert named == job_id, f"id key of {job_id} names the entry of {named}"
        return Found("entry", "running" if delivery else "pending", fields, value)

    def _find_done_id(self, job_id: str, queue: str) -> Found | None:
        """A job without an id key found through `done_ids`: its completion is the first
        entry of `done` naming it from the millisecond of its score on."""
        since = self.done_since(job_id, queue)
        if since is None:
            return None
        found = self.entries_for(self.done(queue), job_id, f"{since}-0")
        if not found:
            return None
        done_id, fields = found[0]
        return Found("done", "completed", fields, done_id)

    # Waiting.
    def eventually(self, what: str, probe: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
        """Polls `probe` until it returns something other than None."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(POLL_SECONDS)

    def wait_record(
        self, job_id: str, statuses: str | Iterable[str], queue: str = "default", timeout: float = WAIT_SECONDS
    ) -> dict[str, str]:
        """The job's record, once its status is one of `statuses`: for a job that has one (a
        unique job, a raw entry with a `run_at` ahead, or one that died, was handed back,
        reported progress or was cancelled). A job without one (one that just runs, waits
        in `later` or is retried) is waited for with `wait_status` or `wait_job`."""
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)
        last: dict[str, str] = {}

        def probe() -> dict[str, str] | None:
            nonlocal last
            last = self.record(job_id, queue)
            return last if last.get("status") in wanted else None

        try:
            return self.eventually(f"job {job_id} to be {sorted(wanted)}", probe, timeout)
        except AssertionError as e:
            # Where the job is instead, when it has no record: the lookup says.
            raise AssertionError(f"{e}; its record: {last}; the lookup finds: {self.status(job_id, queue)}") from None

    def wait_status(
        self, job_id: str, statuses: str | Iterable[str], queue: str = "default", timeout: float = WAIT_SECONDS
    ) -> JobStatus:
        """The job as the client's lookup finds it, once its status is one of `statuses`:
        any job, with a record or without (a fast-path job's completion is searched for in
        `done`)."""
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)
        last: JobStatus | None = None

        def probe() -> JobStatus | None:
            nonlocal last
            last = self.status(job_id, queue)
            return last if last is not None and last.status in wanted else None

        try:
            return self.eventually(f"job {job_id} to be {sorted(wanted)}", probe, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; last found: {last}") from None

    def wait_job(
        self, job_id: str, statuses: str | Iterable[str], queue: str = "default", timeout: float = WAIT_SECONDS
    ) -> Found:
        """The job once the client's lookup says it has one of `statuses`, as `find` then
        reads it from Redis, which must say the same: for a job with a record or an id key
        (an id of its own, or one retried without a record)."""
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)
        last: JobStatus | None = None
        raw: Found | None = None

        def probe() -> Found | None:
            nonlocal last, raw
            last = self.status(job_id, queue)
            if last is None or last.status not in wanted:
                return None
            # A job may move on between the two reads (pending to running, say): a poll
            # again reads both anew.
            raw = self.find(job_id, queue)
            return raw if raw is not None and raw.status == last.status else None

        try:
            return self.eventually(f"job {job_id} to be {sorted(wanted)}", probe, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; the lookup last found: {last}; read from Redis: {raw}") from None

    def wait_done(self, job_id: str, queue: str = "default", since: str = "-") -> tuple[str, dict[str, str]]:
        """The job's entry in `done`, waiting for it."""
        return self.eventually(
            f"job {job_id} in done",
            lambda: next(iter(self.entries_for(self.done(queue), job_id, since)), None),
        )

    def wait_dead(self, job_id: str, queue: str = "default", since: str = "-") -> dict[str, str]:
        """The job's entry in the dead-letter stream, waiting for it."""
        found = self.eventually(
            f"job {job_id} in the dead-letter stream",
            lambda: next(iter(self.entries_for(self.dead(queue), job_id, since)), None),
        )
        return found[1]

    def run_noop(self, queue: str = "default") -> str:
        """A fast-path job that must complete: proof the worker is still serving `queue`."""
        entry = self.xadd({"type": "noop"}, queue)
        self.wait_done(entry, queue, since=entry)
        return entry

    # The command line.
    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.flotilla_bin, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "FLOTILLA_REDIS_URL": self.redis_url, "RUST_LOG": "warn"},
        )
