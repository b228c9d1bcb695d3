"""Which partition of its queue a job goes to, by the rule of docs/PROTOCOL.md
("Partitioned queues"): by its group, else its unique key, else its debounce key, else its id."""

from __future__ import annotations

import re
import threading
import time

from redis import Redis

from .errors import InvalidJob
from .keys import Keys

# How long a queue's partition count is used before it is read again: a raised count
# is taken up within this long, as the Rust producer does.
COUNT_TTL_SECONDS = 10.0

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193

# Most partitions a queue may have.
MAX_PARTITIONS = 1024

_COUNT = re.compile(r"[0-9]{1,4}")

# `<queue>#<k>` names partition k (1-1023) of a queue.
_PARTITION_NAME = re.compile(r"^(?P<queue>.+)#(?P<index>[1-9][0-9]{0,3})$")


def fnv1a(key: str) -> int:
    """FNV-1a, 32 bits, of the key's UTF-8 bytes."""
    hashed = _FNV_OFFSET
    for byte in key.encode("utf-8"):
        hashed = ((hashed ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return hashed


def parse_count(stored: object) -> int:
    """A stored partition count: digits only, 1-1024; anything else reads as 1, as workers
    read it, so no job goes where no worker reads."""
    text = stored.decode("ascii", "replace") if isinstance(stored, bytes) else stored
    if not isinstance(text, str) or _COUNT.fullmatch(text) is None:
        return 1
    count = int(text)
    return count if 1 <= count <= MAX_PARTITIONS else 1


def partition_for(key: str, count: int) -> int:
    """The partition a group, a key or an id places its job in, of `count`."""
    return fnv1a(key) % count if count > 1 else 0


def partition_name(queue: str, index: int) -> str:
    """Partition 0 is the queue itself; partition k is `<queue>#<k>`."""
    return queue if index == 0 else f"{queue}#{index}"


def split_partition(name: str) -> tuple[str, int]:
    """The queue a partition belongs to, and its number (0 for the queue's own name)."""
    named = _PARTITION_NAME.match(name)
    if named is None or int(named["index"]) >= MAX_PARTITIONS:
        return name, 0
    return named["queue"], int(named["index"])


class Placement:
    """Partition counts as last read, each for ten seconds. Safe to share between
    threads."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def count(self, queue: str) -> int:
        """How many partitions `queue` has: 1 unless raised."""
        now = time.monotonic()
        with self._lock:
            cached = self._counts.get(queue)
        if cached is not None and now - cached[1] < COUNT_TTL_SECONDS:
            return cached[0]
        count = parse_count(self._redis.hget(self._keys.partitions(), queue))
        with self._lock:
            self._counts[queue] = (count, now)
        return count

    def is_split(self, queue: str) -> bool:
        """Whether `queue` names a queue of several partitions (not one partition)."""
        return split_partition(queue)[1] == 0 and self.count(queue) > 1

    def place(self, queue: str, key: str | None) -> str:
        """The partition of `queue` a job goes to: by `key` (its group, unique or debounce
        key, or id); a job without one (only a fast-path job, which the client sends to a
        queue of one partition) stays in the queue itself. A partition's own name stays as
        it is when the queue has that partition; past the count it is refused, since no
        worker reads it."""
        logical, named = split_partition(queue)
        count = self.count(logical)
        if named:
            if named >= count:
                raise InvalidJob("queue", f"partition {named} of {logical}, which has {count}: no worker would read it", queue)
            return queue
        if count <= 1:
            return queue
        return partition_name(queue, partition_for(key, count) if key is not None else 0)

    def candidates(self, queue: str, job_id: str) -> list[str]:
        """Every partition a job of `queue` may be in, the one its id places it in first."""
        if split_partition(queue)[1]:
            return [queue]
        count = self.count(queue)
        first = partition_for(job_id, count)
        return [partition_name(queue, i) for i in [first, *(i for i in range(count) if i != first)]]
