"""Enqueues one job with a plain XADD carrying a W3C traceparent, as a Python producer
that traces its own work would. Prints the entry id (the job's id).

usage: xadd_traceparent.py REDIS_URL STREAM TRACEPARENT
"""

import sys

import redis


def connect(url: str) -> redis.Redis:
    # The tests' servers listen on unix sockets; redis-py spells those unix://.
    if url.startswith("redis+unix://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+unix://"))
    return redis.Redis.from_url(url)


def main() -> None:
    url, stream, traceparent = sys.argv[1:4]
    entry = connect(url).xadd(
        stream, {"type": "noop", "payload": "{}", "traceparent": traceparent}
    )
    print(entry.decode())


if __name__ == "__main__":
    main()
