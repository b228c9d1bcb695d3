"""Jobs enqueued through the published script, protocol/v2/enqueue.lua, called by hand: its replies, records and times."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from fleet import ENQUEUE_LUA, Fleet


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


def test_a_created_job_has_its_record_at_once_and_runs(fleet: Fleet, job_id: str, idle_queue: str) -> None:
    payload = json.dumps({"ms": 10})
    reply = fleet.script(
        job_id, "sleep", payload, queue=idle_queue, max_attempts=4, timeout_ms=60_000, backoff="fixed:100"
    )
    assert reply == (job_id, "created")
    record = fleet.record(job_id, idle_queue)
    assert record["status"] == "pending"
    assert record["id"] == job_id and record["type"] == "sleep" and record["queue"] == idle_queue
    assert record["payload"] == payload and record["content_type"] == "json"
    assert record["attempts"] == "0" and record["max_attempts"] == "4"
    assert record["timeout_ms"] == "60000" and record["backoff"] == "fixed:100"
    assert record["v"] == "2"
    assert record["run_at"] == record["created_at"]
    # The stream entry names the job only: the record holds the rest.
    entries = fleet.r.xrange(fleet.stream(idle_queue), record["entry"], record["entry"])
    assert entries == [(record["entry"].encode(), {b"id": job_id.encode()})]


def test_a_created_job_completes(fleet: Fleet, job_id: str) -> None:
    assert fleet.script(job_id, "sleep", '{"ms": 10}') == (job_id, "created")
    record = fleet.wait_record(job_id, "completed")
    assert json.loads(record["result"]) == {"slept_ms": 10}
    assert record["attempts"] == "1"


def test_the_same_id_twice_replies_exists_and_runs_once(fleet: Fleet, job_id: str) -> None:
    since = f"{fleet.server_ms()}-0"
    assert fleet.script(job_id, "sleep", '{"ms": 50}') == (job_id, "created")
    assert fleet.script(job_id, "sleep", '{"ms": 50}') == (job_id, "exists")
    fleet.wait_record(job_id, "completed")
    assert fleet.script(job_id, "sleep", '{"ms": 50}') == (job_id, "exists")
    fleet.run_noop()
    assert len(fleet.entries_for(fleet.done(), job_id, since=since)) == 1
    assert fleet.record(job_id)["attempts"] == "1"


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
    record = fleet.record(job_id)
    assert record["status"] == "scheduled"
    due = int(record["run_at"])
    assert due - int(record["created_at"]) == 600
    assert fleet.r.zscore(fleet.delayed(), job_id) == due
    done = fleet.wait_record(job_id, "completed")
    assert int(done["started_at"]) >= due


def test_a_run_at_ahead_is_scheduled_and_runs_not_before_it(fleet: Fleet, job_id: str) -> None:
    due = fleet.server_ms() + 600
    assert fleet.script(job_id, "noop", run_at_ms=due) == (job_id, "created")
    record = fleet.record(job_id)
    assert record["status"] == "scheduled"
    assert record["run_at"] == str(due)
    assert fleet.r.zscore(fleet.delayed(), job_id) == due
    done = fleet.wait_record(job_id, "completed")
    assert int(done["started_at"]) >= due


def test_a_run_at_in_the_past_runs_now(fleet: Fleet, job_id: str) -> None:
    assert fleet.script(job_id, "noop", run_at_ms=fleet.server_ms() - 60_000) == (job_id, "created")
    assert fleet.r.zscore(fleet.delayed(), job_id) is None
    record = fleet.wait_record(job_id, "completed")
    assert record["run_at"] == record["created_at"], "due now, not at the past time"


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
    fleet.wait_record(job_id, "completed")
