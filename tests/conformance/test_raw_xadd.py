"""Jobs enqueued with a plain XADD, as a producer in any language writes them: every documented entry field."""

from __future__ import annotations

import json

import msgpack
import pytest

from fleet import Fleet

# What a completion after one attempt holds (protocol 2.11): `attempts` is left out when
# it is 1, `run_ms` when 0, `result` when the handler returned nothing.
DONE_FIELDS = {"id", "type", "worker", "run_ms", "result"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE"


def registered_workers(fleet: Fleet) -> set[str]:
    return {w.decode() for w in fleet.r.zrange(fleet.workers(), 0, -1)}


def test_a_fast_path_entry_runs_with_no_record_and_completes_into_done(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "sleep", "payload": json.dumps({"ms": 30})})
    done_id, done = fleet.wait_done(entry, since=entry)
    assert set(done) == DONE_FIELDS
    assert done["id"] == entry, "a fast-path job's id is its entry id"
    assert done["type"] == "sleep"
    assert "attempts" not in done, "one attempt, the default, is left out"
    assert done["worker"] in registered_workers(fleet)
    assert int(done["run_ms"]) >= 30
    assert json.loads(done["result"]) == {"slept_ms": 30}
    # The done entry's id is the completion time, after the job's own entry.
    assert int(done_id.split("-")[0]) >= int(entry.split("-")[0])
    assert not fleet.r.exists(fleet.job_key(entry)), "a fast-path job keeps no record"
    assert fleet.r.xrange(fleet.stream(), entry, entry) == [], "its entry was removed"


def test_an_entry_with_an_id_runs_without_a_record_and_done_ids_remembers_its_completion(
    fleet: Fleet, job_id: str
) -> None:
    payload = json.dumps({"ms": 20})
    entry = fleet.xadd(
        {"id": job_id, "type": "sleep", "payload": payload, "max_attempts": 5, "timeout": "2000", "backoff": "fixed:100"}
    )
    found = fleet.wait_job(job_id, "completed")
    assert found.where == "done", "done_ids leads to the completion"
    done_id, done = found.entry_id, found.fields
    assert done_id is not None
    # Protocol 2.8: the id key went with the completion, and `done_ids` remembers the id
    # (as long as its completion) with the millisecond from which that is in `done`.
    assert fleet.remembered_done(job_id) == (done_id, done)
    assert not fleet.r.exists(fleet.id_key(job_id))
    since = fleet.done_since(job_id)
    assert since is not None and int(entry.split("-")[0]) <= since <= int(done_id.split("-")[0])
    assert set(done) == DONE_FIELDS
    assert done["id"] == job_id
    assert done["type"] == "sleep"
    assert done.get("attempts", "1") == "1"
    assert done["worker"] in registered_workers(fleet)
    assert int(done["run_ms"]) >= 20
    assert json.loads(done["result"]) == {"slept_ms": 20}
    assert int(done_id.split("-")[0]) >= int(entry.split("-")[0])
    assert fleet.entries_for(fleet.done(), job_id, since=entry) == [(done_id, done)]
    assert not fleet.r.exists(fleet.job_key(job_id)), "a job with an id that runs once keeps no record"
    assert fleet.r.xrange(fleet.stream(), entry, entry) == [], "its entry was removed"


def test_an_entry_with_an_id_that_fails_once_is_retried_without_a_record_carrying_its_fields(
    fleet: Fleet, job_id: str
) -> None:
    payload = json.dumps({"times": 1})
    # A backoff long enough to read the retry while it waits.
    entry = fleet.xadd(
        {"id": job_id, "type": "fail", "payload": payload, "max_attempts": 5, "timeout": "2000", "backoff": "fixed:600"}
    )
    failed = fleet.wait_status(job_id, "failed")
    due = failed.next_run_at
    assert due is not None
    # The retry waits in `later` with no record: its id key holds the entry it becomes,
    # every field the producer wrote as written, with the attempts spent, the last error,
    # each attempt's error, when the job was enqueued and when its retry is due.
    assert not fleet.r.exists(fleet.job_key(job_id)), "a retry needs no record"
    assert fleet.r.zscore(fleet.later(), job_id) == due
    waiting = fleet.waiting(job_id)
    assert waiting is not None
    state, fields = waiting
    assert state == "failed"
    (first,) = json.loads(fields.pop("errors"))
    assert first["attempt"] == 1 and first["error"] == "planned failure on attempt 1"
    assert fields == {
        "id": job_id,
        "type": "fail",
        "payload": payload,
        "max_attempts": "5",
        "timeout": "2000",
        "backoff": "fixed:600",
        "attempts": "1",
        "error": "planned failure on attempt 1",
        "created_at": entry.split("-")[0],
        "run_at": str(due),
    }
    created = int(fields["created_at"])
    assert created <= first["at"] and due - first["at"] == 600
    # It completes without ever having had a record: its id key goes, and `done_ids`
    # remembers the id.
    found = fleet.wait_job(job_id, "completed")
    assert found.where == "done"
    done_id, done = found.entry_id, found.fields
    assert done_id is not None
    assert fleet.remembered_done(job_id) == (done_id, done)
    assert {"id", "type", "worker", "attempts", "result", "errors"} <= set(done), "a retried job's completion keeps its errors"
    assert done["id"] == job_id
    assert done["type"] == "fail"
    assert done["attempts"] == "2"
    assert json.loads(done["result"]) == {"succeeded_on_attempt": 2}
    assert done["worker"] in registered_workers(fleet)
    assert json.loads(done["errors"]) == [first]
    assert "error" not in done, "a completed job has no last error"
    started, finished = found.started_ms(), int(done_id.split("-")[0])
    assert due <= started <= finished, "the retry waited out the entry's backoff"
    assert fleet.entries_for(fleet.done(), job_id, since=entry) == [(done_id, done)]
    assert not fleet.r.exists(fleet.job_key(job_id))
    assert fleet.stream_entries_for(job_id) == []


def test_the_same_id_added_twice_runs_once(fleet: Fleet, job_id: str) -> None:
    fields = {"id": job_id, "type": "sleep", "payload": json.dumps({"ms": 50})}
    first = fleet.xadd(fields)
    fleet.xadd(fields)
    completed = fleet.wait_job(job_id, "completed")
    # A late duplicate, after the job finished, must not run it again either.
    fleet.xadd(fields)
    fleet.run_noop()
    fleet.eventually("the duplicates to be removed", lambda: fleet.stream_entries_for(job_id) == [] or None)
    assert fleet.entries_for(fleet.done(), job_id, since=first) == [(completed.entry_id, completed.fields)]
    assert completed.fields.get("attempts", "1") == "1"
    # Removed unrun: `done_ids` still leads to the one completion, no id key came back,
    # and no record appeared.
    assert fleet.remembered_done(job_id) == (completed.entry_id, completed.fields)
    assert not fleet.r.exists(fleet.job_key(job_id))


@pytest.mark.parametrize("with_id", [False, True], ids=["fast-path", "with-id"])
def test_a_msgpack_payload_is_decoded_as_a_map(fleet: Fleet, job_id: str, with_id: bool) -> None:
    packed = msgpack.packb({"ms": 20})
    fields: dict[str, str | bytes] = {"type": "sleep", "content_type": "msgpack", "payload": packed}
    if with_id:
        fields["id"] = job_id
    entry = fleet.xadd(fields)
    if with_id:
        found = fleet.wait_job(job_id, "completed")
        assert found.where == "done"
        assert json.loads(found.fields["result"]) == {"slept_ms": 20}
    else:
        _, done = fleet.wait_done(entry, since=entry)
        assert json.loads(done["result"]) == {"slept_ms": 20}


def test_a_msgpack_payload_keeps_its_bytes_through_a_retry_and_in_the_record_a_failure_writes(
    fleet: Fleet, job_id: str
) -> None:
    packed = msgpack.packb({"times": 1})
    # A backoff long enough to read the retry while it waits.
    fleet.xadd({"id": job_id, "type": "fail", "content_type": "msgpack", "payload": packed, "backoff": "fixed:600"})
    fleet.wait_status(job_id, "failed")
    waiting = fleet.waiting_raw(job_id)
    assert waiting is not None
    _, fields = waiting
    assert fields["content_type"] == b"msgpack"
    assert fields["payload"] == packed, "the entry a retry becomes keeps the payload's bytes"
    found = fleet.wait_job(job_id, "completed")
    assert json.loads(found.fields["result"]) == {"succeeded_on_attempt": 2}
    # One that fails for good gets a record, built from its entry, bytes and all.
    dead = f"{job_id}-dead"
    dead_payload = msgpack.packb({"times": -1})
    fleet.xadd({"id": dead, "type": "fail", "content_type": "msgpack", "payload": dead_payload, "max_attempts": 2})
    record = fleet.wait_record(dead, "dead")
    assert record["content_type"] == "msgpack"
    assert fleet.record_raw(dead)["payload"] == dead_payload, "the record keeps the payload's bytes"


def test_a_json_content_type_is_the_default_spelled_out(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "sleep", "content_type": "json", "payload": '{"ms": 5}'})
    _, done = fleet.wait_done(entry, since=entry)
    assert json.loads(done["result"]) == {"slept_ms": 5}


def test_an_empty_payload_means_null(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "noop", "payload": ""})
    _, done = fleet.wait_done(entry, since=entry)
    # One attempt and no result: both at their defaults, both left out.
    assert "attempts" not in done and "result" not in done


@pytest.mark.parametrize(
    ("max_attempts", "status", "attempts"),
    [(3, "completed", "3"), (2, "dead", "2")],
    ids=["enough", "too-few"],
)
def test_max_attempts_bounds_the_attempts(fleet: Fleet, max_attempts: int, status: str, attempts: str) -> None:
    # Fails attempts 1 and 2, then succeeds: three attempts are needed.
    entry = fleet.xadd({"type": "fail", "payload": '{"times": 2}', "max_attempts": max_attempts})
    if status == "completed":
        # Retried without a record: its completion, which `done_ids` leads to once its id
        # key went, says so.
        found = fleet.wait_job(entry, status)
        assert found.where == "done"
        assert found.fields["attempts"] == attempts
        assert json.loads(found.fields["result"]) == {"succeeded_on_attempt": 3}
        assert [e["attempt"] for e in json.loads(found.fields["errors"])] == [1, 2]
    else:
        record = fleet.wait_record(entry, status)
        assert record["max_attempts"] == str(max_attempts)
        assert record["attempts"] == attempts
        assert fleet.wait_dead(entry, since=entry)["attempts"] == "2"


@pytest.mark.parametrize(
    ("timeout", "timeout_ms"),
    [("1500", 1500), ("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000)],
)
def test_a_timeout_with_or_without_a_unit_is_stored_in_ms(
    fleet: Fleet, job_id: str, timeout: str, timeout_ms: int
) -> None:
    # A job that runs once keeps no record: it runs, which it would not if its timeout
    # were refused (an undecodable entry goes dead without running).
    fleet.xadd({"id": job_id, "type": "noop", "timeout": timeout})
    assert fleet.wait_job(job_id, "completed").where == "done"
    # One that fails, is retried and fails for good gets a record, built from the entry its
    # retry ran from, which stores the timeout the worker ran it with, in ms.
    failing = f"{job_id}-failing"
    fleet.xadd({"id": failing, "type": "fail", "payload": '{"times": -1}', "max_attempts": 2, "timeout": timeout})
    record = fleet.wait_record(failing, "dead")
    assert record["attempts"] == "2"
    assert record["timeout_ms"] == str(timeout_ms)


def test_a_fast_path_timeout_with_a_unit_reaches_the_record_a_failure_writes(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "fail", "payload": '{"times": -1}', "max_attempts": 1, "timeout": "5m"})
    assert fleet.wait_record(entry, "dead")["timeout_ms"] == "300000"


def test_an_attempt_that_overruns_its_timeout_fails(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "sleep", "payload": '{"ms": 5000}', "timeout": "300ms", "max_attempts": 1})
    record = fleet.wait_record(entry, "dead")
    assert record["error"].startswith("timed out after 0.3s"), record["error"]
    assert int(record["finished_at"]) - int(record["started_at"]) < 5000


@pytest.mark.parametrize(
    ("backoff", "least_ms", "most_ms"),
    [
        ("fixed:300", 300, 300),
        # The first retry's delay is the base with jitter in [base/2, base].
        ("exponential:400:1000", 200, 400),
        ("list:300,5000", 300, 300),
    ],
    ids=["fixed", "exponential", "list"],
)
def test_each_backoff_form_delays_the_retry(fleet: Fleet, backoff: str, least_ms: int, most_ms: int) -> None:
    entry = fleet.xadd({"type": "fail", "payload": '{"times": 1}', "backoff": backoff})
    # Retried without a record; once it completed, `done_ids` leads to its completion.
    found = fleet.wait_job(entry, "completed")
    assert found.where == "done"
    assert found.fields["attempts"] == "2"
    (first,) = json.loads(found.fields["errors"])
    assert first["attempt"] == 1 and first["error"] == "planned failure on attempt 1"
    waited = found.started_ms() - first["at"]
    # Never early; late only by the promotion and fetch delays of a loaded machine.
    assert least_ms <= waited <= most_ms + 1500, waited


@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_a_run_at_ahead_is_scheduled_and_runs_not_before_its_time(fleet: Fleet, job_id: str, with_id: bool) -> None:
    # Far enough ahead that the worker reads the entry before it is due, even when slow.
    due = fleet.server_ms() + 1000
    fields: dict[str, str | int] = {"type": "noop", "run_at": due}
    if with_id:
        fields["id"] = job_id
    entry = fleet.xadd(fields)
    key = job_id if with_id else entry
    scheduled = fleet.wait_record(key, {"scheduled", "pending", "running", "completed"})
    assert scheduled["status"] == "scheduled", "a run_at ahead waits as scheduled"
    assert scheduled["run_at"] == str(due)
    assert fleet.r.zscore(fleet.delayed(), key) == due
    # Once due, one with an id of its own runs as a whole entry, without its record; one
    # named by its entry id keeps its record.
    completed = fleet.wait_job(key, "completed")
    assert completed.where == ("done" if with_id else "record")
    assert completed.started_ms() >= due


@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_a_run_at_in_the_past_runs_now(fleet: Fleet, job_id: str, with_id: bool) -> None:
    fields: dict[str, str | int] = {"type": "noop", "run_at": fleet.server_ms() - 60_000}
    if with_id:
        fields["id"] = job_id
    entry = fleet.xadd(fields)
    if with_id:
        # Nothing ahead: it runs as a job with an id and no time, its completion remembered in
        # `done_ids`.
        assert fleet.wait_job(job_id, "completed").where == "done"
        assert not fleet.r.exists(fleet.job_key(job_id))
    else:
        # With no id and nothing ahead, it is a fast-path job: a completion, no record.
        fleet.wait_done(entry, since=entry)
        assert not fleet.r.exists(fleet.job_key(entry))
    assert fleet.r.zscore(fleet.delayed(), job_id if with_id else entry) is None


def test_attempts_already_spent_count_towards_the_attempt_number(fleet: Fleet) -> None:
    # Fails attempt 1 only: with one attempt spent, the first run is attempt 2 and succeeds.
    entry = fleet.xadd({"type": "fail", "payload": '{"times": 1}', "attempts": 1})
    _, done = fleet.wait_done(entry, since=entry)
    assert done["attempts"] == "2"
    assert json.loads(done["result"]) == {"succeeded_on_attempt": 2}


@pytest.mark.parametrize("with_id", [False, True], ids=["fast-path", "with-id"])
def test_attempts_equal_to_max_attempts_go_dead_without_running(fleet: Fleet, job_id: str, with_id: bool) -> None:
    fields: dict[str, str | int] = {"type": "sleep", "payload": '{"ms": 1}', "attempts": 2, "max_attempts": 2}
    if with_id:
        fields["id"] = job_id
    entry = fleet.xadd(fields)
    key = job_id if with_id else entry
    dead = fleet.wait_dead(key, since=entry)
    assert dead["error"].startswith("attempts spent (2 of 2)"), dead["error"]
    # Spent by the entry's own count: no worker crashed, and the reason must not say one did.
    assert "interrupted" not in dead["error"], dead["error"]
    assert dead["attempts"] == "2"
    record = fleet.wait_record(key, "dead")
    assert "result" not in record, "it never ran"
    assert fleet.entries_for(fleet.done(), key, since=entry) == []


@pytest.mark.parametrize(
    ("fields", "trace"),
    [
        ({"traceparent": TRACEPARENT}, TRACEPARENT),
        ({"traceparent": TRACEPARENT, "tracestate": TRACESTATE}, f"{TRACEPARENT}\n{TRACESTATE}"),
        ({"trace": TRACEPARENT}, TRACEPARENT),
    ],
    ids=["traceparent", "with-tracestate", "older-trace-field"],
)
def test_the_trace_context_of_an_entry_with_an_id_reaches_the_record_a_failure_writes(
    fleet: Fleet, job_id: str, fields: dict[str, str], trace: str
) -> None:
    # The entry carries it while the job has no record, and the entry its retry runs from
    # carries it on; the record the last failure writes keeps it as one value
    # (traceparent, then tracestate on a second line).
    fleet.xadd({"id": job_id, "type": "fail", "payload": '{"times": -1}', "max_attempts": 2, **fields})
    record = fleet.wait_record(job_id, "dead")
    assert record["attempts"] == "2"
    assert record["trace"] == trace


def test_a_fast_path_trace_context_reaches_the_record_a_failure_writes(fleet: Fleet) -> None:
    entry = fleet.xadd(
        {"type": "fail", "payload": '{"times": -1}', "max_attempts": 1, "traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    )
    assert fleet.wait_record(entry, "dead")["trace"] == f"{TRACEPARENT}\n{TRACESTATE}"


def test_the_protocol_version_field_is_informational(fleet: Fleet) -> None:
    entry = fleet.xadd({"type": "noop", "v": "2"})
    fleet.wait_done(entry, since=entry)
