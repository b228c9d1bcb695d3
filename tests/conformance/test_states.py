"""The documented job states and their transitions, observed where PROTOCOL.md says each state is kept."""

from __future__ import annotations

import json
import uuid

from fleet import Fleet


def resume(fleet: Fleet, queue: str) -> None:
    fleet.r.srem(fleet.paused(), queue)


def test_a_fast_path_job_goes_pending_running_completed(fleet: Fleet, paused_low: str) -> None:
    entry = fleet.xadd({"type": "sleep", "payload": '{"ms": 400}'}, paused_low)
    # Pending: on its stream, past the group's last delivered entry, with no record.
    assert fleet.r.xrange(fleet.stream(paused_low), entry, entry) != []
    assert fleet.in_pending_list(entry, paused_low) is None
    assert not fleet.r.exists(fleet.job_key(entry, paused_low))
    resume(fleet, paused_low)
    # Running: in the group's pending list, the consumer being the worker.
    consumer, deliveries = fleet.eventually("the entry to be delivered", lambda: fleet.in_pending_list(entry, paused_low))
    assert consumer in {w.decode() for w in fleet.r.zrange(fleet.workers(), 0, -1)}
    assert deliveries == 1
    # Completed: one entry in `done`, and none left on the stream.
    _, done = fleet.wait_done(entry, paused_low, since=entry)
    assert done["worker"] == consumer
    assert json.loads(done["result"]) == {"slept_ms": 400}
    assert fleet.r.xrange(fleet.stream(paused_low), entry, entry) == []
    assert fleet.in_pending_list(entry, paused_low) is None


def test_a_job_with_an_id_goes_pending_running_completed_through_its_id_key_then_done_ids(
    fleet: Fleet, job_id: str, paused_low: str
) -> None:
    assert fleet.script(job_id, "sleep", '{"ms": 400}', queue=paused_low) == (job_id, "created")
    # Pending: its id key names its entry, which is on the stream and not yet delivered;
    # no record.
    entry = fleet.id_key_value(job_id, paused_low)
    assert entry is not None
    assert fleet.stream_entries_for(job_id, paused_low) == [entry]
    assert fleet.in_pending_list(entry, paused_low) is None
    assert not fleet.r.exists(fleet.job_key(job_id, paused_low))
    pending = fleet.find(job_id, paused_low)
    assert pending is not None and (pending.where, pending.status) == ("entry", "pending")
    resume(fleet, paused_low)
    # Running: the entry in the group's pending list, the consumer being the worker; the
    # id key still names it.
    consumer, deliveries = fleet.eventually("the entry to be delivered", lambda: fleet.in_pending_list(entry, paused_low))
    assert consumer in {w.decode() for w in fleet.r.zrange(fleet.workers(), 0, -1)}
    assert deliveries == 1
    running = fleet.find(job_id, paused_low)
    assert running is not None and (running.where, running.status, running.entry_id) == ("entry", "running", entry)
    # Completed: the id key is gone, `done_ids` leads to its entry in `done`, and its
    # entry left the stream.
    completed = fleet.wait_job(job_id, "completed", paused_low)
    assert completed.where == "done"
    assert fleet.remembered_done(job_id, paused_low) == (completed.entry_id, completed.fields)
    assert completed.fields["worker"] == consumer
    assert completed.fields.get("attempts", "1") == "1"
    assert int(completed.fields["run_ms"]) >= 400
    assert json.loads(completed.fields["result"]) == {"slept_ms": 400}
    assert fleet.r.xrange(fleet.stream(paused_low), entry, entry) == []
    assert fleet.in_pending_list(entry, paused_low) is None
    assert not fleet.r.exists(fleet.job_key(job_id, paused_low))


def test_a_job_with_a_record_goes_pending_running_completed(fleet: Fleet, job_id: str, paused_low: str) -> None:
    # A unique key gives a job to run now a record.
    key = f"conformance-{uuid.uuid4()}"
    created = fleet.script(job_id, "sleep", '{"ms": 400}', queue=paused_low, unique_key=key, unique_ttl_ms=60_000)
    assert created == (job_id, "created")
    assert fleet.record(job_id, paused_low)["status"] == "pending"
    resume(fleet, paused_low)
    running = fleet.wait_record(job_id, "running", paused_low)
    assert running["attempts"] == "1"
    assert running["worker"] and running["started_at"]
    completed = fleet.wait_record(job_id, "completed", paused_low)
    assert completed["worker"] == running["worker"]
    assert int(completed["finished_at"]) >= int(completed["started_at"]) + 400
    assert fleet.r.get(fleet.unique(key, paused_low)) is None, "released when the job completed"


def test_a_failed_job_waits_for_its_retry_then_completes_with_its_error_history(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "fail", "payload": '{"times": 1}', "backoff": "fixed:600"})
    failed = fleet.wait_status(entry, "failed")
    assert failed.error == "planned failure on attempt 1"
    assert failed.attempts == 1
    assert [(e.attempt, e.error) for e in failed.errors] == [(1, "planned failure on attempt 1")]
    due = failed.next_run_at
    assert due is not None
    # Where it waits: in `later`, with no record. Its id key, under its entry id, holds
    # `failed` and the entry its retry becomes: the job's own fields with the attempts
    # spent, the last error, the history, its first enqueue and when it is due. Its id
    # is in `retry_of`: `id` names only ids of a job's own.
    assert not fleet.r.exists(fleet.job_key(entry)), "a retry needs no record"
    assert fleet.r.zscore(fleet.later(), entry) == due, "a retry waits in later"
    assert fleet.r.zscore(fleet.delayed(), entry) is None
    waiting = fleet.waiting(entry)
    assert waiting is not None
    state, fields = waiting
    assert state == "failed"
    history = json.loads(fields.pop("errors"))
    assert fields == {
        "retry_of": entry,
        "type": "fail",
        "payload": '{"times": 1}',
        "backoff": "fixed:600",
        "attempts": "1",
        "error": "planned failure on attempt 1",
        "created_at": entry.split("-")[0],
        "run_at": str(due),
    }
    assert [(e["attempt"], e["error"]) for e in history] == [(1, "planned failure on attempt 1")]
    # Completed without ever having a record: the id key is gone and `done_ids` leads to
    # the completion, which keeps the history of errors and no last error.
    completed = fleet.wait_job(entry, "completed")
    assert completed.where == "done"
    assert fleet.remembered_done(entry) == (completed.entry_id, completed.fields)
    assert completed.started_ms() >= due
    assert completed.fields["attempts"] == "2"
    assert json.loads(completed.fields["result"]) == {"succeeded_on_attempt": 2}
    errors = json.loads(completed.fields["errors"])
    assert [(e["attempt"], e["error"]) for e in errors] == [(1, "planned failure on attempt 1")]
    assert isinstance(errors[0]["at"], int)
    assert "error" not in completed.fields, "a completed job has no last error"
    assert fleet.r.zscore(fleet.later(), entry) is None


def test_a_job_whose_attempts_are_spent_is_dead(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "fail", "payload": '{"times": -1}', "max_attempts": 2})
    dead = fleet.wait_dead(entry, since=entry)
    assert set(dead) == {"id", "type", "queue", "attempts", "error", "failed_at"}
    assert dead["id"] == entry
    assert dead["type"] == "fail"
    assert dead["queue"] == "default"
    assert dead["attempts"] == "2"
    assert dead["error"].startswith("planned failure on attempt 2"), dead["error"]
    record = fleet.wait_record(entry, "dead")
    assert record["finished_at"] == dead["failed_at"]
    assert record["error"] == dead["error"]
    errors = json.loads(record["errors"])
    assert [(e["attempt"], e["error"]) for e in errors] == [
        (1, "planned failure on attempt 1"),
        (2, "planned failure on attempt 2"),
    ]
    assert fleet.r.zscore(fleet.index("dead"), entry) is not None


def test_a_scheduled_job_is_cancelled_from_the_command_line(fleet: Fleet, job_id: str) -> None:
    assert fleet.script(job_id, "noop", delay_ms=60_000) == (job_id, "created")
    scheduled = fleet.find(job_id)
    assert scheduled is not None and (scheduled.where, scheduled.status) == ("later", "scheduled")
    due = int(scheduled.fields["run_at"])
    result = fleet.cli("jobs", "cancel", job_id, "--queue", "default")
    assert result.returncode == 0, result.stderr
    assert f"cancelled {job_id} (it was scheduled)" in result.stdout
    # A cancel gives it a record, built from the entry it was to become; the record leads
    # from then on and remembers the id.
    record = fleet.record(job_id)
    assert record["status"] == "cancelled"
    assert (record["type"], record["run_at"]) == ("noop", str(due))
    assert fleet.id_key_value(job_id) is None
    assert fleet.r.zscore(fleet.later(), job_id) is None
    assert fleet.r.zscore(fleet.delayed(), job_id) is None
    assert fleet.r.zscore(fleet.index("cancelled"), job_id) is not None
    assert "started_at" not in record, "it never ran"


def test_a_pending_fast_path_job_is_cancelled_and_never_runs(fleet: Fleet, paused_low: str) -> None:
    entry = fleet.xadd({"type": "noop"}, paused_low)
    result = fleet.cli("jobs", "cancel", entry, "--queue", paused_low)
    assert result.returncode == 0, result.stderr
    assert f"cancelled {paused_low}:{entry}" in result.stdout
    assert fleet.record(entry, paused_low)["status"] == "cancelled"
    resume(fleet, paused_low)
    fleet.run_noop(paused_low)
    assert fleet.entries_for(fleet.done(paused_low), entry, since=entry) == []
    assert fleet.record(entry, paused_low)["status"] == "cancelled"
