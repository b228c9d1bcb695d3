"""The keys and arguments the client passes to the published enqueue script; no Redis needed."""

from __future__ import annotations

from typing import Any

import pytest

from flotilla_client import Client, InvalidJob, Keys
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


def test_the_unique_enqueue_takes_no_group() -> None:
    connection = RecordingConnection()
    client = Client(connection)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.enqueue_unique("k", "noop", group="account-42")  # type: ignore[call-arg]
    assert connection.calls == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"unique_key": "k", "unique_ttl_ms": 1000}, "unique_key"),
    ],
)
def test_a_job_of_a_group_with_a_unique_key_is_refused(options: dict[str, Any], field: str) -> None:
    connection = RecordingConnection()
    script = EnqueueScript(connection, Keys())  # type: ignore[arg-type]
    with pytest.raises(InvalidJob) as refused:
        script.run(job(group="g", **options))
    assert refused.value.field == field
    assert "not with a group" in str(refused.value)
    assert connection.calls == []
