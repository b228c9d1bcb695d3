"""A partitioned queue through the client: jobs spread as the protocol places them, and are found by the queue's name."""

from __future__ import annotations

import pytest
import redis

from flotilla_client import Client, InvalidJob, Unique
from flotilla_client.partitions import partition_for


def test_jobs_spread_over_the_partitions_and_are_found_by_the_queues_name(
    client: Client, connection: redis.Redis, idle_queue: str
) -> None:
    connection.hset(client.keys.partitions(), idle_queue, 4)
    try:
        partitions = [idle_queue, *(f"{idle_queue}#{k}" for k in range(1, 4))]

        # A job without an id gets one (entry ids are per stream, so two partitions could
        # hand out the same), and goes where FNV-1a of it says: its id key is there, naming
        # its entry (a job to run now with an id has no record).
        fast = [client.enqueue("noop", {"i": i}, queue=idle_queue) for i in range(40)]
        for job_id in fast:
            partition = partitions[partition_for(job_id, 4)]
            entry = connection.get(client.keys.id_key(partition, job_id))
            assert entry is not None, job_id
            assert connection.xrange(client.keys.stream(partition), entry, entry), job_id
            assert not connection.exists(client.keys.job(partition, job_id)), job_id
        assert len({partition_for(job_id, 4) for job_id in fast}) > 1
        lengths = [connection.xlen(client.keys.stream(p)) for p in partitions]

        # A job with an id goes where FNV-1a of the id says (0x657aba5f % 4 = 3), and so
        # does its second enqueue, which meets the id key there and adds nothing.
        assert client.enqueue("noop", queue=idle_queue, id="report-7") == "report-7"
        assert client.enqueue("noop", queue=idle_queue, id="report-7") == "report-7"
        assert connection.exists(client.keys.id_key(f"{idle_queue}#3", "report-7"))
        assert connection.xlen(client.keys.stream(f"{idle_queue}#3")) == lengths[3] + 1

        # A unique key places its job by the key (0xf5537974 % 4 = 0), whatever the id.
        first = client.enqueue_unique("user-1", "noop", queue=idle_queue)
        again = client.enqueue_unique("user-1", "noop", queue=idle_queue)
        assert again == Unique(id=first.id, created=False)
        assert connection.exists(client.keys.unique(idle_queue, "user-1"))

        # Each is found by the queue's name, and reports the partition it is in.
        for job_id in [*fast, "report-7", first.id]:
            found = client.status(job_id, idle_queue)
            assert found is not None and found.status == "pending", job_id
            assert found.queue in partitions
        found = client.status("report-7", idle_queue)
        assert found is not None and found.queue == f"{idle_queue}#3"

        # A partition named directly is used when the queue has it, refused past the count.
        client.enqueue("noop", queue=f"{idle_queue}#2")
        assert connection.xlen(client.keys.stream(f"{idle_queue}#2")) == lengths[2] + 1
        with pytest.raises(InvalidJob, match="partition 4"):
            client.enqueue("noop", queue=f"{idle_queue}#4")
        assert connection.xlen(client.keys.stream(f"{idle_queue}#4")) == 0
    finally:
        connection.hdel(client.keys.partitions(), idle_queue)
        for k in range(1, 5):
            for key in connection.scan_iter(match=f"flotilla:{{{idle_queue}#{k}}}:*"):
                connection.delete(key)
            connection.srem(client.keys.queues(), f"{idle_queue}#{k}")
