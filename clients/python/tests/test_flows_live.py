"""Jobs that wait for other jobs (protocol 2.19) on a real fleet: flows, `after`, what a refusal leaves, and how a waiting job reads."""

from __future__ import annotations

import uuid

import pytest
import redis

from flotilla_client import Client, FlowJob, InvalidJob, JobStatus, Parent, WaitTimeout, full_id


def named(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def finished(client: Client, job_id: str, queue: str = "default") -> JobStatus:
    done = client.wait(job_id, queue, timeout=10)
    assert done.status == "completed", done
    assert done.finished_at is not None
    return done


def queue_keys(connection: redis.Redis, queue: str) -> list[bytes]:
    return sorted(connection.scan_iter(match=f"flotilla:{{{queue}}}:*"))


def test_a_diamonds_last_job_runs_only_after_both_its_parents_completed(client: Client) -> None:
    a, b, c, d = (named(step) for step in "abcd")
    flow = named("diamond")
    created = client.enqueue_flow(
        [
            FlowJob("sleep", {"ms": 50}, id=a),
            FlowJob("sleep", {"ms": 800}, id=b, after=[a]),
            FlowJob("sleep", {"ms": 20}, id=c, after=[a]),
            FlowJob("noop", id=d, after=[b, c]),
        ],
        flow_id=flow,
    )
    assert [(job.id, job.queue, job.outcome) for job in created] == [
        (a, "default", "created"),
        (b, "default", "waiting"),
        (c, "default", "waiting"),
        (d, "default", "waiting"),
    ]
    # While `b` runs, `c` has completed and `d` still waits, for `b` alone.
    done_c = finished(client, c)
    running_b = client.status(b)
    assert running_b is not None and running_b.status in ("pending", "running"), running_b
    waiting_d = client.status(d)
    assert waiting_d is not None and waiting_d.status == "waiting", waiting_d
    deps = client.dependencies(d)
    assert deps is not None and deps.waiting
    assert (deps.edges, deps.left, deps.flow_id, deps.flow_queue) == (2, 1, flow, "default")
    assert [(p.id, p.policy, p.outcome, p.result) for p in deps.parents] == [
        (b, "cancel", None, None),
        (c, "cancel", "completed", {"slept_ms": 20}),
    ]

    done_d = finished(client, d)
    done_a, done_b = finished(client, a), finished(client, b)
    assert done_b.finished_at is not None and done_c.finished_at is not None and done_a.finished_at is not None
    # Completions are entries of the queue's `done` stream, in the order they were written.
    assert done_a.finished_at <= done_c.finished_at <= done_b.finished_at <= (done_d.finished_at or 0)
    # Each child was let go by its last parent's completion, in the script that wrote it,
    # and holds what its parents ended with.
    for child in (b, c):
        released = client.dependencies(child)
        assert released is not None and released.released_at is not None and not released.waiting
        assert [(p.id, p.outcome, p.result) for p in released.parents] == [(a, "completed", {"slept_ms": 50})]
    after = client.dependencies(d)
    assert after is not None and not after.waiting
    assert after.released_at is not None and after.released_at <= (done_d.finished_at or 0)
    assert {p.id: (p.outcome, p.result) for p in after.parents} == {
        b: ("completed", {"slept_ms": 800}),
        c: ("completed", {"slept_ms": 20}),
    }
    assert after.result_of(b) == {"slept_ms": 800}


def test_a_job_after_existing_jobs_waits_for_them(client: Client, connection: redis.Redis) -> None:
    own = client.enqueue("sleep", {"ms": 300}, id=named("parent"))
    fast = client.enqueue("sleep", {"ms": 200})
    child = client.enqueue("noop", {"n": 1}, after=[("default", own), full_id("default", fast)])
    waiting = client.status(child)
    assert waiting is not None
    assert (waiting.status, waiting.type, waiting.payload, waiting.attempts) == ("waiting", "noop", {"n": 1}, 0)
    assert connection.get(client.keys.id_key("default", child)) == b"waiting"
    assert connection.zscore(client.keys.waiting("default"), child) is not None
    done = finished(client, child)
    parents = [finished(client, own), finished(client, fast)]
    assert all(done.finished_at >= (p.finished_at or 0) for p in parents if done.finished_at is not None)
    deps = client.dependencies(child)
    assert deps is not None and deps.flow_id is None, "a job enqueued after others is in no named flow"
    assert [(p.queue, p.id, p.result) for p in deps.parents] == [
        ("default", own, {"slept_ms": 300}),
        ("default", fast, {"slept_ms": 200}),
    ]
    assert connection.zscore(client.keys.waiting("default"), child) is None

    # A delay counts from when the last parent is done, and a parent that completed
    # before counts as done: its child is enqueued at once.
    later = client.enqueue_in(0.2, "noop", after=[Parent("default", own)])
    assert client.wait(later, timeout=5).status == "completed"


def test_a_flow_may_name_jobs_enqueued_by_an_earlier_flow(client: Client) -> None:
    (first,) = client.enqueue_flow([FlowJob("sleep", {"ms": 100})])
    (second,) = client.enqueue_flow([FlowJob("noop", after=[first])])
    assert (first.outcome, second.outcome) == ("created", "waiting")
    first_done, second_done = finished(client, first.id), finished(client, second.id)
    assert (first_done.finished_at or 0) <= (second_done.finished_at or 0)


def test_a_waiting_job_reads_as_waiting_until_its_parent_ends(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    # No worker serves the idle queue: its parent never runs, so it waits.
    parent = client.enqueue("noop", queue=idle_queue, id=named("parent"))
    child = client.enqueue(
        "render", {"page": 3}, queue=idle_queue, max_attempts=7, expires_in_ms=600_000, group="account-42",
        after=[(idle_queue, parent, "run")],
    )
    seconds, _ = connection.time()
    waiting = client.status(child, idle_queue)
    assert waiting is not None
    assert (waiting.id, waiting.queue, waiting.status, waiting.type) == (child, idle_queue, "waiting", "render")
    assert (waiting.payload, waiting.attempts, waiting.max_attempts, waiting.group) == ({"page": 3}, 0, 7, "account-42")
    assert waiting.created_at is not None and abs(waiting.created_at - seconds * 1000) < 5_000
    assert waiting.expires_at is not None and waiting.run_at is None and not waiting.finished
    with pytest.raises(WaitTimeout) as still:
        client.wait(child, idle_queue, timeout=0.2)
    assert still.value.last_status is not None and still.value.last_status.status == "waiting"
    deps = client.dependencies(child, idle_queue)
    assert deps is not None and deps.waiting
    assert (deps.edges, deps.left, deps.blocked) == (1, 1, 0)
    assert [(p.queue, p.id, p.policy, p.outcome) for p in deps.parents] == [(idle_queue, parent, "run", None)]
    assert connection.lrange(f"flotilla:{{{idle_queue}}}:hook:{parent}", 0, -1) == [
        f"run {idle_queue} {child}".encode()
    ]
    # A job with no parents has no dependencies.
    assert client.dependencies(parent, idle_queue) is None


def test_a_dead_parent_cancels_its_child_by_default_and_runs_it_under_run(client: Client) -> None:
    parent, cancelled, anyway = named("doomed"), named("cancelled"), named("anyway")
    client.enqueue_flow(
        [
            FlowJob("fail", {"times": -1}, id=parent, max_attempts=1),
            FlowJob("noop", id=cancelled, after=[parent]),
            FlowJob("noop", id=anyway, after=[("default", parent, "run")]),
        ]
    )
    assert client.wait(parent, timeout=10).status == "dead"
    gone = client.wait(cancelled, timeout=10)
    assert (gone.status, gone.attempts, gone.error) == ("cancelled", 0, f"parent default {parent} dead")
    assert client.wait(anyway, timeout=10).status == "completed"
    deps = client.dependencies(anyway)
    assert deps is not None and [(p.id, p.policy, p.outcome) for p in deps.parents] == [(parent, "run", "dead")]


def test_a_cycle_is_refused_and_nothing_is_written(client: Client, connection: redis.Redis, idle_queue: str) -> None:
    running = client.enqueue("sleep", {"ms": 500}, id=named("running"))
    x, y, z = (named(step) for step in "xyz")
    with pytest.raises(InvalidJob) as refused:
        client.enqueue_flow(
            [
                FlowJob("noop", id=x, queue=idle_queue, after=[z, ("default", running)]),
                FlowJob("noop", id=y, queue=idle_queue, after=[x]),
                FlowJob("noop", id=z, queue=idle_queue, after=[y]),
            ]
        )
    assert refused.value.field == "flow"
    assert str(refused.value).startswith("invalid flow: BAD_FLOW the flow has a cycle through job ")
    assert queue_keys(connection, idle_queue) == []
    assert not connection.exists(f"flotilla:{{default}}:hook:{running}")
    assert not connection.sismember("flotilla:{default}:hooked", running)
    for job_id in (x, y, z):
        assert client.status(job_id, idle_queue) is None
    # The same flow without the edge that closes the cycle is created.
    created = client.enqueue_flow(
        [
            FlowJob("noop", id=x, queue=idle_queue, after=[("default", running)]),
            FlowJob("noop", id=y, queue=idle_queue, after=[x]),
        ]
    )
    assert [job.outcome for job in created] == ["waiting", "waiting"]


def test_an_unknown_parent_is_refused_and_nothing_is_written(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    nobody = named("nobody")
    child = named("child")
    with pytest.raises(InvalidJob) as refused:
        client.enqueue("noop", queue=idle_queue, id=child, after=[("default", nobody)])
    assert refused.value.field == "after"
    assert str(refused.value) == f"invalid after: BAD_FLOW job {child}: parent {nobody} is not known in queue default"
    with pytest.raises(InvalidJob, match=f"parent {nobody} is not known in queue default"):
        client.enqueue_flow([FlowJob("noop", queue=idle_queue, id=child), FlowJob("noop", after=[("default", nobody)])])
    assert queue_keys(connection, idle_queue) == []
    assert client.status(child, idle_queue) is None


def test_an_id_taken_or_twice_in_a_flow_is_refused(client: Client, idle_queue: str, connection: redis.Redis) -> None:
    taken = client.enqueue("noop", queue=idle_queue, id=named("taken"))
    before = queue_keys(connection, idle_queue)
    with pytest.raises(InvalidJob, match=f"job id {taken} is taken in queue {idle_queue}"):
        client.enqueue_flow([FlowJob("noop", queue=idle_queue, id=taken)])
    twice = named("twice")
    with pytest.raises(InvalidJob, match=f"job id {twice} is in the flow twice"):
        client.enqueue_flow([FlowJob("noop", queue=idle_queue, id=twice), FlowJob("noop", queue=idle_queue, id=twice)])
    assert queue_keys(connection, idle_queue) == before


def test_a_flow_on_a_partitioned_queue_names_each_parent_in_its_partition(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    connection.hset(client.keys.partitions(), idle_queue, 4)
    partitions = [idle_queue, *(f"{idle_queue}#{k}" for k in range(1, 4))]
    try:
        # The parent is found in the partition that knows its id; `c` names `a` in the
        # partition `a` goes to.
        parent = client.enqueue("noop", queue=idle_queue, id=named("parent"))
        a_id = named("a")
        a, b, c = client.enqueue_flow(
            [
                FlowJob("noop", queue=idle_queue, id=a_id, after=[(idle_queue, parent)]),
                FlowJob("noop", queue=idle_queue, id=named("b")),
                FlowJob("noop", queue=idle_queue, id=named("c"), after=[a_id]),
            ]
        )
        assert {a.queue, b.queue, c.queue} <= set(partitions)
        assert (a.outcome, b.outcome, c.outcome) == ("waiting", "created", "waiting")
        child = client.enqueue("noop", queue=idle_queue, after=[a, (idle_queue, b.id)])
        found = client.status(child, idle_queue)
        assert found is not None and found.status == "waiting"
        deps = client.dependencies(child, idle_queue)
        assert deps is not None and (deps.edges, deps.left) == (2, 2)
        hooks = [
            partition for partition in partitions if connection.exists(f"flotilla:{{{partition}}}:hook:{a.id}")
        ]
        assert hooks == [a.queue], "the edge is kept where its parent is"
    finally:
        connection.hdel(client.keys.partitions(), idle_queue)
        for partition in partitions[1:]:
            connection.srem(client.keys.queues(), partition)
            for key in connection.scan_iter(match=f"flotilla:{{{partition}}}:*"):
                connection.delete(key)


def test_a_deps_hash_read_through_a_decoding_connection_reads_the_same(
    client: Client, decoding_connection: redis.Redis, idle_queue: str
) -> None:
    parent = client.enqueue("noop", queue=idle_queue, id=named("parent"))
    child = client.enqueue("noop", {"é": "ü"}, queue=idle_queue, after=[(idle_queue, parent)])
    decoding = Client(decoding_connection)
    assert decoding.status(child, idle_queue) == client.status(child, idle_queue)
    assert decoding.dependencies(child, idle_queue) == client.dependencies(child, idle_queue)
