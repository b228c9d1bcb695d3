"""Batches (protocol 2.19) on a real fleet: callbacks fire once the batch's jobs ended, an open batch holds them back until sealed, and what a refusal leaves."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from flotilla_client import Batch, BatchJob, Client, InvalidJob


def named(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def queue_keys(connection: redis.Redis, queue: str) -> list[bytes]:
    return sorted(connection.scan_iter(match=f"flotilla:{{{queue}}}:*"))


def settled(client: Client, batch_id: str, queue: str = "default", timeout: float = 10.0) -> Batch:
    """The batch once every callback of it is decided."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batch(batch_id, queue)
        assert batch is not None
        if all(cb.decided is not None for cb in batch.callbacks) or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def test_a_batchs_callbacks_run_once_every_job_completed(client: Client) -> None:
    batch_id = named("py-batch")
    jobs = [BatchJob("noop", {"n": n}) for n in range(20)]
    counts = client.enqueue_batch(
        batch_id, jobs, on_success=BatchJob("noop", {"on": "success"}), on_complete=BatchJob("noop", {"on": "complete"})
    )
    assert (counts.total, counts.sealed, counts.dead, counts.ended) == (20, True, 0, 0)
    for kind in ("success", "complete"):
        done = client.wait(f"{batch_id}.on_{kind}", timeout=10)
        assert done.status == "completed", done
    batch = settled(client, batch_id)
    assert batch.completed == batch.total == 20
    assert (batch.pending, batch.dead, batch.ended, batch.sealed) == (0, 0, 0, True)
    assert batch.created_at is not None and batch.finished_at is not None
    assert batch.created_at <= batch.finished_at
    assert [(cb.kind, cb.queue, cb.id, cb.decided) for cb in batch.callbacks] == [
        ("success", "default", f"{batch_id}.on_success", "fired"),
        ("complete", "default", f"{batch_id}.on_complete", "fired"),
    ]
    assert batch.dead_jobs == ()


def test_an_open_batchs_complete_callback_waits_for_the_seal(client: Client) -> None:
    batch_id = named("py-open")
    callback = f"{batch_id}.on_complete"
    counts = client.enqueue_batch(batch_id, [BatchJob("noop") for _ in range(3)], on_complete=BatchJob("noop"), keep_open=True)
    assert (counts.total, counts.sealed) == (3, False)
    counts = client.add_to_batch(batch_id, [BatchJob("noop") for _ in range(2)])
    assert (counts.total, counts.sealed) == (5, False)
    # Every job completes, and the callback still waits: more jobs may come.
    deadline = time.monotonic() + 10
    while (batch := client.batch(batch_id)) is not None and batch.completed < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batch is not None and (batch.completed, batch.pending, batch.finished_at) == (5, 0, None)
    waiting = client.status(callback)
    assert waiting is not None and waiting.status == "waiting", waiting
    callback_view = batch.callback("complete")
    assert callback_view is not None and callback_view.decided is None

    sealed = client.seal_batch(batch_id)
    assert (sealed.total, sealed.completed, sealed.sealed) == (5, 5, True)
    done = client.wait(callback, timeout=10)
    assert done.status == "completed", done
    assert client.seal_batch(batch_id) == sealed, "sealing a sealed batch changes nothing"


def test_adding_to_a_sealed_batch_is_refused(client: Client, idle_queue: str, connection: redis.Redis) -> None:
    batch_id = named("py-sealed")
    client.enqueue_batch(batch_id, [BatchJob("noop")], queue=idle_queue)
    before = queue_keys(connection, idle_queue)
    with pytest.raises(InvalidJob, match=f"BAD_BATCH batch {batch_id} is sealed: no job may be added"):
        client.add_to_batch(batch_id, [BatchJob("noop", id=named("late"))], queue=idle_queue)
    assert queue_keys(connection, idle_queue) == before
    nobody = named("py-none")
    with pytest.raises(InvalidJob, match=f"BAD_BATCH no batch {nobody} in queue {idle_queue}"):
        client.seal_batch(nobody, queue=idle_queue)


def test_an_id_twice_is_refused_and_nothing_is_written(client: Client, idle_queue: str, connection: redis.Redis) -> None:
    batch_id, twice = named("py-twice"), named("job")
    with pytest.raises(InvalidJob, match=f"BAD_BATCH job id {twice} is in the call twice"):
        client.enqueue_batch(
            batch_id,
            [BatchJob("noop", id=twice), BatchJob("noop"), BatchJob("noop", id=twice)],
            queue=idle_queue,
            on_complete=BatchJob("noop"),
        )
    assert queue_keys(connection, idle_queue) == []
    assert client.batch(batch_id, idle_queue) is None
    # A callback's id is one of the call's too.
    with pytest.raises(InvalidJob, match=f"job id {batch_id}.on_death is in the call twice"):
        client.enqueue_batch(batch_id, [BatchJob("noop", id=f"{batch_id}.on_death")], queue=idle_queue, on_death=BatchJob("noop"))
    assert queue_keys(connection, idle_queue) == []
    # A batch id in use is refused too, and leaves the batch as it was.
    client.enqueue_batch(batch_id, [BatchJob("noop")], queue=idle_queue, keep_open=True)
    before = queue_keys(connection, idle_queue)
    with pytest.raises(InvalidJob, match=f"BAD_BATCH batch {batch_id} exists already in queue {idle_queue}"):
        client.enqueue_batch(batch_id, [BatchJob("noop")], queue=idle_queue)
    assert queue_keys(connection, idle_queue) == before
