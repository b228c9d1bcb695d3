"""Jobs enqueued through the published script, protocol/v2/enqueue.lua, called by hand: its replies, entries, id keys, records and times."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from fleet import ENQUEUE_LUA, ENTRY_ID, Fleet, decoded

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def idle_queue(fleet: Fleet) -> Iterator[str]:
    """A queue no worker serves, so what the script writes stays as written."""
    queue = f"conformance-idle-{uuid.uuid4().hex[:12]}"
    yield queue
    fleet.r.delete(fleet.stream(queue), fleet.delayed(queue))
    for key in fleet.r.scan_iter(match=f"flotilla:{{{queue}}}:*"):
        fleet.r.delete(key)


def test_the_published_script_is_what_evalsha_names(fleet: Fleet) -> None:
    assert fleet.script_sha == hashlib.sha1(ENQUEUE_LUA.read_bytes()).hexdigest()


def test_a_created_job_is_one_entry_carrying_it_named_by_its_id_key(
    fleet: Fleet, job_id: str, idle_queue: str
) -> None:
    payload = json.dumps({"ms": 10})
    reply = fleet.script(
        job_id, "sleep", payload, queue=idle_queue, max_attempts=4, timeout_ms=60_000, backoff="fixed:100",
        trace=TRACEPARENT,
    )
    assert reply == (job_id, "created")
    # A job with an id of its own that runs now and holds no unique key has no record:
    # its entry carries the whole job, and its id key names the entry, from the start: the
    # entry says so with `held` (protocol 2.8), so a worker runs it without a claim.
    assert not fleet.r.exists(fleet.job_key(job_id, idle_queue)), "no record"
    entry = fleet.id_key_value(job_id, idle_queue)
    assert entry is not None and ENTRY_ID.fullmatch(entry), entry
    # Remembered while the job lives, however long it waits: the key has no expiry yet.
    assert fleet.r.pttl(fleet.id_key(job_id, idle_queue)) == -1
    assert fleet.stream_entries_for(job_id, idle_queue) == [entry]
    ((_, fields),) = fleet.r.xrange(fleet.stream(idle_queue), entry, entry)
    assert decoded(fields) == {
        "id": job_id,
        "type": "sleep",
        "payload": payload,
        "content_type": "json",
        "max_attempts": "4",
        "timeout": "60000",
        "backoff": "fixed:100",
        "trace": TRACEPARENT,
        "held": "1",
    }
    assert fleet.r.zcard(fleet.delayed(idle_queue)) == 0
    assert fleet.r.zcard(fleet.later(idle_queue)) == 0
    found = fleet.find(job_id, idle_queue)
    assert found is not None and (found.where, found.status) == ("entry", "pending")


def test_a_delayed_job_waits_in_later_as_the_entry_it_becomes(fleet: Fleet, job_id: str, idle_queue: str) -> None:
    payload = json.dumps({"ms": 10})
    reply = fleet.script(
        job_id, "sleep", payload, queue=idle_queue, max_attempts=4, timeout_ms=60_000, backoff="fixed:100",
        trace=TRACEPARENT, delay_ms=60_000,
    )
    assert reply == (job_id, "created")
    # No unique key: no record, and nothing on the stream yet. The id waits in `later`,
    # scored by when it is due, and its id key holds `scheduled`, a space, and the entry
    # it becomes: the job's fields as for one to run now, with its times.
    assert not fleet.r.exists(fleet.job_key(job_id, idle_queue)), "no record"
    assert fleet.r.xlen(fleet.stream(idle_queue)) == 0
    assert fleet.r.zcard(fleet.delayed(idle_queue)) == 0
    assert fleet.r.get(fleet.id_key(job_id, idle_queue)).startswith(b"scheduled ")
    waiting = fleet.waiting(job_id, idle_queue)
    assert waiting is not None
    state, fields = waiting
    assert state == "scheduled"
    due, created = int(fields.pop("run_at")), int(fields.pop("created_at"))
    assert due - created == 60_000
    assert fields == {
        "id": job_id,
        "type": "sleep",
        "payload": payload,
        "content_type": "json",
        "max_attempts": "4",
        "timeout": "60000",
        "backoff": "fixed:100",
        "trace": TRACEPARENT,
    }
    assert fleet.r.zrange(fleet.later(idle_queue), 0, -1, withscores=True) == [(job_id.encode(), due)]
    # Remembered while it waits, however long: no expiry, and the id is taken.
    assert fleet.r.pttl(fleet.id_key(job_id, idle_queue)) == -1
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "exists")
    assert fleet.script(job_id, "noop", queue=idle_queue, delay_ms=60_000) == (job_id, "exists")
    assert fleet.r.zcard(fleet.later(idle_queue)) == 1 and fleet.r.xlen(fleet.stream(idle_queue)) == 0
    # Both readers find it there: the lookup by hand, and the client's.
    found = fleet.find(job_id, idle_queue)
    assert found is not None and (found.where, found.status) == ("later", "scheduled")
    status = fleet.status(job_id, idle_queue)
    assert status is not None
    assert (status.status, status.type, status.payload, status.run_at) == ("scheduled", "sleep", {"ms": 10}, due)


def test_the_id_is_remembered_while_its_job_waits_and_free_once_forgotten(
    fleet: Fleet, job_id: str, idle_queue: str
) -> None:
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "created")
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "exists")
    assert fleet.r.pttl(fleet.id_key(job_id, idle_queue)) == -1, "no expiry while it waits"
    # Once the id is forgotten, it can be enqueued again, as a new job.
    fleet.r.delete(fleet.id_key(job_id, idle_queue))
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "created")
    assert len(fleet.stream_entries_for(job_id, idle_queue)) == 2


def test_an_id_in_done_ids_is_taken_until_it_leaves_the_set(fleet: Fleet, job_id: str, idle_queue: str) -> None:
    # A job that completed without a record, as protocol 2.8 leaves it: no id key, the id
    # in `done_ids`. Enqueued again, to run now or later, it is a duplicate.
    fleet.r.zadd(fleet.done_ids(idle_queue), {job_id: fleet.server_ms()})
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "exists")
    assert fleet.script(job_id, "noop", queue=idle_queue, delay_ms=60_000) == (job_id, "exists")
    assert fleet.r.xlen(fleet.stream(idle_queue)) == 0 and fleet.r.zcard(fleet.later(idle_queue)) == 0
    assert not fleet.r.exists(fleet.id_key(job_id, idle_queue))
    # Once its completion is trimmed, the id leaves the set and is free again.
    fleet.r.zrem(fleet.done_ids(idle_queue), job_id)
    assert fleet.script(job_id, "noop", queue=idle_queue) == (job_id, "created")
    assert fleet.stream_entries_for(job_id, idle_queue) == [fleet.id_key_value(job_id, idle_queue)]


def test_a_count_or_timeout_of_0_is_left_to_the_worker(fleet: Fleet, job_id: str, idle_queue: str) -> None:
    assert fleet.script(job_id, "noop", queue=idle_queue, max_attempts=0, timeout_ms=0) == (job_id, "created")
    entry = fleet.id_key_value(job_id, idle_queue)
    assert entry is not None
    ((_, fields),) = fleet.r.xrange(fleet.stream(idle_queue), entry, entry)
    assert set(decoded(fields)) == {"id", "type", "payload", "content_type", "backoff", "held"}


def test_a_created_job_completes(fleet: Fleet, job_id: str) -> None:
    assert fleet.script(job_id, "sleep", '{"ms": 10}') == (job_id, "created")
    found = fleet.wait_job(job_id, "completed")
    assert found.where == "done", "completed with no record, remembered in done_ids"
    assert json.loads(found.fields["result"]) == {"slept_ms": 10}
    assert found.fields.get("attempts", "1") == "1"
    assert found.fields["type"] == "sleep"
    assert fleet.remembered_done(job_id) == (found.entry_id, found.fields)
    assert not fleet.r.exists(fleet.job_key(job_id))
    assert fleet.stream_entries_for(job_id) == []


def test_the_same_id_twice_replies_exists_and_runs_once(fleet: Fleet, job_id: str, paused_low: str) -> None:
    since = f"{fleet.server_ms()}-0"
    assert fleet.script(job_id, "sleep", '{"ms": 50}', queue=paused_low) == (job_id, "created")
    entry = fleet.id_key_value(job_id, paused_low)
    # The second enqueue writes nothing: no entry, no record, nothing delayed, the id key
    # as it was.
    assert fleet.script(job_id, "sleep", '{"ms": 50}', queue=paused_low) == (job_id, "exists")
    assert fleet.stream_entries_for(job_id, paused_low) == [entry]
    assert fleet.r.zscore(fleet.delayed(paused_low), job_id) is None
    assert fleet.r.zscore(fleet.later(paused_low), job_id) is None
    assert fleet.id_key_value(job_id, paused_low) == entry
    assert not fleet.r.exists(fleet.job_key(job_id, paused_low))
    fleet.r.srem(fleet.paused(), paused_low)
    completed = fleet.wait_job(job_id, "completed", paused_low)
    # Nor after it ran: `done_ids` remembers the id, and no id key comes back.
    assert fleet.script(job_id, "sleep", '{"ms": 50}', queue=paused_low) == (job_id, "exists")
    assert fleet.remembered_done(job_id, paused_low) == (completed.entry_id, completed.fields)
    fleet.run_noop(paused_low)
    assert fleet.stream_entries_for(job_id, paused_low) == []
    assert len(fleet.entries_for(fleet.done(paused_low), job_id, since=since)) == 1
    assert completed.fields.get("attempts", "1") == "1"
    assert not fleet.r.exists(fleet.job_key(job_id, paused_low))


def test_a_held_unique_key_replies_duplicate_with_the_holder(fleet: Fleet, job_id: str) -> None:
    key = f"conformance-{uuid.uuid4()}"
    other = str(uuid.uuid4())
    first = fleet.script(job_id, "sleep", '{"ms": 300}', unique_key=key, unique_ttl_ms=60_000)
    assert first == (job_id, "created")
    assert fleet.script(other, "sleep", '{"ms": 300}', unique_key=key, unique_ttl_ms=60_000) == (job_id, "duplicate")
    assert not fleet.r.exists(fleet.job_key(other)), "the duplicate was not enqueued"
    assert fleet.r.get(fleet.unique(key)) == job_id.encode()
    assert 0 < fleet.r.pttl(fleet.unique(key)) <= 60_000
    assert fleet.record(job_id)["unique_key"] == fleet.unique(key)
    fleet.wait_record(job_id, "completed")
    # Released when the job completes: the key can be taken again.
    assert fleet.r.get(fleet.unique(key)) is None
    assert fleet.script(other, "noop", unique_key=key, unique_ttl_ms=60_000) == (other, "created")
    fleet.wait_record(other, "completed")


def test_a_unique_key_held_for_its_ttl_outlives_the_job(fleet: Fleet, job_id: str) -> None:
    key = f"conformance-{uuid.uuid4()}"
    fleet.script(job_id, "noop", unique_key=key, unique_ttl_ms=60_000, unique_hold="expiry")
    fleet.wait_record(job_id, "completed")
    assert fleet.r.get(fleet.unique(key)) == job_id.encode()
    fleet.r.delete(fleet.unique(key))


def test_a_delay_is_counted_on_the_servers_clock(fleet: Fleet, job_id: str) -> None:
    assert fleet.script(job_id, "noop", delay_ms=600) == (job_id, "created")
    # No unique key: it waits in `later` without a record, its id key holding the whole job.
    scheduled = fleet.find(job_id)
    assert scheduled is not None and (scheduled.where, scheduled.status) == ("later", "scheduled")
    due = int(scheduled.fields["run_at"])
    assert due - int(scheduled.fields["created_at"]) == 600
    assert fleet.r.zscore(fleet.later(), job_id) == due
    assert fleet.r.zscore(fleet.delayed(), job_id) is None
    done = fleet.wait_job(job_id, "completed")
    assert done.where == "done", "promoted as the entry its id key held, with no record"
    assert done.started_ms() >= due


def test_a_run_at_ahead_is_scheduled_and_runs_not_before_it(fleet: Fleet, job_id: str) -> None:
    due = fleet.server_ms() + 600
    assert fleet.script(job_id, "noop", run_at_ms=due) == (job_id, "created")
    scheduled = fleet.find(job_id)
    assert scheduled is not None and (scheduled.where, scheduled.status) == ("later", "scheduled")
    assert scheduled.fields["run_at"] == str(due)
    assert fleet.r.zscore(fleet.later(), job_id) == due
    assert not fleet.r.exists(fleet.job_key(job_id))
    done = fleet.wait_job(job_id, "completed")
    assert done.where == "done"
    assert done.started_ms() >= due


def test_a_run_at_in_the_past_runs_now(fleet: Fleet, job_id: str, idle_queue: str) -> None:
    past = fleet.server_ms() - 60_000
    # Due now, not at the past time: on the stream at once, as a job with no time.
    assert fleet.script(job_id, "noop", queue=idle_queue, run_at_ms=past) == (job_id, "created")
    assert fleet.r.zcard(fleet.delayed(idle_queue)) == 0
    assert fleet.r.zcard(fleet.later(idle_queue)) == 0
    assert not fleet.r.exists(fleet.job_key(job_id, idle_queue))
    assert fleet.stream_entries_for(job_id, idle_queue) == [fleet.id_key_value(job_id, idle_queue)]
    # And it runs.
    other = str(uuid.uuid4())
    assert fleet.script(other, "noop", run_at_ms=past) == (other, "created")
    assert fleet.r.zscore(fleet.delayed(), other) is None
    assert fleet.r.zscore(fleet.later(), other) is None
    assert fleet.wait_job(other, "completed").where == "done"


def test_a_full_queue_is_refused_with_queue_full(fleet: Fleet, idle_queue: str) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert fleet.script(first, "noop", queue=idle_queue, queue_cap=1) == (first, "created")
    with pytest.raises(redis.ResponseError) as refused:
        fleet.script(second, "noop", queue=idle_queue, queue_cap=1)
    assert str(refused.value) == f"QUEUE_FULL queue {idle_queue} holds 1 jobs, its limit is 1"
    assert not fleet.r.exists(fleet.job_key(second, idle_queue))


def test_eval_of_the_source_works_as_evalsha(fleet: Fleet, job_id: str) -> None:
    keys = [fleet.stream(), fleet.job_key(job_id), fleet.delayed()]
    args = [job_id, "noop", "", "json", 3, 1_800_000, "fixed:50", 0, 0, 0, 0, "default", "", "2", ""]
    reply = fleet.r.eval(ENQUEUE_LUA.read_text(), len(keys), *keys, *args)
    assert reply == [job_id.encode(), b"created"]
    fleet.wait_job(job_id, "completed")
