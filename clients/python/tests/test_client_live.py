"""The client against a real fleet: what enqueue returns, and what status and wait report in each state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import msgpack
import pytest
import redis

from flotilla_client import AttemptError, Client, JobStatus, QueueFull, Unique, WaitTimeout


def eventually_status(
    client: Client, job_id: str, wanted: str, queue: str = "default", timeout: float = 5.0
) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        seen = client.status(job_id, queue)
        if seen is not None and seen.status == wanted:
            return seen
        assert time.monotonic() < deadline, f"job {job_id} never {wanted}; last seen {seen}"
        time.sleep(0.02)


def test_a_fast_path_job_is_found_completed_in_done(client: Client) -> None:
    job_id = client.enqueue("sleep", {"ms": 20})
    done = client.wait(job_id, timeout=5)
    assert done.id == job_id and done.queue == "default"
    assert (done.status, done.type, done.attempts) == ("completed", "sleep", 1)
    assert done.result == {"slept_ms": 20}
    assert done.worker and done.error is None and done.errors == []
    assert done.created_at is not None and done.finished_at is not None
    assert done.created_at <= done.finished_at
    assert done.payload is None, "a completion keeps no payload"


def test_a_waiting_fast_path_job_is_pending_with_its_entry(client: Client, idle_queue: str) -> None:
    job_id = client.enqueue("sleep", {"ms": 5}, queue=idle_queue, max_attempts=4)
    pending = client.status(job_id, idle_queue)
    assert pending is not None
    assert (pending.status, pending.type, pending.attempts, pending.max_attempts) == ("pending", "sleep", 0, 4)
    assert pending.payload == {"ms": 5}
    assert not pending.finished


def test_a_running_fast_path_job_names_its_worker(client: Client, connection: redis.Redis) -> None:
    job_id = client.enqueue("sleep", {"ms": 600})
    eventually_status(client, job_id, "running")
    running = client.status(job_id)
    assert running is not None and running.attempts == 1
    assert running.worker is not None
    assert connection.zscore("flotilla:{global}:workers", running.worker) is not None
    assert client.wait(job_id, timeout=5).status == "completed"


def test_a_job_with_an_id_is_read_from_its_record(client: Client, idle_queue: str) -> None:
    job_id = str(uuid.uuid4())
    assert client.enqueue("noop", {"n": 1}, queue=idle_queue, id=job_id) == job_id
    assert client.enqueue("noop", {"n": 2}, queue=idle_queue, id=job_id) == job_id, "the same id is the same job"
    pending = client.status(job_id, idle_queue)
    assert pending is not None
    assert (pending.status, pending.attempts, pending.max_attempts) == ("pending", 0, 3)
    assert pending.payload == {"n": 1}
    assert pending.created_at is not None and pending.finished_at is None


def test_a_retried_job_reports_its_attempts_error_then_completes(client: Client) -> None:
    job_id = client.enqueue("fail", {"times": 1}, id=str(uuid.uuid4()), backoff="fixed:1000")
    failed = eventually_status(client, job_id, "failed")
    assert (failed.attempts, failed.max_attempts) == (1, 3)
    (first,) = failed.errors
    assert isinstance(first, AttemptError)
    assert (first.attempt, first.error) == (1, "planned failure on attempt 1")
    assert failed.created_at is not None and first.at >= failed.created_at
    # `wait` goes on through the retry.
    done = client.wait(job_id, timeout=5)
    assert (done.status, done.attempts) == ("completed", 2)
    assert done.result == {"succeeded_on_attempt": 2}


@pytest.mark.parametrize("with_id", [False, True], ids=["fast-path", "own-id"])
def test_a_job_whose_retry_waits_is_failed_without_a_record(
    client: Client, connection: redis.Redis, with_id: bool
) -> None:
    job_id = client.enqueue(
        "fail", {"times": 1}, id=str(uuid.uuid4()) if with_id else None, backoff="fixed:60000"
    )
    later, id_key = client.keys.later("default"), client.keys.id_key("default", job_id)
    try:
        failed = eventually_status(client, job_id, "failed")
        assert (failed.id, failed.type, failed.attempts) == (job_id, "fail", 1)
        assert failed.error is not None and failed.error.startswith("planned failure on attempt 1")
        assert [(e.attempt, e.error) for e in failed.errors] == [(1, "planned failure on attempt 1")]
        assert failed.payload == {"times": 1} and failed.worker is None
        # Due a minute after the failure, as `later` has it.
        due = connection.zscore(later, job_id)
        assert due is not None and failed.next_run_at == int(due)
        assert failed.next_run_at == failed.errors[0].at + 60_000
        assert failed.created_at is not None and failed.created_at <= failed.errors[0].at
        assert not connection.exists(client.keys.job("default", job_id)), "no record while the retry waits"
        held = connection.get(id_key)
        assert held is not None and held.startswith(b"failed ")
        with pytest.raises(WaitTimeout) as waiting:
            client.wait(job_id, timeout=0.2)
        assert waiting.value.last_status is not None and waiting.value.last_status.status == "failed"
    finally:
        # The retry is not run a minute from now on a fleet the suite has left.
        connection.zrem(later, job_id)
        connection.delete(id_key)


def test_a_dead_job_reports_its_error(client: Client) -> None:
    job_id = client.enqueue("fail", {"times": -1}, max_attempts=2)
    dead = client.wait(job_id, timeout=5)
    assert (dead.status, dead.attempts, dead.max_attempts) == ("dead", 2, 2)
    assert dead.error is not None and dead.error.startswith("planned failure on attempt 2")
    assert [e.attempt for e in dead.errors] == [1, 2]
    assert dead.finished and dead.finished_at is not None


def test_a_completion_in_the_same_millisecond_with_a_lower_sequence_is_found(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    # Each stream numbers the entries of one millisecond on its own: a job added as the
    # sixth entry of a millisecond in its queue can be the first completion of that
    # millisecond in `done`.
    seconds, _ = connection.time()
    ms = seconds * 1000
    job_id = f"{ms}-5"
    connection.xadd(
        f"flotilla:{{{idle_queue}}}:done",
        {"id": job_id, "type": "noop", "attempts": 1, "worker": "w", "run_ms": 0, "result": ""},
        id=f"{ms}-0",
    )
    done = client.status(job_id, idle_queue)
    assert done is not None and done.status == "completed"
    assert done.finished_at == ms


def test_a_completed_job_with_an_id_is_found_through_done_ids(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    # As protocol 2.8 leaves a job with an id of its own that completed without a record:
    # no id key, its id in `done_ids` scored by the millisecond from which its completion
    # is in `done`, where another job's completion of that millisecond comes first.
    job_id = f"report-{uuid.uuid4()}"
    seconds, _ = connection.time()
    ms = seconds * 1000
    done = f"flotilla:{{{idle_queue}}}:done"
    other = {"id": "other", "type": "noop", "attempts": 1, "worker": "w", "run_ms": 1, "result": ""}
    connection.xadd(done, other, id=f"{ms}-0")
    connection.xadd(
        done,
        {"id": job_id, "type": "noop", "attempts": 1, "worker": "w", "run_ms": 1, "result": '{"ok":1}'},
        id=f"{ms}-1",
    )
    connection.zadd(client.keys.done_ids(idle_queue), {job_id: ms})
    assert not connection.exists(client.keys.id_key(idle_queue, job_id))
    found = client.status(job_id, idle_queue)
    assert found is not None
    assert (found.id, found.status, found.type, found.attempts) == (job_id, "completed", "noop", 1)
    assert (found.result, found.worker, found.finished_at) == ({"ok": 1}, "w", ms)
    assert found.created_at is None, "a completion does not say when a job with its own id was enqueued"
    assert client.wait(job_id, queue=idle_queue, timeout=1) == found
    # Gone from `done_ids` (its completion trimmed), it is found nowhere.
    connection.zrem(client.keys.done_ids(idle_queue), job_id)
    assert client.status(job_id, idle_queue) is None


def test_each_completion_of_a_done_entry_holding_a_batch_is_found(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    # From protocol 2.10 a `done` entry may hold several completions, each a run of fields
    # that begins with `id`; a job without an id of its own is found from its enqueue time.
    seconds, _ = connection.time()
    ms = seconds * 1000
    plain = f"{ms - 1000}-0"
    first, second = f"batch-{uuid.uuid4()}", f"batch-{uuid.uuid4()}"
    done = f"flotilla:{{{idle_queue}}}:done"
    flat: list[object] = []
    for n, job_id in enumerate([first, second, plain], start=1):
        flat += ["id", job_id, "type", "noop", "attempts", n, "worker", "w", "run_ms", 1, "result", f'{{"n":{n}}}']
    connection.execute_command("XADD", done, f"{ms}-0", *flat)
    connection.zadd(client.keys.done_ids(idle_queue), {first: ms, second: ms})
    for n, job_id in enumerate([first, second, plain], start=1):
        found = client.status(job_id, idle_queue)
        assert found is not None, job_id
        assert (found.id, found.status, found.attempts) == (job_id, "completed", n)
        assert (found.result, found.finished_at) == ({"n": n}, ms)


def test_a_protocol_2_7_id_key_naming_a_completion_is_still_read(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    # A worker of protocol 2.7 left the id key naming the completion, and no `done_ids`:
    # a rolling upgrade still reads it, until the key expires.
    job_id = f"report-{uuid.uuid4()}"
    seconds, _ = connection.time()
    done_id = f"{seconds * 1000}-0"
    connection.xadd(
        f"flotilla:{{{idle_queue}}}:done",
        {"id": job_id, "type": "noop", "attempts": 1, "worker": "w", "run_ms": 1, "result": '{"ok":1}'},
        id=done_id,
    )
    connection.set(client.keys.id_key(idle_queue, job_id), f"done {done_id}", px=60_000)
    found = client.status(job_id, idle_queue)
    assert found is not None
    assert (found.status, found.result, found.finished_at) == ("completed", {"ok": 1}, seconds * 1000)
    assert client.wait(job_id, queue=idle_queue, timeout=1) == found


def test_a_job_found_nowhere_is_none(client: Client) -> None:
    assert client.status(str(uuid.uuid4())) is None
    assert client.status("1-0", queue=f"client-nowhere-{uuid.uuid4().hex[:8]}") is None


def test_wait_gives_up_with_the_last_status(client: Client, idle_queue: str) -> None:
    job_id = client.enqueue("noop", queue=idle_queue)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as gave_up:
        client.wait(job_id, idle_queue, timeout=0.3, poll_interval=0.05)
    assert 0.3 <= time.monotonic() - started < 2
    assert isinstance(gave_up.value, WaitTimeout)
    assert gave_up.value.last_status is not None and gave_up.value.last_status.status == "pending"
    with pytest.raises(WaitTimeout) as unknown:
        client.wait(str(uuid.uuid4()), timeout=0.1)
    assert unknown.value.last_status is None


def test_a_delayed_job_is_scheduled_without_a_record(
    client: Client, connection: redis.Redis, decoding_connection: redis.Redis, idle_queue: str
) -> None:
    seconds, micros = connection.time()
    sent = seconds * 1000 + micros // 1000
    job_id = client.enqueue_in(60, "render", {"n": 1}, queue=idle_queue, max_attempts=2)
    scheduled = client.status(job_id, idle_queue)
    assert scheduled is not None
    assert (scheduled.id, scheduled.status, scheduled.type) == (job_id, "scheduled", "render")
    assert (scheduled.attempts, scheduled.max_attempts, scheduled.payload) == (0, 2, {"n": 1})
    assert scheduled.created_at is not None and scheduled.created_at >= sent
    assert scheduled.run_at == scheduled.created_at + 60_000
    assert scheduled.next_run_at is None and not scheduled.finished
    assert connection.zscore(client.keys.later(idle_queue), job_id) == scheduled.run_at
    assert not connection.exists(client.keys.job(idle_queue, job_id)), "no record while it waits"
    held = connection.get(client.keys.id_key(idle_queue, job_id))
    assert held is not None and held.startswith(b"scheduled ")
    # The id key is binary: a connection that decodes replies reads it all the same.
    assert Client(decoding_connection).status(job_id, idle_queue) == scheduled
    # Enqueued again with its id, it is the same job, still waiting.
    assert client.enqueue_in(1, "render", queue=idle_queue, id=job_id) == job_id
    assert client.status(job_id, idle_queue) == scheduled


def test_enqueue_in_runs_after_the_delay(client: Client) -> None:
    job_id = client.enqueue_in(0.3, "noop")
    scheduled = client.status(job_id)
    assert scheduled is not None and scheduled.status == "scheduled"
    assert client.wait(job_id, timeout=5).status == "completed"


def test_enqueue_at_in_ms_runs_at_its_time(client: Client, connection: redis.Redis) -> None:
    seconds, micros = connection.time()
    due = seconds * 1000 + micros // 1000 + 300
    job_id = client.enqueue_at(due, "noop", id=f"at-{uuid.uuid4()}")
    assert job_id.startswith("at-")
    assert client.wait(job_id, timeout=5).status == "completed"


def test_enqueue_unique_reports_the_holder(client: Client, idle_queue: str) -> None:
    key = f"k-{uuid.uuid4()}"
    first = client.enqueue_unique(key, "noop", queue=idle_queue, delay=timedelta(seconds=30))
    assert first.created
    second = client.enqueue_unique(key, "noop", queue=idle_queue, id=str(uuid.uuid4()))
    assert (second.id, second.created) == (first.id, False)
    held = client.status(first.id, idle_queue)
    assert held is not None and held.status == "scheduled"


def test_a_debounce_key_folds_a_burst_into_one_job_with_the_last_payload(client: Client) -> None:
    key = f"d-{uuid.uuid4()}"
    first = client.enqueue_debounced(key, "noop", {"n": 1}, delay=0.4, max_delay=5)
    second = client.enqueue_debounced(key, "noop", {"n": 2}, delay=0.4)
    assert not first.folded
    assert (second.id, second.folded) == (first.id, True)
    waiting = client.status(first.id)
    assert waiting is not None and waiting.status == "scheduled"
    assert waiting.payload == {"n": 2}
    assert client.wait(first.id, timeout=5).status == "completed"
    # Once it ran, the key makes a new job.
    third = client.enqueue_debounced(key, "noop", {"n": 3}, delay=0.1)
    assert not third.folded and third.id != first.id


def test_an_expiry_is_written_with_the_job_whichever_way_it_is_enqueued(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    at = 1_900_000_000_000
    fast = client.enqueue("noop", queue=idle_queue, expires_at_ms=at)
    ((_, fields),) = connection.xrange(client.keys.stream(idle_queue), fast, fast)
    assert fields[b"expires_at"] == str(at).encode(), "the fast path's entry carries it"
    own = client.enqueue("noop", queue=idle_queue, id=f"own-{uuid.uuid4()}", expires_at_ms=at)
    later = client.enqueue_in(60, "noop", queue=idle_queue, expires_at_ms=at)
    held = client.enqueue_unique(f"k-{uuid.uuid4()}", "noop", queue=idle_queue, expires_at_ms=at).id
    assert connection.hget(client.keys.job(idle_queue, held), "expires_at") == str(at).encode(), "its record"
    waiting = connection.get(client.keys.id_key(idle_queue, later))
    assert waiting is not None and waiting.startswith(b"scheduled ")
    for job_id, status in [(fast, "pending"), (own, "pending"), (later, "scheduled"), (held, "pending")]:
        found = client.status(job_id, idle_queue)
        assert found is not None and (found.status, found.expires_at) == (status, at), job_id
    # From now, by the client's clock.
    before = time.time_ns() // 1_000_000
    soon = client.enqueue("noop", queue=idle_queue, expires_in_ms=60_000)
    after = time.time_ns() // 1_000_000
    found = client.status(soon, idle_queue)
    assert found is not None and found.expires_at is not None
    assert before + 60_000 <= found.expires_at <= after + 60_000


@pytest.fixture
def one_at_a_time_per_group(connection: redis.Redis) -> Iterator[None]:
    """`default` lets one job of each group through at a time for the test: only jobs of a
    group heed it, so the other tests' jobs run as before (the tests run one after another)."""
    limit = "flotilla:{default}:group_limit"
    connection.hset(limit, "concurrency", 1)
    yield
    connection.hdel(limit, "concurrency")


@pytest.mark.usefixtures("one_at_a_time_per_group")
def test_jobs_of_a_group_wait_their_turn_and_all_complete(client: Client, connection: redis.Redis) -> None:
    group = f"g-{uuid.uuid4().hex[:12]}"
    first = client.enqueue("sleep", {"ms": 500}, group=group)
    second = client.enqueue("sleep", {"ms": 10}, group=group)
    third = client.enqueue("sleep", {"ms": 10}, group=group, id=f"own-{uuid.uuid4()}")
    held = connection.get(client.keys.id_key("default", second))
    assert held is not None and held.startswith(b"grouped "), held
    waiting = client.status(second)
    assert waiting is not None and (waiting.status, waiting.group) == ("pending", group)
    for job_id in [first, second, third]:
        assert client.wait(job_id, timeout=10).status == "completed", job_id


@pytest.mark.usefixtures("one_at_a_time_per_group")
def test_a_job_of_a_group_with_a_time_or_a_debounce_waits_its_groups_turn_once_due(
    client: Client, connection: redis.Redis
) -> None:
    group = f"g-{uuid.uuid4().hex[:12]}"
    first = client.enqueue("sleep", {"ms": 1500}, group=group)
    eventually_status(client, first, "running")
    seconds, micros = connection.time()
    due = seconds * 1000 + micros // 1000 + 200
    delayed = client.enqueue_in(0.2, "sleep", {"ms": 10}, group=group)
    timed = client.enqueue_at(due, "sleep", {"ms": 10}, group=group, id=f"at-{uuid.uuid4()}")
    debounced = client.enqueue_debounced(f"d-{uuid.uuid4()}", "sleep", {"ms": 10}, delay=0.2, group=group)
    for job_id in [delayed, timed, debounced.id]:
        scheduled = client.status(job_id)
        assert scheduled is not None and (scheduled.status, scheduled.group) == ("scheduled", group), job_id
    time.sleep(0.6)
    # Due while the first still runs, each waits its group's turn, as a new job does.
    for job_id in [delayed, timed, debounced.id]:
        held = connection.get(client.keys.id_key("default", job_id))
        assert isinstance(held, bytes) and held.startswith(b"grouped "), (job_id, held)
        waiting = client.status(job_id)
        assert waiting is not None and (waiting.status, waiting.group) == ("pending", group), job_id
    running = client.status(first)
    assert running is not None and running.status == "running", "the group's turn is still taken"
    for job_id in [first, delayed, timed, debounced.id]:
        assert client.wait(job_id, timeout=10).status == "completed", job_id


@pytest.mark.usefixtures("one_at_a_time_per_group")
def test_a_unique_job_of_a_group_waits_its_turn_holding_its_key(client: Client, connection: redis.Redis) -> None:
    group = f"g-{uuid.uuid4().hex[:12]}"
    key = f"k-{uuid.uuid4()}"
    first = client.enqueue("sleep", {"ms": 1500}, group=group)
    unique = client.enqueue_unique(key, "sleep", {"ms": 10}, group=group)
    assert unique.created
    # Its record waits `pending` with no entry, and its id key holds its place in line.
    waiting = client.status(unique.id)
    assert waiting is not None and (waiting.status, waiting.group) == ("pending", group)
    record = client.keys.job("default", unique.id)
    assert connection.hget(record, "entry") is None
    held = connection.get(client.keys.id_key("default", unique.id))
    assert isinstance(held, bytes) and held.startswith(b"grouped "), held
    fields = msgpack.unpackb(held[len(b"grouped ") :], raw=False)
    assert fields[:4] == ["id", unique.id, "group", group], fields
    assert fields[4] == "created_at" and fields[5].isdigit() and len(fields) == 6, fields
    # It holds its key while it waits: the same key answers its id.
    again = client.enqueue_unique(key, "sleep", {"ms": 10}, group=group)
    assert again == Unique(id=unique.id, created=False)
    assert client.wait(first, timeout=10).status == "completed"
    assert client.wait(unique.id, timeout=10).status == "completed"


@pytest.mark.usefixtures("one_at_a_time_per_group")
def test_a_unique_job_of_a_group_with_a_delay_waits_its_time_then_its_turn_holding_its_key(
    client: Client, connection: redis.Redis
) -> None:
    group = f"g-{uuid.uuid4().hex[:12]}"
    key = f"k-{uuid.uuid4()}"
    first = client.enqueue("sleep", {"ms": 1500}, group=group)
    eventually_status(client, first, "running")
    unique = client.enqueue_unique(key, "sleep", {"ms": 10}, delay=0.2, group=group)
    assert unique.created
    scheduled = client.status(unique.id)
    assert scheduled is not None and (scheduled.status, scheduled.group) == ("scheduled", group)
    assert connection.zscore(client.keys.delayed("default"), unique.id) is not None
    # It holds its key while it waits for its time.
    again = client.enqueue_unique(key, "sleep", {"ms": 10}, delay=0.2, group=group)
    assert again == Unique(id=unique.id, created=False)
    time.sleep(0.6)
    # Due while the first still runs, it waits its group's turn as a new one does,
    # still holding its key.
    waiting = client.status(unique.id)
    assert waiting is not None and (waiting.status, waiting.group) == ("pending", group)
    held = connection.get(client.keys.id_key("default", unique.id))
    assert isinstance(held, bytes) and held.startswith(b"grouped "), held
    again = client.enqueue_unique(key, "sleep", {"ms": 10}, group=group)
    assert again == Unique(id=unique.id, created=False)
    running = client.status(first)
    assert running is not None and running.status == "running", "the group's turn is still taken"
    assert client.wait(first, timeout=10).status == "completed"
    assert client.wait(unique.id, timeout=10).status == "completed"


def test_jobs_not_started_by_their_expiry_end_expired_without_running(
    client: Client, connection: redis.Redis, paused_low: str
) -> None:
    queue = paused_low
    key = f"k-{uuid.uuid4()}"
    expiring = [
        client.enqueue("noop", queue=queue, expires_in_ms=300),
        client.enqueue("noop", queue=queue, id=f"own-{uuid.uuid4()}", expires_in_ms=300),
        client.enqueue_in(0.1, "noop", queue=queue, expires_in_ms=300),
        client.enqueue_unique(key, "noop", queue=queue, expires_in_ms=300).id,
    ]
    # The same with an expiry far ahead runs as usual.
    lasting = client.enqueue("noop", queue=queue, id=f"own-{uuid.uuid4()}", expires_in_ms=60_000)
    time.sleep(0.6)
    connection.srem("flotilla:{global}:paused", queue)
    assert client.wait(lasting, queue, timeout=5).status == "completed"
    for job_id in expiring:
        ended = client.wait(job_id, queue, timeout=5)
        assert (ended.status, ended.attempts) == ("expired", 0), ended
        assert ended.finished and ended.expires_at is not None and ended.finished_at is not None
        assert ended.finished_at >= ended.expires_at, "not before its time"
        assert connection.zscore(f"flotilla:{{{queue}}}:idx:expired", job_id) is not None
        assert not connection.hexists(client.keys.job(queue, job_id), "started_at"), "it never ran"
    assert not connection.exists(client.keys.unique(queue, key)), "an expired job lets go of its unique key"


def test_a_retry_due_after_the_expiry_expires_instead_of_running(client: Client) -> None:
    # The first attempt fails; its retry would be due after the expiry.
    job_id = client.enqueue("fail", {"times": 1}, id=f"late-{uuid.uuid4()}", backoff="fixed:1500", expires_in_ms=1000)
    ended = client.wait(job_id, timeout=5)
    assert (ended.status, ended.attempts) == ("expired", 1), ended
    assert ended.error is not None and ended.error.startswith("planned failure on attempt 1")
    assert ended.result is None


def test_a_unique_key_is_free_again_once_its_job_completes(client: Client) -> None:
    key = f"k-{uuid.uuid4()}"
    first = client.enqueue_unique(key, "noop", ttl=30)
    client.wait(first.id, timeout=5)
    assert client.enqueue_unique(key, "noop", ttl=30).created


def test_a_unique_key_held_for_its_ttl_outlives_its_job(client: Client, connection: redis.Redis) -> None:
    key = f"k-{uuid.uuid4()}"
    first = client.enqueue_unique(key, "noop", ttl=30, hold_for_ttl=True)
    try:
        client.wait(first.id, timeout=5)
        assert client.enqueue_unique(key, "noop", ttl=30) == Unique(id=first.id, created=False)
    finally:
        connection.delete(client.keys.unique("default", key))


@pytest.mark.parametrize("with_id", [False, True], ids=["fast-path", "script"])
def test_a_queue_at_its_cap_raises_queue_full(connection: redis.Redis, idle_queue: str, with_id: bool) -> None:
    capped = Client(connection, max_queue_len=2)
    capped.enqueue("noop", queue=idle_queue)
    capped.enqueue_in(60, "noop", queue=idle_queue)  # a scheduled job counts too
    with pytest.raises(QueueFull) as full:
        capped.enqueue("noop", queue=idle_queue, id=str(uuid.uuid4()) if with_id else None)
    assert full.value.queue == idle_queue
    assert str(full.value) == f"QUEUE_FULL queue {idle_queue} holds 2 jobs, its limit is 2"


def test_every_enqueue_names_its_queue(client: Client, connection: redis.Redis, idle_queue: str) -> None:
    client.enqueue_unique(f"k-{uuid.uuid4()}", "noop", queue=idle_queue)
    assert connection.sismember("flotilla:{global}:queues", idle_queue)


def test_a_decoding_connection_reads_binary_payloads_too(
    decoding_connection: redis.Redis, connection: redis.Redis, idle_queue: str
) -> None:
    client = Client(decoding_connection)
    packed = msgpack.packb({"ms": 1})
    entry = connection.xadd(f"flotilla:{{{idle_queue}}}:q", {"type": "sleep", "content_type": "msgpack", "payload": packed})
    pending = client.status(entry.decode(), idle_queue)
    assert pending is not None and pending.payload == packed
    job_id = client.enqueue("noop", queue=idle_queue, id=str(uuid.uuid4()))
    assert isinstance(job_id, str)
    assert client.enqueue_unique("k", "noop", queue=idle_queue).id == client.enqueue_unique("k", "noop", queue=idle_queue).id


def test_from_url_and_a_namespace_of_its_own(redis_url: str, connection: redis.Redis) -> None:
    queue = f"client-ns-{uuid.uuid4().hex[:8]}"
    client = Client.from_url(redis_url, namespace="client-test-ns")
    try:
        job_id = client.enqueue("noop", queue=queue)
        assert connection.xrange(f"client-test-ns:{{{queue}}}:q", job_id, job_id)
        assert connection.sismember("client-test-ns:{global}:queues", queue)
        assert client.keys.stream(queue) == f"client-test-ns:{{{queue}}}:q"
    finally:
        connection.delete(f"client-test-ns:{{{queue}}}:q", "client-test-ns:{global}:queues")
