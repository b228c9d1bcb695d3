"""Fixtures of the client's tests: a Redis with a Flotilla worker (FLOTILLA_REDIS_URL) for those that need one."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from flotilla_client import Client

# How long a freshly started worker may take to register.
WORKER_STARTUP_SECONDS = 20.0

# Longer than a worker's blocking read (200 ms in the test settings) plus its refresh of
# the paused set (20 ms): after this no read that began before the pause is still open.
PAUSE_SETTLE_SECONDS = 0.5


def connect(url: str, decode_responses: bool = False) -> redis.Redis:
    # Flotilla's settings spell a unix socket redis+unix://; redis-py spells it unix://.
    if url.startswith("redis+unix://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+unix://"), decode_responses=decode_responses)
    return redis.Redis.from_url(url, decode_responses=decode_responses)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("FLOTILLA_REDIS_URL")
    if not url:
        pytest.skip("FLOTILLA_REDIS_URL is not set: these tests need a Redis with a Flotilla worker serving default")
    r = connect(url)
    deadline = time.monotonic() + WORKER_STARTUP_SECONDS
    while not r.zcard("flotilla:{global}:workers"):
        if time.monotonic() > deadline:
            pytest.fail(f"no Flotilla worker registered on {url} within {WORKER_STARTUP_SECONDS:g} s")
        time.sleep(0.1)
    return url


@pytest.fixture
def connection(redis_url: str) -> redis.Redis:
    return connect(redis_url)


@pytest.fixture
def decoding_connection(redis_url: str) -> redis.Redis:
    """A connection made with decode_responses=True, as many applications make theirs."""
    return connect(redis_url, decode_responses=True)


@pytest.fixture
def client(connection: redis.Redis) -> Client:
    return Client(connection)


@pytest.fixture
def idle_queue(connection: redis.Redis) -> Iterator[str]:
    """A queue no worker serves: its jobs stay pending, as written."""
    queue = f"client-idle-{uuid.uuid4().hex[:12]}"
    yield queue
    connection.srem("flotilla:{global}:queues", queue)
    for key in connection.scan_iter(match=f"flotilla:{{{queue}}}:*"):
        connection.delete(key)


@pytest.fixture
def paused_low(connection: redis.Redis) -> Iterator[str]:
    """The queue `low`, which the worker serves, paused (the worker reads none of its
    jobs) until the test resumes it or ends."""
    paused = "flotilla:{global}:paused"
    connection.sadd(paused, "low")
    time.sleep(PAUSE_SETTLE_SECONDS)
    try:
        yield "low"
    finally:
        connection.srem(paused, "low")
