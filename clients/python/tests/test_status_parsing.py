"""JobStatus built from a record, a stream entry, a completion and a job waiting in `later`, whichever way the connection decodes replies; what an id key names."""

from __future__ import annotations

import json

import msgpack
import pytest
import redis

from flotilla_client import TERMINAL_STATUSES, AttemptError, Client, JobStatus, Keys
from flotilla_client.lookup import JobPlace, parse_id_key
from flotilla_client.status import completions_of, entry_time_ms, from_done, from_entry, from_record, from_waiting
from flotilla_client.waiting import Waiting, parse_waiting

RECORD = {
    b"id": b"job-1",
    b"type": b"fail",
    b"queue": b"default",
    b"status": b"completed",
    b"attempts": b"2",
    b"max_attempts": b"3",
    b"payload": b'{"times": 1}',
    b"content_type": b"json",
    b"result": b'{"succeeded_on_attempt":2}',
    b"errors": b'[{"attempt":1,"at":1700000000000,"error":"planned failure on attempt 1"}]',
    b"created_at": b"1699999999000",
    b"finished_at": b"1700000001000",
    b"worker": b"host-1-abc",
}


def test_a_record_reads_whole() -> None:
    status = from_record("default", "job-1", RECORD)
    assert status == JobStatus(
        id="job-1",
        queue="default",
        status="completed",
        type="fail",
        attempts=2,
        max_attempts=3,
        result={"succeeded_on_attempt": 2},
        error=None,
        errors=[AttemptError(attempt=1, at=1_700_000_000_000, error="planned failure on attempt 1")],
        payload={"times": 1},
        created_at=1_699_999_999_000,
        finished_at=1_700_000_001_000,
        worker="host-1-abc",
    )
    assert status.finished


def test_a_record_read_through_a_decoding_connection_reads_the_same() -> None:
    as_text = {k.decode(): v.decode() for k, v in RECORD.items()}
    assert from_record("default", "job-1", as_text) == from_record("default", "job-1", RECORD)


def test_missing_and_broken_fields_read_as_nothing() -> None:
    status = from_record(
        "low", "job-2", {b"status": b"dead", b"errors": b"not json", b"result": b"", b"error": b"boom"}
    )
    assert (status.id, status.queue, status.type) == ("job-2", "low", "")
    assert status.attempts == 0 and status.max_attempts is None
    assert status.errors == [] and status.result is None and status.payload is None
    assert status.error == "boom"


def test_a_msgpack_payload_stays_bytes() -> None:
    status = from_record("default", "j", {b"status": b"pending", b"content_type": b"msgpack", b"payload": b"\x81\xa1a\x01"})
    assert status.payload == b"\x81\xa1a\x01"


def test_a_pending_entry_and_a_running_one() -> None:
    fields = {b"type": b"sleep", b"payload": json.dumps({"ms": 5}).encode(), b"attempts": b"1", b"max_attempts": b"4"}
    pending = from_entry("default", "1700000000000-3", fields, None)
    assert (pending.status, pending.attempts, pending.max_attempts) == ("pending", 1, 4)
    assert pending.payload == {"ms": 5} and pending.created_at == 1_700_000_000_000
    running = from_entry("default", "1700000000000-3", fields, ("worker-a", 2))
    assert (running.status, running.attempts, running.worker) == ("running", 3, "worker-a")


def test_a_completion_keeps_no_payload() -> None:
    done = from_done(
        "default",
        "1700000000000-0",
        "1700000000250-0",
        {b"id": b"1700000000000-0", b"type": b"noop", b"attempts": b"1", b"worker": b"w", b"run_ms": b"0", b"result": b""},
    )
    assert (done.status, done.attempts, done.result, done.payload) == ("completed", 1, None, None)
    assert (done.created_at, done.finished_at) == (1_700_000_000_000, 1_700_000_000_250)


def test_an_entry_carrying_a_job_of_its_own_id_reports_that_id() -> None:
    fields = {b"id": b"report-7", b"type": b"render", b"payload": b"{}", b"max_attempts": b"2"}
    running = from_entry("default", "1700000000000-3", fields, ("worker-a", 1), "report-7")
    assert (running.id, running.status, running.attempts, running.worker) == ("report-7", "running", 1, "worker-a")
    # When the job was enqueued is its entry's time, whatever its id.
    assert running.created_at == 1_700_000_000_000 and running.max_attempts == 2


def test_a_completion_of_a_job_of_its_own_id_knows_no_enqueue_time() -> None:
    done = from_done(
        "default",
        "report-7",
        "1700000000250-0",
        {b"id": b"report-7", b"type": b"render", b"attempts": b"1", b"worker": b"w", b"run_ms": b"3", b"result": b"7"},
    )
    assert (done.id, done.status, done.result, done.worker) == ("report-7", "completed", 7, "w")
    assert (done.created_at, done.finished_at) == (None, 1_700_000_000_250)


def test_an_id_key_names_the_entry_or_the_completion() -> None:
    assert parse_id_key("1700000000000-3") == JobPlace(completed=False, entry_id="1700000000000-3")
    # The form protocol 2.7 wrote at completion, still read while such keys live.
    assert parse_id_key("done 1700000000250-0") == JobPlace(completed=True, entry_id="1700000000250-0")
    for unknown in ["", "done", "done ", "done x-1", "gone 1-0", "1-0 done", "done 1-0 extra", "abc"]:
        assert parse_id_key(unknown) is None, unknown


def test_an_id_key_shares_its_queues_hash_tag() -> None:
    assert Keys().id_key("emails", "report-7") == "flotilla:{emails}:id:report-7"
    assert Keys("ns").id_key("q", "a") == "ns:{q}:id:a"


def test_the_done_ids_set_shares_its_queues_hash_tag() -> None:
    assert Keys().done_ids("emails") == "flotilla:{emails}:done_ids"
    assert Keys("ns").done_ids("q") == "ns:{q}:done_ids"


def test_entry_ids_give_their_time() -> None:
    assert entry_time_ms("1700000000000-0") == 1_700_000_000_000
    for not_an_entry in ["5b0c3a5e-1c1e-4c53", "abc", "1-", "-1", "1-x"]:
        assert entry_time_ms(not_an_entry) is None


def test_a_records_due_times() -> None:
    failed = from_record(
        "default", "j", {b"status": b"failed", b"run_at": b"1700000000000", b"next_run_at": b"1700000005000"}
    )
    assert (failed.run_at, failed.next_run_at) == (1_700_000_000_000, 1_700_000_005_000)
    # A retry that went ahead leaves the field behind: it tells nothing then.
    running = from_record(
        "default", "j", {b"status": b"running", b"run_at": b"1700000000000", b"next_run_at": b"1700000005000"}
    )
    assert (running.run_at, running.next_run_at) == (1_700_000_000_000, None)


def test_an_entry_retried_without_a_record_carries_its_past() -> None:
    errors = b'[{"attempt":1,"at":1700000001000,"error":"boom"}]'
    fields = {
        b"id": b"1700000000000-0",
        b"type": b"fail",
        b"payload": b"{}",
        b"attempts": b"1",
        b"error": b"boom",
        b"errors": errors,
        b"created_at": b"1700000000000",
    }
    running = from_entry("default", "1700000002000-4", fields, ("worker-a", 1), "1700000000000-0")
    assert (running.id, running.status, running.attempts) == ("1700000000000-0", "running", 2)
    assert running.error == "boom"
    assert running.errors == [AttemptError(attempt=1, at=1_700_000_001_000, error="boom")]
    # When the job was enqueued, not when its retry was put on the stream.
    assert running.created_at == 1_700_000_000_000


def packed(state: str, fields: dict[str, bytes]) -> bytes:
    """An id key's value as the scripts write it: `cmsgpack.pack` of the entry's pairs."""
    pairs = [item for name, value in fields.items() for item in (name.encode(), value)]
    return state.encode() + b" " + msgpack.packb(pairs)


def test_a_job_scheduled_without_a_record() -> None:
    value = packed(
        "scheduled",
        {
            "id": b"report-7",
            "type": b"render",
            "payload": b'{"day": 1}',
            "max_attempts": b"4",
            "run_at": b"1700000060000",
            "created_at": b"1700000000000",
        },
    )
    waiting = parse_waiting(value)
    assert waiting is not None
    status = from_waiting("default", "report-7", waiting, 1_700_000_060_000)
    assert status == JobStatus(
        id="report-7",
        queue="default",
        status="scheduled",
        type="render",
        attempts=0,
        max_attempts=4,
        payload={"day": 1},
        created_at=1_700_000_000_000,
        run_at=1_700_000_060_000,
    )
    assert not status.finished
    # Promoted since its key was read: the entry's own `run_at` tells when it was due.
    assert from_waiting("default", "report-7", waiting, None).run_at == 1_700_000_060_000


def test_a_failed_job_waiting_for_its_retry_without_a_record() -> None:
    errors = b'[{"attempt":1,"at":1700000001000,"error":"planned failure on attempt 1"}]'
    waiting = parse_waiting(
        packed(
            "failed",
            {
                "id": b"1700000000000-0",
                "type": b"fail",
                "content_type": b"msgpack",
                "payload": b"\x81\xa5times\x01",
                "attempts": b"1",
                "error": b"planned failure on attempt 1",
                "errors": errors,
                "created_at": b"1700000000000",
            },
        )
    )
    assert waiting is not None
    status = from_waiting("default", "1700000000000-0", waiting, 1_700_000_061_000)
    assert (status.status, status.attempts, status.max_attempts) == ("failed", 1, None)
    assert status.error == "planned failure on attempt 1"
    assert status.errors == [AttemptError(attempt=1, at=1_700_000_001_000, error="planned failure on attempt 1")]
    assert status.payload == b"\x81\xa5times\x01", "a payload that is not JSON stays bytes"
    assert (status.created_at, status.run_at, status.next_run_at) == (1_700_000_000_000, None, 1_700_000_061_000)
    assert not status.finished


def test_a_job_waiting_its_groups_turn_is_pending() -> None:
    waiting = parse_id_key(
        packed(
            "grouped",
            {"id": b"sync-1", "type": b"sync", "payload": b'{"a": 1}', "group": b"account-42", "created_at": b"1700000000000"},
        )
    )
    assert isinstance(waiting, Waiting) and waiting.state == "grouped"
    status = from_waiting("default", "sync-1", waiting, None)
    assert (status.status, status.type, status.group, status.payload) == ("pending", "sync", "account-42", {"a": 1})
    assert (status.created_at, status.run_at, status.next_run_at) == (1_700_000_000_000, None, None)
    assert not status.finished


def test_a_record_and_an_entry_name_their_group() -> None:
    fields = {b"id": b"sync-1", b"type": b"sync", b"payload": b"null", b"group": b"account-42"}
    assert from_record("default", "sync-1", {**fields, b"status": b"running"}).group == "account-42"
    assert from_entry("default", "1700000000000-0", fields, None, "sync-1").group == "account-42"
    assert from_entry("default", "1700000000000-0", {b"type": b"noop"}, None).group is None


def test_an_id_key_holds_a_waiting_job() -> None:
    value = packed("scheduled", {"id": b"a", "type": b"t", "payload": b"\xff"})
    held = parse_id_key(value)
    assert held == Waiting(state="scheduled", fields={"id": b"a", "type": b"t", "payload": b"\xff"})
    # The text forms read the same as bytes.
    assert parse_id_key(b"done 1700000000250-0") == JobPlace(completed=True, entry_id="1700000000250-0")
    assert parse_id_key(b"1700000000000-3") == JobPlace(completed=False, entry_id="1700000000000-3")
    for unknown in [b"scheduled", b"failed 1-0", b"\x92\xa1a\xa1b", value[:-1]]:
        assert parse_id_key(unknown) is None, unknown


def test_the_later_set_shares_its_queues_hash_tag() -> None:
    assert Keys().later("emails") == "flotilla:{emails}:later"
    assert Keys("ns").later("q") == "ns:{q}:later"


def test_a_done_entry_is_split_into_its_completions_at_each_id() -> None:
    flat = [b"id", b"a", b"attempts", b"1", b"id", b"b", b"attempts", b"2", b"finished_at", b"1700000000000"]
    completions = completions_of(flat)
    assert completions == [{b"id": b"a", b"attempts": b"1"}, {b"id": b"b", b"attempts": b"2", b"finished_at": b"1700000000000"}]
    written_again = from_done("q", "b", "1700000009999-0", completions[1])
    assert (written_again.attempts, written_again.finished_at) == (2, 1700000000000)
    assert from_done("q", "a", "1700000009999-0", completions[0]).finished_at == 1700000009999
    assert completions_of([]) == []


def test_an_expired_job_is_finished() -> None:
    # What a worker leaves of a job not started by its `expires_at` (protocol 2.16).
    expired = from_record(
        "default",
        "report-7",
        {
            b"status": b"expired",
            b"type": b"render",
            b"attempts": b"0",
            b"created_at": b"1700000000000",
            b"expires_at": b"1700000060000",
            b"finished_at": b"1700000060004",
        },
    )
    assert (expired.status, expired.attempts) == ("expired", 0)
    assert (expired.expires_at, expired.finished_at) == (1_700_000_060_000, 1_700_000_060_004)
    assert expired.finished
    assert TERMINAL_STATUSES == {"completed", "dead", "cancelled", "expired"}


def test_wait_stops_at_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    expired = from_record("default", "j", {b"status": b"expired", b"expires_at": b"1700000060000"})
    monkeypatch.setattr(client, "status", lambda id, queue=None: expired)
    assert client.wait("j", timeout=0.5) is expired


def test_an_expiry_reads_from_a_record_an_entry_or_a_waiting_entry() -> None:
    at = b"1700000060000"
    record = from_record("default", "j", {b"status": b"pending", b"expires_at": at})
    entry = from_entry("default", "1700000000000-0", {b"type": b"noop", b"expires_at": at}, None)
    waiting = parse_waiting(packed("scheduled", {"id": b"j", "type": b"noop", "expires_at": at}))
    assert waiting is not None
    later = from_waiting("default", "j", waiting, 1_700_000_030_000)
    for status in (record, entry, later):
        assert status.expires_at == 1_700_000_060_000
        assert not status.finished


def test_no_expiry_reads_as_none() -> None:
    # Left out, it never expires; 0 says the same, as the script takes it.
    assert from_record("default", "j", {b"status": b"pending"}).expires_at is None
    assert from_record("default", "j", {b"status": b"pending", b"expires_at": b"0"}).expires_at is None
    assert from_entry("default", "1-0", {b"type": b"noop", b"expires_at": b"soon"}, None).expires_at is None
    done = from_done("default", "1-0", "2-0", {b"id": b"1-0", b"type": b"noop"})
    assert done.expires_at is None, "a completion keeps no expiry"
