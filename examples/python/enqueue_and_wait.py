#!/usr/bin/env python3
# Enqueues one Flotilla job with plain Redis commands (redis-py, no client library) and waits for its result.
# Run: python3 examples/python/enqueue_and_wait.py [TYPE] [PAYLOAD_JSON]   (needs `pip install redis`)
#
# TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
# (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
# FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
# cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
# could not be reached or refused a command.
# The job gets an id of its own and is looked up by it as docs/PROTOCOL.md says: its record,
# when it has one, else its id key (which holds binary data while a retry waits: read it as
# bytes); once the job completed the key is gone and the queue's `done_ids` set says from
# which millisecond its completion is in `done`.
# The keys and fields are those of docs/PROTOCOL.md.
import os
import sys
import time
import uuid

import redis

TERMINAL = ("completed", "dead", "cancelled")

# `done` entries read per XRANGE while looking for a completion, and how many such reads at
# most: Flotilla's own readers look among 10 000 completions.
DONE_PAGE = 1000
DONE_PAGES = 10


def completion(r: redis.Redis, done_stream: str, job_id: str, since_ms: int) -> dict[bytes, bytes] | None:
    """The job's completion in `done`, at or after the millisecond its `done_ids` score
    names. An entry may hold several completions (a worker's batch), each a run of fields
    that begins with `id`, so entries are read as Redis sends them: redis-py's own reading
    makes a dict of an entry's fields, which keeps only the last `id`."""
    start = f"{since_ms}-0"
    for _ in range(DONE_PAGES):
        page = r.execute_command("XRANGE", done_stream, start, "+", "COUNT", DONE_PAGE)
        for _, flat in page:
            for fields in completions_of(flat):
                if fields.get(b"id") == job_id.encode():
                    return fields
        if len(page) < DONE_PAGE:
            return None
        start = "(" + page[-1][0].decode()  # exclusive: on past the last entry read
    return None


def completions_of(flat: list[bytes]) -> list[dict[bytes, bytes]]:
    """A `done` entry's completions: a new one starts at each `id` field."""
    completions: list[dict[bytes, bytes]] = []
    shared: dict[bytes, bytes] = {}  # fields before the first `id`: every completion's
    for name, value in zip(flat[0::2], flat[1::2]):
        if name == b"id":
            completions.append(dict(shared))
        (completions[-1] if completions else shared)[name] = value
    return completions if completions or not shared else [shared]


def main() -> int:
    job_type = sys.argv[1] if len(sys.argv) > 1 else "sleep"
    payload = sys.argv[2] if len(sys.argv) > 2 else '{"ms": 100}'
    url = os.environ.get("FLOTILLA_REDIS_URL", "redis://127.0.0.1:6379")
    queue = os.environ.get("FLOTILLA_QUEUE", "default")
    namespace = os.environ.get("FLOTILLA_NAMESPACE", "flotilla")
    wait_seconds = float(os.environ.get("FLOTILLA_WAIT_SECONDS", "30"))

    # Replies stay bytes: the id key of a job waiting for a retry holds binary data (below).
    r = redis.Redis.from_url(url)
    # `done` entries are read as Redis sends them (see `completion`).
    r.set_response_callback("XRANGE", lambda reply, **_: reply)
    # An id of our own lets us find the job by it; without one the job's id would be its
    # entry id, and its completion would have to be searched for in the queue's `done` stream.
    job_id = str(uuid.uuid4())
    r.sadd(f"{namespace}:{{global}}:queues", queue)
    r.xadd(f"{namespace}:{{{queue}}}:q", {"id": job_id, "type": job_type, "payload": payload})
    print(f"enqueued {job_type} job {job_id} on queue {queue}", file=sys.stderr)

    # Where the protocol keeps the job: its record, which leads whenever there is one (a job
    # gets one when it dies, or it is handed back, reports progress or is cancelled); else
    # its id key: the id of the stream entry carrying it while it is ready or runs,
    # `scheduled …` or `failed …` while it waits in `later` for its time or a retry (the
    # rest is the entry it becomes, packed with MessagePack). Once it completed the key is
    # gone and `done_ids` scores the id by the millisecond from which its completion, with
    # the result, is in `done` (a key a protocol 2.7 worker wrote says `done <entry id>`).
    record_key = f"{namespace}:{{{queue}}}:job:{job_id}"
    id_key = f"{namespace}:{{{queue}}}:id:{job_id}"
    done_ids = f"{namespace}:{{{queue}}}:done_ids"
    done_stream = f"{namespace}:{{{queue}}}:done"
    deadline = time.monotonic() + wait_seconds
    status = "pending"  # until a worker has read the entry, there is neither a record nor an id key
    while time.monotonic() < deadline:
        record = {k.decode(): v.decode("utf-8", "replace") for k, v in r.hgetall(record_key).items()}
        if record:
            status = record.get("status", status)
            if status == "completed":
                print(record.get("result") or "null")  # a handler that returns nothing leaves it empty
                return 0
            if status in TERMINAL:
                print(f"job {job_id} {status}: {record.get('error', '')}", file=sys.stderr)
                return 1
        else:
            held = r.get(id_key)
            state = None if held is None else held.partition(b" ")[0]
            if held is None:
                # No key: completed if `done_ids` has the id, else not yet read by a worker.
                since = r.zscore(done_ids, job_id)
                done = None if since is None else completion(r, done_stream, job_id, int(since))
                if done is not None:
                    print((done.get(b"result") or b"null").decode())
                    return 0
            elif state == b"done":
                done_id = held.removeprefix(b"done ")
                # A key written by protocol 2.7 names an entry holding one completion.
                for _, flat in r.execute_command("XRANGE", done_stream, done_id, done_id):
                    print((completions_of(flat)[0].get(b"result") or b"null").decode())
                    return 0
            elif state in (b"scheduled", b"failed"):
                status = "failed, its retry waiting" if state == b"failed" else "scheduled"
            elif held is not None:
                status = "pending or running"  # its entry waits on the stream, or a worker has it
        time.sleep(0.1)
    print(f"job {job_id} still {status} after {wait_seconds:g} s", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
