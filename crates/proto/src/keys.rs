//! Redis key builders. Every queue key carries the `{<queue>}` hash tag and every
//! fleet-wide key the `{global}` tag, so one script always touches one cluster slot.

use crate::Status;

/// The consumer group every worker reads a queue's stream through.
pub const CONSUMER_GROUP: &str = "workers";

/// The namespace keys live under unless the settings say otherwise.
pub const DEFAULT_NAMESPACE: &str = "flotilla";

/// Builds key names under one namespace (default `flotilla`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    namespace: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE)
    }
}

impl Keys {
    /// Key names under `namespace`, the first part of every key.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }

    /// The namespace every key starts with.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn queue_key(&self, queue: &str, rest: &str) -> String {
        format!("{}:{{{queue}}}:{rest}", self.namespace)
    }

    fn global_key(&self, rest: &str) -> String {
        format!("{}:{{global}}:{rest}", self.namespace)
    }

    /// The stream of jobs ready to run.
    pub fn stream(&self, queue: &str) -> String {
        self.queue_key(queue, "q")
    }

    /// One job's record (a hash).
    pub fn job(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("job:{id}"))
    }

    /// The prefix of every job record of a queue; a script appends the id.
    pub fn job_prefix(&self, queue: &str) -> String {
        self.queue_key(queue, "job:")
    }

    /// The id key of a job that lives without a record and has an id of its own or was
    /// retried: the entry id while it waits or runs, `scheduled …` or `failed …` (its
    /// entry to be) while it waits in `later`; gone once it completed (`done_ids` then
    /// remembers the id; a key a 2.7 worker wrote holds `done <done entry id>` until it
    /// expires). Remembering the id, it keeps the same id from being enqueued twice.
    pub fn id_key(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("id:{id}"))
    }

    /// Jobs with a record waiting for a time (unique scheduled jobs, retries of jobs with
    /// records), scored by due time in ms.
    pub fn delayed(&self, queue: &str) -> String {
        self.queue_key(queue, "delayed")
    }

    /// Jobs waiting for a time without a record (protocol 2.7): their ids scored by due
    /// time in ms, each one's id key holding the entry it becomes once due.
    pub fn later(&self, queue: &str) -> String {
        self.queue_key(queue, "later")
    }

    /// The most recent completions (protocol 2): one entry per completed job, trimmed by
    /// count and age.
    pub fn done(&self, queue: &str) -> String {
        self.queue_key(queue, "done")
    }

    /// How many running jobs of the queue have been cancelled (a counter): a worker
    /// with jobs in flight reads it often, and looks at once whether one of its own was.
    pub fn cancels(&self, queue: &str) -> String {
        self.queue_key(queue, "cancels")
    }

    /// The dead-letter stream.
    pub fn dead(&self, queue: &str) -> String {
        self.queue_key(queue, "dead")
    }

    /// Ids of jobs that completed without a record (protocol 2.8), scored by when (ms):
    /// each one's completion is in `done` at or after that time.
    pub fn done_ids(&self, queue: &str) -> String {
        self.queue_key(queue, "done_ids")
    }

    /// One element per `done` entry a worker wrote (protocol 2.11), oldest first:
    /// `<entry id> <completions it holds>`, so that trimming by count need not read them.
    pub fn done_sizes(&self, queue: &str) -> String {
        self.queue_key(queue, "done_sizes")
    }

    /// How many completions `done` holds in the entries `done_sizes` names (`kept`), and
    /// how many were written beyond one per entry (`extra`: `done`'s `entries-added` plus
    /// it is every completion ever written).
    pub fn done_count(&self, queue: &str) -> String {
        self.queue_key(queue, "done_count")
    }

    /// Recent ids of one status, scored by time in ms.
    pub fn index(&self, queue: &str, status: Status) -> String {
        self.queue_key(queue, &format!("idx:{}", status.as_str()))
    }

    /// The de-duplication lock of a unique job.
    pub fn unique(&self, queue: &str, unique_key: &str) -> String {
        self.queue_key(queue, &format!("unique:{unique_key}"))
    }

    /// A debounce key: the id of the job that jobs enqueued with this key fold into
    /// while it waits for its first run (protocol 2.14).
    pub fn debounce(&self, queue: &str, debounce_key: &str) -> String {
        self.queue_key(queue, &format!("debounce:{debounce_key}"))
    }

    /// A rate-limited queue's GCRA state: the µs on the server's clock when its next job
    /// may start with no burst left (expires once that time has passed by a burst).
    pub fn rate(&self, queue: &str) -> String {
        self.queue_key(queue, "rate")
    }

    /// A concurrency-capped queue's holders: worker id → when its hold's lease ends, ms on
    /// the server's clock (renewed by its heartbeat, like its entries).
    pub fn holders(&self, queue: &str) -> String {
        self.queue_key(queue, "holders")
    }

    /// A concurrency-capped queue's held slots: worker id → how many it holds.
    pub fn holds(&self, queue: &str) -> String {
        self.queue_key(queue, "holds")
    }

    /// A queue's limit on each of its groups (protocol 2.17): `concurrency` → how many jobs
    /// of one group may be let through to its stream at once; `rate_spacing_us` and
    /// `rate_burst` (2.18) → how fast.
    pub fn group_limit(&self, queue: &str) -> String {
        self.queue_key(queue, "group_limit")
    }

    /// The groups of a queue that have jobs waiting their turn, by when a promote pass
    /// should look at them next.
    pub fn groups(&self, queue: &str) -> String {
        self.queue_key(queue, "groups")
    }

    /// The ids of a group's jobs waiting their turn, oldest first.
    pub fn group_line(&self, queue: &str, group: &str) -> String {
        self.queue_key(queue, &format!("group:{group}"))
    }

    /// The ids of a group's jobs let through and not yet ended.
    pub fn group_flight(&self, queue: &str, group: &str) -> String {
        self.queue_key(queue, &format!("group_flight:{group}"))
    }

    /// How many jobs of a queue wait their group's turn, over all its groups' lines
    /// (protocol 2.18): counted into its depth.
    pub fn grouped(&self, queue: &str) -> String {
        self.queue_key(queue, "grouped")
    }

    /// What a job waiting for its parents waits for (protocol 2.19, a hash): `left`,
    /// `edges`, `blocked`, its packed enqueue arguments, and per parent `o:<queue> <id>`
    /// (how it ended) and `r:<queue> <id>` (its result); kept a while after the job was
    /// let go, for its handler to read.
    pub fn deps(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("deps:{id}"))
    }

    /// Jobs of a queue waiting for their parents (protocol 2.19): ids scored by when
    /// they were created.
    pub fn waiting(&self, queue: &str) -> String {
        self.queue_key(queue, "waiting")
    }

    /// The edges from a job to the jobs waiting for it (protocol 2.19, a list of
    /// `<policy> <child's queue> <child's id>`).
    pub fn hook(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("hook:{id}"))
    }

    /// A named flow's jobs, `<queue> <id>` each (protocol 2.19, a list kept a week).
    pub fn flow(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("flow:{id}"))
    }

    /// A batch's counts and callbacks (protocol 2.19, a hash).
    pub fn batch(&self, queue: &str, id: &str) -> String {
        self.queue_key(queue, &format!("batch:{id}"))
    }

    /// Ids of a queue's jobs that other jobs wait for (protocol 2.19).
    pub fn hooked(&self, queue: &str) -> String {
        self.queue_key(queue, "hooked")
    }

    /// A group's rate state (protocol 2.18): when its next turn would be due with no burst
    /// left, µs since the epoch; expires once spent.
    pub fn group_rate(&self, queue: &str, group: &str) -> String {
        self.queue_key(queue, &format!("group_rate:{group}"))
    }

    /// A queue's tallies of one hour (hours since the Unix epoch): kind → count, and
    /// `<kind>:<minute of the hour>` → count (see `tally`).
    pub fn tally(&self, queue: &str, hour: u64) -> String {
        self.queue_key(queue, &format!("tally:{hour}"))
    }

    /// Flow limits: queue name → its limit in the written form of `flow::QueueLimit`.
    pub fn limits(&self) -> String {
        self.global_key("limits")
    }

    /// The set of known queue names.
    pub fn queues(&self) -> String {
        self.global_key("queues")
    }

    /// Partition counts of partitioned queues: queue name → count (a queue missing here
    /// has one partition, itself).
    pub fn partitions(&self) -> String {
        self.global_key("partitions")
    }

    /// The set of paused queue names.
    pub fn paused(&self) -> String {
        self.global_key("paused")
    }

    /// Live workers, scored by last heartbeat in ms.
    pub fn workers(&self) -> String {
        self.global_key("workers")
    }

    /// One worker's details (a hash that expires when the worker stops beating).
    pub fn worker(&self, id: &str) -> String {
        self.global_key(&format!("worker:{id}"))
    }

    /// The scheduler's leader lease.
    pub fn leader(&self) -> String {
        self.global_key("leader")
    }

    /// The scheduler's fencing epoch.
    pub fn fence(&self) -> String {
        self.global_key("fence")
    }

    /// Schedule definitions.
    pub fn schedules(&self) -> String {
        self.global_key("schedules")
    }

    /// One schedule's state (last and next tick, last job).
    pub fn schedule(&self, name: &str) -> String {
        self.global_key(&format!("schedule:{name}"))
    }

    /// Alert history: one entry per raise and per resolve.
    pub fn alerts(&self) -> String {
        self.global_key("alerts")
    }

    /// Alerts raised and not yet resolved, by `kind:subject`.
    pub fn active_alerts(&self) -> String {
        self.global_key("alerts:active")
    }

    /// Jobs lost from their streams (entries deleted while pending), reported by workers.
    pub fn lost(&self) -> String {
        self.global_key("lost")
    }
}

/// `text` with the characters a glob pattern gives meaning to escaped.
pub(crate) fn glob_escaped(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = matches!(c, '*' | '?' | '[' | ']' | '\\');
            special.then_some('\\').into_iter().chain(Some(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_share_one_hash_tag() {
        let keys = Keys::new("ns");
        for key in [
            keys.stream("mail"),
            keys.job("mail", "abc"),
            keys.delayed("mail"),
            keys.dead("mail"),
            keys.done("mail"),
            keys.done_ids("mail"),
            keys.done_sizes("mail"),
            keys.done_count("mail"),
            keys.later("mail"),
            keys.index("mail", Status::Completed),
            keys.unique("mail", "u1"),
        ] {
            assert!(key.starts_with("ns:{mail}:"), "{key}");
        }
        assert_eq!(keys.workers(), "ns:{global}:workers");
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escaped("ab*"), "ab\\*");
        assert_eq!(glob_escaped("a[b]?\\"), "a\\[b\\]\\?\\\\");
    }
}
