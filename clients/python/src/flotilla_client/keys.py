"""The Redis key names of one namespace, as docs/PROTOCOL.md lays them out."""

from __future__ import annotations

from dataclasses import dataclass

# The consumer group every worker reads the streams through.
CONSUMER_GROUP = "workers"

DEFAULT_NAMESPACE = "flotilla"

# The queue a job goes to, and is looked for in, when none is named.
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Keys:
    """Every key of a queue carries the hash tag `{<queue>}`, so a queue's keys share a
    Redis Cluster slot and one script may touch them all; fleet-wide keys share `{global}`."""

    namespace: str = DEFAULT_NAMESPACE

    def stream(self, queue: str) -> str:
        """The stream of jobs ready to run."""
        return f"{self.namespace}:{{{queue}}}:q"

    def job(self, queue: str, job_id: str) -> str:
        """A job's record."""
        return f"{self.namespace}:{{{queue}}}:job:{job_id}"

    def id_key(self, queue: str, job_id: str) -> str:
        """Where a job with an id of its own (or one retried, under its entry id) but no
        record is: the entry id of the stream entry carrying it while it waits or runs,
        or, while it waits in `later`, its state and the entry it becomes (binary), or
        `waiting` while it waits for its parents (protocol 2.19). Once the job completed
        the key is gone and `done_ids` remembers the id (a key written by protocol 2.7
        holds `done <done entry id>` until it expires)."""
        return f"{self.namespace}:{{{queue}}}:id:{job_id}"

    def delayed(self, queue: str) -> str:
        """Scheduled jobs and retries, scored by due time."""
        return f"{self.namespace}:{{{queue}}}:delayed"

    def grouped(self, queue: str) -> str:
        """How many jobs wait their group's turn (protocol 2.18): part of the depth."""
        return f"{self.namespace}:{{{queue}}}:grouped"

    def later(self, queue: str) -> str:
        """Ids of jobs waiting for their time or a retry without a record, scored by due
        time; each one's id key holds the job."""
        return f"{self.namespace}:{{{queue}}}:later"

    def done(self, queue: str) -> str:
        """Recent completions."""
        return f"{self.namespace}:{{{queue}}}:done"

    def done_ids(self, queue: str) -> str:
        """Ids of jobs that completed without a record (protocol 2.8), scored by when (ms):
        each one's completion is in `done` at or after that millisecond, so it is found
        without a search from the job's enqueue."""
        return f"{self.namespace}:{{{queue}}}:done_ids"

    def dead(self, queue: str) -> str:
        """The dead-letter stream."""
        return f"{self.namespace}:{{{queue}}}:dead"

    def deps(self, queue: str, job_id: str) -> str:
        """What a job that waits for other jobs waits for (protocol 2.19): a hash of `left`,
        `edges`, `blocked`, `type`, `created_at`, `job` (its enqueue arguments, packed), and
        per parent that ended `o:<queue> <id>` (how) and `r:<queue> <id>` (its result);
        kept a week once the job was let go, for its handler to read."""
        return f"{self.namespace}:{{{queue}}}:deps:{job_id}"

    def waiting(self, queue: str) -> str:
        """Ids of the queue's jobs waiting for their parents (protocol 2.19), scored by when
        they were created."""
        return f"{self.namespace}:{{{queue}}}:waiting"

    def batch(self, queue: str, batch_id: str) -> str:
        """A batch's counts, callbacks and dead jobs (protocol 2.19): a hash of `total`,
        `pending`, `completed`, `dead`, `ended`, `sealed`, `created_at`, `finished_at`,
        `cb:<kind>` and `done:<kind>` per callback, and `m:<queue> <id>` per dead job."""
        return f"{self.namespace}:{{{queue}}}:batch:{batch_id}"

    def unique(self, queue: str, unique_key: str) -> str:
        """The lock naming the job that holds a unique key."""
        return f"{self.namespace}:{{{queue}}}:unique:{unique_key}"

    def debounce(self, queue: str, debounce_key: str) -> str:
        """The id of the job that enqueues with this debounce key fold into while it waits."""
        return f"{self.namespace}:{{{queue}}}:debounce:{debounce_key}"

    def queues(self) -> str:
        """The set of known queue names, which operators' tools list."""
        return f"{self.namespace}:{{global}}:queues"

    def partitions(self) -> str:
        """Queue name -> its number of partitions, for partitioned queues."""
        return f"{self.namespace}:{{global}}:partitions"
