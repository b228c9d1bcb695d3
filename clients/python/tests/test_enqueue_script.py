"""The keys and arguments the client passes to the published enqueue script; no Redis needed."""

from __future__ import annotations

from typing import Any

import pytest

from flotilla_client import Client, Keys
from flotilla_client.partitions import partition_for, partition_name
from flotilla_client.script import EnqueueScript, ScriptJob


class RecordingConnection:
    """Stands in for a connection: the script it registers records each call and answers
    as the script does when it creates the job. Every queue has one partition, and naming
    a queue among the known ones is a no-op, so a client can run on it too."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[Any]]] = []

    def register_script(self, _source: str) -> Any:
        def run(keys: list[str], args: list[Any]) -> list[bytes]:
            self.calls.append((keys, args))
            return [str(args[0]).encode(), b"created"]

        return run

    def hget(self, _name: str, _key: str) -> None:
        return None

    def sadd(self, _name: str, *_values: str) -> int:
        return 0


def run(job: ScriptJob) -> tuple[list[str], list[Any]]:
    connection = RecordingConnection()
    script = EnqueueScript(connection, Keys())  # type: ignore[arg-type]
    assert script.run(job) == (job.id, "created")
    (call,) = connection.calls
    return call


def job(**options: Any) -> ScriptJob:
    return ScriptJob(queue="default", id="job-1", type="noop", payload="null", **options)


def test_a_job_without_expiry_or_debounce_passes_the_first_15_arguments() -> None:
    keys, args = run(job())
    assert keys == ["flotilla:{default}:q", "flotilla:{default}:job:job-1", "flotilla:{default}:delayed"]
    assert args == [
        "job-1", "noop", "null", "json", 3, 1_800_000, "exponential:1000:600000",
        0, 0, 0, 0, "default", "", "2", "finished",
    ]


def test_an_expiry_is_argv_18_after_a_debounce_delay_and_max_of_0() -> None:
    _, args = run(job(expires_at_ms=1_900_000_000_000))
    assert len(args) == 18
    assert args[15:] == [0, 0, 1_900_000_000_000]


def test_a_debounced_job_keeps_its_delay_and_max_before_its_expiry() -> None:
    debounced = job(debounce_key="doc-7", debounce_delay_ms=400, debounce_max_ms=5000, expires_at_ms=1_900_000_000_000)
    keys, args = run(debounced)
    assert keys[3] == "flotilla:{default}:debounce:doc-7"
    assert args[15:] == [400, 5000, 1_900_000_000_000]
    _, plain = run(job(debounce_key="doc-7", debounce_delay_ms=400))
    assert plain[15:] == [400, 0], "no expiry: ARGV[18] is left out"


def test_a_group_is_argv_19_after_debounce_and_expiry_of_0() -> None:
    keys, args = run(job(group="account-42"))
    assert len(keys) == 3, "a job of a group names no key of its own"
    assert args[15:] == [0, 0, 0, "account-42"]


def test_a_group_follows_an_expiry() -> None:
    _, args = run(job(group="account-42", expires_at_ms=1_900_000_000_000))
    assert args[15:] == [0, 0, 1_900_000_000_000, "account-42"]


def test_a_job_of_a_group_keeps_its_time_and_passes_its_group_as_argv_19() -> None:
    # Protocol 2.18: it waits for its time in `later`, then its group's turn.
    _, delayed = run(job(group="account-42", delay_ms=100))
    assert delayed[7:9] == [0, 100]
    assert delayed[15:] == [0, 0, 0, "account-42"]
    _, timed = run(job(group="account-42", run_at_ms=1_900_000_000_000))
    assert timed[7:9] == [1_900_000_000_000, 0]
    assert timed[15:] == [0, 0, 0, "account-42"]


def test_a_debounced_job_of_a_group_passes_its_group_after_its_delay_max_and_expiry() -> None:
    keys, args = run(job(group="account-42", debounce_key="doc-7", debounce_delay_ms=400, debounce_max_ms=5000))
    assert keys[3] == "flotilla:{default}:debounce:doc-7"
    assert args[15:] == [400, 5000, 0, "account-42"]
    _, expiring = run(job(group="account-42", debounce_key="doc-7", debounce_delay_ms=400, expires_at_ms=1_900_000_000_000))
    assert expiring[15:] == [400, 0, 1_900_000_000_000, "account-42"]


def test_the_client_passes_a_group_with_a_delay_a_time_or_a_debounce_key() -> None:
    connection = RecordingConnection()
    client = Client(connection)  # type: ignore[arg-type]
    delayed = client.enqueue_in(0.1, "noop", group="account-42")
    timed = client.enqueue_at(1_900_000_000_000, "noop", id="at-1", group="account-42")
    debounced = client.enqueue_debounced("doc-7", "noop", delay=0.4, group="account-42")
    (_, in_args), (_, at_args), (debounce_keys, debounce_args) = connection.calls
    assert in_args[0] == delayed and in_args[8] == 100
    assert timed == at_args[0] == "at-1" and at_args[7] == 1_900_000_000_000
    assert debounce_args[0] == debounced.id and not debounced.folded
    assert debounce_keys[3] == "flotilla:{default}:debounce:doc-7"
    for args in [in_args, at_args, debounce_args]:
        assert args[18] == "account-42", args
    # Without a group nothing changes: ARGV[19] is left out.
    client.enqueue_in(0.1, "noop")
    assert len(connection.calls[-1][1]) == 15


def test_the_unique_enqueue_passes_its_group_as_argv_19() -> None:
    connection = RecordingConnection()
    client = Client(connection)  # type: ignore[arg-type]
    held = client.enqueue_unique("k", "noop", group="account-42")
    ((keys, args),) = connection.calls
    assert held.id == args[0] and held.created
    assert keys[3] == "flotilla:{default}:unique:k"
    assert args[7:10] == [0, 0, 3_600_000], "it runs now, holding its key"
    assert args[15:] == [0, 0, 0, "account-42"]


def test_the_unique_enqueue_passes_a_delay_with_a_group() -> None:
    # Protocol 2.18: it waits for its time in `delayed`, then its group's turn.
    connection = RecordingConnection()
    client = Client(connection)  # type: ignore[arg-type]
    held = client.enqueue_unique("k", "noop", delay=5, group="account-42", hold_for_ttl=True)
    ((keys, args),) = connection.calls
    assert held.id == args[0] and held.created
    assert keys[3] == "flotilla:{default}:unique:k"
    assert args[7:10] == [0, 5000, 3_600_000]
    assert args[14] == "expiry"
    assert args[15:] == [0, 0, 0, "account-42"]


class PartitionedConnection(RecordingConnection):
    """As RecordingConnection, with every queue split into four partitions."""

    def hget(self, _name: str, _key: str) -> bytes:  # type: ignore[override]
        return b"4"


def test_a_unique_job_of_a_group_is_placed_by_its_group() -> None:
    # Its group's line and window are in its group's partition, so its key lives there too.
    group, key = "account-42", "k"
    by_group, by_key = partition_for(group, 4), partition_for(key, 4)
    assert by_group != by_key, "the two would place it apart"
    connection = PartitionedConnection()
    client = Client(connection)  # type: ignore[arg-type]
    client.enqueue_unique(key, "noop", delay=5, group=group)
    ((keys, args),) = connection.calls
    queue = partition_name("default", by_group)
    assert keys[0] == Keys().stream(queue)
    assert keys[3] == Keys().unique(queue, key)
    assert args[11] == queue
    # Without a group, its key places it.
    client.enqueue_unique(key, "noop", delay=5)
    assert connection.calls[-1][0][0] == Keys().stream(partition_name("default", by_key))


def test_a_unique_job_of_a_group_passes_its_key_and_group() -> None:
    # Protocol 2.18: it keeps a record, `pending` with no entry while it waits its turn.
    keys, args = run(job(group="account-42", unique_key="k", unique_ttl_ms=1000))
    assert keys[3] == "flotilla:{default}:unique:k"
    assert args[9] == 1000
    assert args[15:] == [0, 0, 0, "account-42"]


@pytest.mark.parametrize(
    ("options", "time"),
    [
        ({"delay_ms": 100}, [0, 100]),
        ({"run_at_ms": 1_900_000_000_000}, [1_900_000_000_000, 0]),
    ],
)
def test_a_unique_job_of_a_group_passes_its_time_key_and_group(options: dict[str, Any], time: list[int]) -> None:
    # Protocol 2.18: it waits in `delayed`, `scheduled`, then its group's turn, holding its key.
    keys, args = run(job(group="account-42", unique_key="k", unique_ttl_ms=1000, **options))
    assert keys[3] == "flotilla:{default}:unique:k"
    assert args[7:10] == [*time, 1000]
    assert args[15:] == [0, 0, 0, "account-42"]
