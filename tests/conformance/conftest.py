"""Fixtures of the conformance suite: the fleet under test, found through FLOTILLA_REDIS_URL and FLOTILLA_BIN."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from fleet import Fleet

# How long a freshly started worker may take to register.
WORKER_STARTUP_SECONDS = 20.0

# Longer than a worker's blocking read (200 ms in the test settings) plus its refresh of
# the paused set (20 ms): after this no read that began before the pause is still open.
PAUSE_SETTLE_SECONDS = 0.5


def connect(url: str) -> redis.Redis:
    # Flotilla's settings spell a unix socket redis+unix://; redis-py spells it unix://.
    if url.startswith("redis+unix://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+unix://"))
    return redis.Redis.from_url(url)


def wait_for_worker(r: redis.Redis, queues: set[str]) -> None:
    deadline = time.monotonic() + WORKER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        for worker in r.zrange("flotilla:{global}:workers", 0, -1):
            served = r.hget(b"flotilla:{global}:worker:" + worker, "queues") or b""
            if queues <= set(served.decode().split(",")):
                return
        time.sleep(0.1)
    pytest.fail(f"no worker serving {sorted(queues)} registered within {WORKER_STARTUP_SECONDS:g} s")


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    url = os.environ.get("FLOTILLA_REDIS_URL")
    if not url:
        pytest.skip(
            "FLOTILLA_REDIS_URL is not set: the conformance suite needs a Redis with a "
            "Flotilla worker serving critical, default and low"
        )
    flotilla_bin = os.environ.get("FLOTILLA_BIN")
    if not flotilla_bin:
        pytest.fail("FLOTILLA_BIN is not set: the path of the flotilla binary, for the CLI checks")
    r = connect(url)
    wait_for_worker(r, {"critical", "default", "low"})
    return Fleet(r, flotilla_bin, url)


@pytest.fixture
def job_id() -> str:
    """A fresh job id, so tests can share one Redis."""
    return str(uuid.uuid4())


@pytest.fixture
def paused_low(fleet: Fleet) -> Iterator[str]:
    """The queue `low`, paused (workers skip it) until the test resumes it or ends."""
    fleet.r.sadd(fleet.paused(), "low")
    time.sleep(PAUSE_SETTLE_SECONDS)
    try:
        yield "low"
    finally:
        fleet.r.srem(fleet.paused(), "low")
