"""Full ids (`<queue>:<entry id>` for a job without an id of its own, else the own id): how they are made, read back, and taken by `status` and `wait`; no Redis needed."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import flotilla_client.client as client_module
from flotilla_client import Client, JobStatus, WaitTimeout, full_id, parse_full_id


def test_entry_ids_are_named_with_their_queue_and_own_ids_as_they_are() -> None:
    assert full_id("mail", "1700000000000-0") == "mail:1700000000000-0"
    assert full_id("mail#2", "1-0") == "mail#2:1-0"
    assert full_id("a:b", "0-1") == "a:b:0-1"
    assert full_id("mail", "order-17") == "order-17"


@pytest.mark.parametrize("queue", ["mail", "a:b", "mail#2", "x.y", "default"])
def test_a_full_id_reads_back_as_its_queue_and_entry(queue: str) -> None:
    assert parse_full_id(full_id(queue, "1700000000000-3")) == (queue, "1700000000000-3")


@pytest.mark.parametrize("bare", ["order-17", "1700000000000-0", "order:17", ":1-0", "mail:1-", "mail:1-2-3", "1-0:x", "mail:"])
def test_anything_else_is_an_id_within_some_queue(bare: str) -> None:
    assert parse_full_id(bare) == (None, bare)


def test_a_status_knows_its_full_id() -> None:
    fast = JobStatus(id="1700000000000-0", queue="mail", status="pending", type="noop", attempts=0)
    own = JobStatus(id="order-17", queue="mail", status="pending", type="noop", attempts=0)
    assert fast.full_id == "mail:1700000000000-0"
    assert own.full_id == "order-17"


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> tuple[Client, list[tuple[str, str]]]:
    """A client whose look-ups are recorded, not made: every queue has one partition and
    no job is found."""
    seen: list[tuple[str, str]] = []

    def find_job(_connection: Any, _keys: Any, queue: str, job_id: str) -> None:
        seen.append((queue, job_id))

    monkeypatch.setattr(client_module, "find_job", find_job)
    client = Client(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    monkeypatch.setattr(client._placement, "count", lambda _queue: 1)
    return client, seen


@pytest.mark.parametrize(
    ("given", "queue", "looked_for"),
    [
        # A full id names its queue: the queue may be left out, or given as the same one.
        ("mail:1700000000000-0", None, ("mail", "1700000000000-0")),
        ("mail:1700000000000-0", "mail", ("mail", "1700000000000-0")),
        ("a:b:0-1", None, ("a:b", "0-1")),
        # A partition's full id, with its queue's name given, is looked for in the partition.
        ("mail#2:1-0", "mail", ("mail#2", "1-0")),
        # Any other id is one within the queue given, "default" when left out.
        ("1700000000000-0", None, ("default", "1700000000000-0")),
        ("1700000000000-0", "mail", ("mail", "1700000000000-0")),
        ("order:17", None, ("default", "order:17")),
        ("order-17", "mail", ("mail", "order-17")),
    ],
)
def test_status_takes_an_id_within_its_queue_or_a_full_id(
    looked_up: tuple[Client, list[tuple[str, str]]], given: str, queue: str | None, looked_for: tuple[str, str]
) -> None:
    client, seen = looked_up
    assert client.status(given, queue) is None
    assert seen == [looked_for]


@pytest.mark.parametrize(("given", "queue"), [("mail:1-0", "sms"), ("mail:1-0", "mail#2"), ("mail#2:1-0", "sms")])
def test_a_full_id_of_another_queue_is_not_found_in_this_one(
    looked_up: tuple[Client, list[tuple[str, str]]], given: str, queue: str
) -> None:
    client, seen = looked_up
    assert client.status(given, queue) is None
    assert seen == [], "nothing is read"


def test_wait_takes_a_full_id_as_status_does(looked_up: tuple[Client, list[tuple[str, str]]]) -> None:
    client, seen = looked_up
    with pytest.raises(WaitTimeout) as timed_out:
        client.wait("mail:1700000000000-0", timeout=0)
    assert timed_out.value.job_id == "mail:1700000000000-0"
    assert seen == [("mail", "1700000000000-0")]
