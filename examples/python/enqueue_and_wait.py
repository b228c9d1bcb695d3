#!/usr/bin/env python3
# Enqueues one Flotilla job with plain Redis commands (redis-py, no client library) and waits for its result.
# Run: python3 examples/python/enqueue_and_wait.py [TYPE] [PAYLOAD_JSON]   (needs `pip install redis`)
#
# TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
# (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
# FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
# cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
# could not be reached or refused a command.
# The keys and fields are those of docs/PROTOCOL.md.
import os
import sys
import time
import uuid

import redis

TERMINAL = ("completed", "dead", "cancelled")


def main() -> int:
    job_type = sys.argv[1] if len(sys.argv) > 1 else "sleep"
    payload = sys.argv[2] if len(sys.argv) > 2 else '{"ms": 100}'
    url = os.environ.get("FLOTILLA_REDIS_URL", "redis://127.0.0.1:6379")
    queue = os.environ.get("FLOTILLA_QUEUE", "default")
    namespace = os.environ.get("FLOTILLA_NAMESPACE", "flotilla")
    wait_seconds = float(os.environ.get("FLOTILLA_WAIT_SECONDS", "30"))

    r = redis.Redis.from_url(url, decode_responses=True)
    # An id of our own gives the job a record we can poll; without one the job would take
    # the fast path and leave only an entry in the queue's `done` stream.
    job_id = str(uuid.uuid4())
    r.sadd(f"{namespace}:{{global}}:queues", queue)
    r.xadd(f"{namespace}:{{{queue}}}:q", {"id": job_id, "type": job_type, "payload": payload})
    print(f"enqueued {job_type} job {job_id} on queue {queue}", file=sys.stderr)

    record_key = f"{namespace}:{{{queue}}}:job:{job_id}"
    deadline = time.monotonic() + wait_seconds
    status = "pending"  # until a worker has read the entry, there is no record yet
    while time.monotonic() < deadline:
        record = r.hgetall(record_key)
        status = record.get("status", status)
        if status == "completed":
            print(record.get("result") or "null")  # a handler that returns nothing leaves it empty
            return 0
        if status in TERMINAL:
            print(f"job {job_id} {status}: {record.get('error', '')}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"job {job_id} still {status} after {wait_seconds:g} s", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
