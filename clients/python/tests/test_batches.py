"""Batches (protocol 2.19): the arguments the client passes to the published batch script, how its calls are split, what it refuses, and how a batch reads; no Redis needed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from flotilla_client import (
    Batch,
    BatchCallback,
    BatchCounts,
    BatchJob,
    BatchMember,
    Client,
    FlowJob,
    InvalidJob,
    batch_script_text,
)
from flotilla_client.batches import parse_batch

# The 19 enqueue arguments of a job the client gives no options, after its id and type:
# the script's defaults, the queue, protocol version 2 and nothing else set.
PLAIN = ["null", "json", 3, 1_800_000, "exponential:1000:600000", 0, 0, 0, 0]
UNSET_TAIL = ["", "2", "finished", 0, 0, 0, ""]


def plain(job_id: str, job_type: str = "noop", queue: str = "default") -> list[Any]:
    return [job_id, job_type, *PLAIN, queue, *UNSET_TAIL]


class BatchConnection:
    """Stands in for a connection: the batch script records each call and answers the
    counts of the jobs it was given (or raises the error `refusal` when set); `hash` is
    what HGETALL answers."""

    def __init__(self, refusal: str | None = None) -> None:
        self.calls: list[tuple[list[str], list[Any]]] = []
        self.queues: list[str] = []
        self.refusal = refusal
        self.hash: dict[bytes, bytes] = {}
        self.total = 0

    def register_script(self, source: str) -> Any:
        def run(keys: list[str], args: list[Any]) -> list[bytes]:
            assert source == batch_script_text(), "only the batch script is called"
            self.calls.append((keys, args))
            if self.refusal is not None:
                raise redis.ResponseError(self.refusal)
            self.total += len(jobs_of(args))
            sealed = b"1" if args[4] == "seal" else b"0"
            return [str(self.total).encode(), str(self.total).encode(), b"0", b"0", b"0", sealed]

        return run

    def hget(self, _name: str, _key: str) -> None:
        return None

    def hgetall(self, name: str) -> dict[bytes, bytes]:
        self.hgetall_key = name
        return self.hash

    def pipeline(self, transaction: bool = True) -> Any:
        return QueueNaming(self)


class QueueNaming:
    def __init__(self, connection: BatchConnection) -> None:
        self.connection = connection

    def sadd(self, _name: str, value: str) -> None:
        self.connection.queues.append(value)

    def execute(self) -> list[Any]:
        return []


def callbacks_of(args: list[Any]) -> list[tuple[str, list[Any]]]:
    """Each callback's kind and 19 enqueue arguments, from a batch call's arguments."""
    return [(args[6 + 20 * i], args[7 + 20 * i : 26 + 20 * i]) for i in range(args[5])]


def jobs_of(args: list[Any]) -> list[list[Any]]:
    """Each job's 19 enqueue arguments, from a batch call's arguments."""
    at = 6 + 20 * args[5]
    count = args[at]
    jobs = [args[at + 1 + 19 * i : at + 20 + 19 * i] for i in range(count)]
    assert at + 1 + 19 * count == len(args), "the arguments match the counts"
    return jobs


def batch_client(connection: BatchConnection) -> Client:
    return Client(connection)  # type: ignore[arg-type]


def test_a_batch_is_opened_and_sealed_in_one_call_with_its_callbacks_and_jobs() -> None:
    connection = BatchConnection()
    counts = batch_client(connection).enqueue_batch(
        "import-42",
        [BatchJob("fetch", {"n": 1}, id="a"), BatchJob("fetch")],
        queue="imports",
        on_success=BatchJob("report"),
        on_complete=BatchJob("cleanup", id="tidy", queue="low"),
        on_death=FlowJob("alert"),
    )
    assert counts == BatchCounts(total=2, pending=2, completed=0, dead=0, ended=0, sealed=True)
    ((keys, args),) = connection.calls
    assert keys == ["flotilla:{imports}:q"], "the call goes where the batch's queue's stream is"
    assert args[:6] == ["flotilla", "imports", "import-42", "open", "seal", 3]
    assert callbacks_of(args) == [
        ("success", plain("import-42.on_success", "report", "imports")),
        ("complete", plain("tidy", "cleanup", "low")),
        # A FlowJob names its own queue, "default" unless given.
        ("death", plain("import-42.on_death", "alert", "default")),
    ]
    a, b = jobs_of(args)
    assert a == ["a", "fetch", '{"n":1}', *PLAIN[1:], "imports", *UNSET_TAIL]
    assert str(uuid.UUID(b[0])) == b[0], "a job without an id gets a new UUID"
    assert b[1:] == plain(b[0], "fetch", "imports")[1:]
    assert sorted(set(connection.queues)) == ["default", "imports", "low"]


def test_every_option_of_a_job_of_a_batch_is_passed() -> None:
    connection = BatchConnection()
    batch_client(connection).enqueue_batch(
        "b",
        [
            BatchJob(
                "fetch",
                id="j",
                max_attempts=5,
                timeout_ms=2_000,
                backoff="fixed:100",
                delay=1.5,
                expires_at_ms=4_000_000_000_000,
                group="acme",
            ),
            BatchJob("fetch", id="k", run_at=1_900_000_000_000),
        ],
    )
    ((_, args),) = connection.calls
    assert jobs_of(args) == [
        ["j", "fetch", "null", "json", 5, 2_000, "fixed:100", 0, 1_500, 0, 0, "default", "", "2", "finished", 0, 0, 4_000_000_000_000, "acme"],
        ["k", "fetch", "null", "json", 3, 1_800_000, "exponential:1000:600000", 1_900_000_000_000, 0, 0, 0, "default", *UNSET_TAIL],
    ]


def test_a_batch_kept_open_is_not_sealed() -> None:
    connection = BatchConnection()
    counts = batch_client(connection).enqueue_batch("b", [BatchJob("noop", id="x")], keep_open=True)
    assert not counts.sealed
    ((_, args),) = connection.calls
    assert args[3:6] == ["open", "", 0]


def test_an_empty_batch_is_opened_with_no_job() -> None:
    connection = BatchConnection()
    batch_client(connection).enqueue_batch("b", [], on_complete=BatchJob("noop"))
    ((_, args),) = connection.calls
    assert args[3:5] == ["open", "seal"]
    assert jobs_of(args) == []


def test_more_than_20000_jobs_are_opened_unsealed_then_added_the_last_call_sealing() -> None:
    connection = BatchConnection()
    jobs = [BatchJob("noop", id=f"j{n}") for n in range(40_001)]
    counts = batch_client(connection).enqueue_batch("big", jobs, on_success=BatchJob("noop"))
    modes = [(args[3], args[4], args[5], len(jobs_of(args))) for _, args in connection.calls]
    assert modes == [("open", "", 1, 20_000), ("add", "", 0, 20_000), ("add", "seal", 0, 1)]
    assert [job[0] for _, args in connection.calls for job in jobs_of(args)] == [f"j{n}" for n in range(40_001)]
    assert counts.total == 40_001 and counts.sealed

    kept = BatchConnection()
    batch_client(kept).enqueue_batch("big", jobs[:20_001], keep_open=True)
    assert [(args[3], args[4]) for _, args in kept.calls] == [("open", ""), ("add", "")]


def test_an_id_twice_across_calls_is_refused_before_any_call() -> None:
    connection = BatchConnection()
    jobs = [BatchJob("noop", id=f"j{n}") for n in range(20_000)] + [BatchJob("noop", id="j7")]
    with pytest.raises(InvalidJob, match="job id j7 is in the batch twice"):
        batch_client(connection).enqueue_batch("big", jobs)
    assert connection.calls == []


def test_jobs_are_added_and_the_batch_sealed() -> None:
    connection = BatchConnection()
    client = batch_client(connection)
    client.add_to_batch("b", [BatchJob("noop", id="x")], queue="imports")
    client.add_to_batch("b", [BatchJob("noop", id="y")], queue="imports", seal=True)
    client.add_to_batch("b", [], queue="imports")
    counts = client.seal_batch("b", queue="imports")
    assert counts.sealed
    calls = [(keys, args[:6], jobs_of(args)) for keys, args in connection.calls]
    stream = ["flotilla:{imports}:q"]
    assert calls == [
        (stream, ["flotilla", "imports", "b", "add", "", 0], [plain("x", queue="imports")]),
        (stream, ["flotilla", "imports", "b", "add", "seal", 0], [plain("y", queue="imports")]),
        (stream, ["flotilla", "imports", "b", "add", "", 0], []),
        (stream, ["flotilla", "imports", "b", "seal", "seal", 0], []),
    ]
    big = BatchConnection()
    batch_client(big).add_to_batch("b", [BatchJob("noop", id=f"j{n}") for n in range(20_001)], seal=True)
    assert [(args[3], args[4], len(jobs_of(args))) for _, args in big.calls] == [("add", "", 20_000), ("add", "seal", 1)]


@pytest.mark.parametrize(
    "refusal",
    [
        "BAD_BATCH batch b is sealed: no job may be added",
        "BAD_ARG job x: timeout 0: expected whole milliseconds from 0 to 315360000000",
        "BAD_ID job 1-1: id 1-1 has the form of a stream entry id",
    ],
)
def test_the_scripts_refusals_raise_invalid_job_with_its_reason(refusal: str) -> None:
    client = batch_client(BatchConnection(refusal=refusal))
    with pytest.raises(InvalidJob) as refused:
        client.add_to_batch("b", [BatchJob("noop", id="x")])
    assert refusal in str(refused.value)
    assert refused.value.field == "batch"


def test_other_errors_of_the_script_pass_through() -> None:
    client = batch_client(BatchConnection(refusal="OOM command not allowed"))
    with pytest.raises(redis.ResponseError, match="OOM"):
        client.seal_batch("b")


def test_a_job_that_waits_for_others_or_is_no_job_is_refused_and_nothing_is_sent() -> None:
    connection = BatchConnection()
    client = batch_client(connection)
    with pytest.raises(InvalidJob, match="a job of a batch waits for no other job"):
        client.enqueue_batch("b", [FlowJob("noop", after=["a"])])
    with pytest.raises(InvalidJob, match="a job of a batch waits for no other job"):
        client.enqueue_batch("b", [], on_complete=FlowJob("noop", after=["a"]))
    with pytest.raises(InvalidJob, match="invalid jobs"):
        client.enqueue_batch("b", ["noop"])  # type: ignore[list-item]
    with pytest.raises(InvalidJob, match="invalid jobs"):
        client.enqueue_batch("b", BatchJob("noop"))  # type: ignore[arg-type]
    with pytest.raises(InvalidJob, match="invalid on_success"):
        client.enqueue_batch("b", [], on_success="noop")  # type: ignore[arg-type]
    with pytest.raises(InvalidJob, match="invalid batch_id"):
        client.enqueue_batch("a batch", [])
    with pytest.raises(InvalidJob, match="invalid run_at"):
        client.enqueue_batch("b", [BatchJob("noop", delay=1, run_at=1_900_000_000_000)])
    with pytest.raises(InvalidJob, match="invalid id"):
        client.enqueue_batch("b", [BatchJob("noop", id="1-1")])
    assert connection.calls == []


def test_a_batch_reads_from_its_hash() -> None:
    connection = BatchConnection()
    connection.hash = {
        b"total": b"3",
        b"pending": b"0",
        b"completed": b"1",
        b"dead": b"1",
        b"ended": b"1",
        b"sealed": b"1",
        b"created_at": b"1700000000000",
        b"finished_at": b"1700000000500",
        b"cb:success": b"default b.on_success",
        b"done:success": b"dropped",
        b"cb:complete": b"low tidy",
        b"done:complete": b"fired",
        b"cb:death": b"default b.on_death",
        b"m:mail#2 j2": b"dead",
    }
    batch = batch_client(connection).batch("b", queue="imports")
    assert connection.hgetall_key == "flotilla:{imports}:batch:b"
    assert batch == Batch(
        id="b",
        queue="imports",
        total=3,
        pending=0,
        completed=1,
        dead=1,
        ended=1,
        sealed=True,
        created_at=1_700_000_000_000,
        finished_at=1_700_000_000_500,
        callbacks=(
            BatchCallback("success", "default", "b.on_success", "dropped"),
            BatchCallback("complete", "low", "tidy", "fired"),
            BatchCallback("death", "default", "b.on_death", None),
        ),
        dead_jobs=(BatchMember("mail#2", "j2"),),
    )
    assert batch.finished and batch.counts == BatchCounts(3, 0, 1, 1, 1, True)
    cb = batch.callback("complete")
    assert cb is not None and cb.decided == "fired"


def test_a_batch_reads_the_same_through_a_decoding_connection_and_none_when_gone() -> None:
    fields: dict[bytes | str, bytes | str] = {"total": "1", "pending": "1", "completed": "0", "dead": "0", "ended": "0", "sealed": "0", "created_at": "5"}
    batch = parse_batch("b", "default", fields)
    assert batch is not None
    assert (batch.total, batch.pending, batch.sealed, batch.created_at, batch.finished_at) == (1, 1, False, 5, None)
    assert batch.callbacks == () and batch.dead_jobs == () and not batch.finished
    assert batch_client(BatchConnection()).batch("b") is None
