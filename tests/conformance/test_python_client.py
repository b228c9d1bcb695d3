"""Jobs enqueued with the Python client: what it writes is what PROTOCOL.md describes, and workers run it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from fleet import Fleet
from flotilla_client import Client


@pytest.fixture
def client(fleet: Fleet) -> Client:
    return Client(fleet.r)


@pytest.fixture
def idle_queue(fleet: Fleet) -> Iterator[str]:
    """A queue no worker serves, so what the client writes stays as written."""
    queue = f"conformance-client-{uuid.uuid4().hex[:12]}"
    yield queue
    fleet.r.srem(fleet.queues(), queue)
    for key in fleet.r.scan_iter(match=f"flotilla:{{{queue}}}:*"):
        fleet.r.delete(key)


def entry_fields(fleet: Fleet, queue: str, entry_id: str) -> dict[str, str]:
    ((_, fields),) = fleet.r.xrange(fleet.stream(queue), entry_id, entry_id)
    return {k.decode(): v.decode() for k, v in fields.items()}


def test_a_fast_path_entry_carries_only_type_payload_and_the_options_given(
    fleet: Fleet, client: Client, idle_queue: str
) -> None:
    bare = client.enqueue("noop", {"a": 1}, queue=idle_queue)
    assert entry_fields(fleet, idle_queue, bare) == {"type": "noop", "payload": '{"a":1}'}
    full = client.enqueue("noop", [1, "é"], queue=idle_queue, max_attempts=7, timeout_ms=1500, backoff="list:10,20")
    assert entry_fields(fleet, idle_queue, full) == {
        "type": "noop",
        "payload": '[1,"é"]',
        "max_attempts": "7",
        "timeout": "1500",
        "backoff": "list:10,20",
    }
    assert fleet.r.sismember(fleet.queues(), idle_queue)
    assert not fleet.r.exists(fleet.job_key(bare, idle_queue)), "no record on the fast path"


def test_a_fast_path_job_from_the_client_completes_into_done(fleet: Fleet, client: Client) -> None:
    entry = client.enqueue("sleep", {"ms": 15})
    _, done = fleet.wait_done(entry, since=entry)
    assert done.get("attempts", "1") == "1"
    assert json.loads(done["result"]) == {"slept_ms": 15}


def test_a_job_with_an_id_gets_the_documented_defaults_in_its_entry(
    fleet: Fleet, client: Client, job_id: str, idle_queue: str
) -> None:
    assert client.enqueue("noop", None, queue=idle_queue, id=job_id) == job_id
    # No record: the entry its id key names carries the whole job, with the script's
    # defaults for what the job leaves out, and says the key names it from the start
    # (`held`, protocol 2.8).
    assert not fleet.r.exists(fleet.job_key(job_id, idle_queue)), "no record for a job with an id to run now"
    entry = fleet.id_key_value(job_id, idle_queue)
    assert entry is not None
    assert entry_fields(fleet, idle_queue, entry) == {
        "id": job_id,
        "type": "noop",
        "payload": "null",
        "content_type": "json",
        "max_attempts": "3",
        "timeout": "1800000",
        "backoff": "exponential:1000:600000",
        "held": "1",
    }
    assert fleet.r.sismember(fleet.queues(), idle_queue)


def test_the_same_id_from_the_client_runs_once(fleet: Fleet, client: Client, job_id: str) -> None:
    since = f"{fleet.server_ms()}-0"
    assert client.enqueue("sleep", {"ms": 30}, id=job_id, backoff="fixed:50") == job_id
    assert client.enqueue("sleep", {"ms": 30}, id=job_id, backoff="fixed:50") == job_id
    completed = fleet.wait_job(job_id, "completed")
    assert client.enqueue("sleep", {"ms": 30}, id=job_id, backoff="fixed:50") == job_id
    fleet.run_noop()
    assert fleet.entries_for(fleet.done(), job_id, since=since) == [(completed.entry_id, completed.fields)]
    # Its id key went with its completion; `done_ids` remembers the id (protocol 2.8).
    assert fleet.remembered_done(job_id) == (completed.entry_id, completed.fields)


def test_enqueue_in_schedules_on_the_servers_clock(fleet: Fleet, client: Client) -> None:
    job_id = client.enqueue_in(timedelta(milliseconds=500), "noop")
    # No record: the job (the client gives it an id) waits in `later`, its id key holding
    # the entry it becomes, which says when it was enqueued and when it is due.
    scheduled = fleet.find(job_id)
    assert scheduled is not None and (scheduled.where, scheduled.status) == ("later", "scheduled")
    due = int(scheduled.fields["run_at"])
    assert due - int(scheduled.fields["created_at"]) == 500
    assert fleet.r.zscore(fleet.later(), job_id) == due
    assert not fleet.r.exists(fleet.job_key(job_id)), "no record for a delayed job without a unique key"
    # Once due it runs as that entry, completing through its id key.
    completed = fleet.wait_job(job_id, "completed")
    assert completed.where == "done", "it never had a record"
    assert completed.started_ms() >= due


def test_enqueue_at_a_time_ahead_and_a_time_past(fleet: Fleet, client: Client) -> None:
    due = fleet.server_ms() + 500
    later = client.enqueue_at(due, "noop")
    scheduled = fleet.find(later)
    assert scheduled is not None and (scheduled.where, scheduled.status) == ("later", "scheduled")
    assert scheduled.fields["run_at"] == str(due)
    assert fleet.r.zscore(fleet.later(), later) == due
    # The client reads it where it waits, with its due time.
    status = client.status(later)
    assert status is not None and (status.status, status.run_at) == ("scheduled", due)
    past = client.enqueue_at(datetime.now(timezone.utc) - timedelta(minutes=1), "noop")
    # Due now: it runs at once, as one entry carrying it, with no record.
    assert fleet.r.zscore(fleet.later(), past) is None
    assert fleet.r.zscore(fleet.delayed(), past) is None
    assert fleet.wait_job(past, "completed").where == "done"
    assert fleet.wait_job(later, "completed").started_ms() >= due


def test_enqueue_unique_holds_the_key_until_the_job_completes(fleet: Fleet, client: Client) -> None:
    key = f"conformance-{uuid.uuid4()}"
    first = client.enqueue_unique(key, "sleep", {"ms": 200}, ttl=60)
    assert first.created
    again = client.enqueue_unique(key, "noop", ttl=60)
    assert not again.created and again.id == first.id
    assert fleet.r.get(fleet.unique(key)) == first.id.encode()
    fleet.wait_record(first.id, "completed")
    assert fleet.r.get(fleet.unique(key)) is None
    after = client.enqueue_unique(key, "noop", ttl=60)
    assert after.created and after.id != first.id
    fleet.wait_record(after.id, "completed")
