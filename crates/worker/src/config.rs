//! Worker settings: plain, validated values with no I/O. The `[worker]` section of the
//! settings file deserializes straight into [`WorkerConfig`]; tests build it directly.

use std::time::Duration;

use flotilla_proto::{DEFAULT_NAMESPACE, JobPolicy};
use serde::Deserialize;

/// A queue and its share of fetches under weighted priority.
/// A queue a worker serves, and its share of the worker's reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueWeight {
    /// The queue's name.
    pub name: String,
    /// Its weight: a queue of weight 3 is read three times as often as one of weight 1
    /// while both have work.
    pub weight: u32,
    /// The partitions this worker makes sure the queue has (1: unpartitioned). The fleet
    /// keeps the highest count any worker or operator set, and every worker reads all.
    pub partitions: u16,
}

impl QueueWeight {
    /// Queue `name`, unpartitioned, with `weight`.
    pub fn new(name: &str, weight: u32) -> Self {
        Self {
            name: name.to_owned(),
            weight,
            partitions: 1,
        }
    }

    /// The same queue split into `count` partitions.
    pub fn partitioned(mut self, count: u16) -> Self {
        self.partitions = count;
        self
    }

    /// The queues a worker serves when the settings name none.
    pub fn defaults() -> Vec<QueueWeight> {
        vec![
            QueueWeight::new("critical", 6),
            QueueWeight::new("default", 3),
            QueueWeight::new("low", 1),
        ]
    }
}

/// Everything a worker needs to know besides its handlers and its Redis URL.
///
/// The namespace, the queues and the job policy have sections of their own in the
/// settings file, so the `[worker]` section leaves them out.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Key namespace (default `flotilla`).
    #[serde(skip)]
    pub namespace: String,
    /// Queues served, with weights (default critical 6, default 3, low 1).
    #[serde(skip)]
    pub queues: Vec<QueueWeight>,
    /// Serve queues strictly by weight, highest first, instead of by weighted lottery.
    pub strict_priority: bool,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// Entries this worker may fetch ahead of a free slot while its handlers finish
    /// quickly (default: [`DEFAULT_PREFETCH`] or `concurrency`, whichever is larger; 0
    /// turns it off). A slot that frees then starts its next job at once instead of a
    /// round trip to Redis later; while handlers run long, nothing is fetched ahead, so
    /// idle workers get the work.
    pub prefetch: Option<usize>,
    /// How long running jobs may go on after SIGTERM before they are handed back.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often the worker proves it is alive and refreshes its jobs' entries.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long an entry may go unrefreshed before another worker may reclaim it. Must be
    /// several heartbeats long.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long a blocking read waits before checking for shutdown again.
    #[serde(with = "humantime_serde")]
    pub block_time: Duration,
    /// How often due delayed jobs are promoted (workers do it too, so retries never wait
    /// on a scheduler).
    #[serde(with = "humantime_serde")]
    pub promote_interval: Duration,
    /// Limits, retention and defaults for the jobs this worker runs.
    #[serde(skip)]
    pub jobs: JobPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            queues: QueueWeight::defaults(),
            strict_priority: false,
            concurrency: 10,
            prefetch: None,
            shutdown_grace: Duration::from_secs(25),
            heartbeat_interval: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
            block_time: Duration::from_secs(2),
            promote_interval: Duration::from_millis(250),
            jobs: JobPolicy::default(),
        }
    }
}

/// The most entries a worker may fetch ahead of its free slots.
pub const MAX_PREFETCH: usize = 1024;

/// Entries fetched ahead by default, however few the slots: enough to keep a worker busy
/// through a read's round trip when its handlers take microseconds.
pub const DEFAULT_PREFETCH: usize = 64;

impl WorkerConfig {
    /// Entries fetched ahead of a free slot at most: `prefetch`, or when unset the larger
    /// of [`DEFAULT_PREFETCH`] and `concurrency`.
    pub fn prefetch_limit(&self) -> usize {
        self.prefetch
            .unwrap_or(self.concurrency.max(DEFAULT_PREFETCH))
            .min(MAX_PREFETCH)
    }

    /// Checks each setting and the relations between them; the message names the
    /// settings key to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.queues.is_empty() {
            return Err("queues: at least one queue is needed".into());
        }
        // Names become parts of key names (a brace would break the hash tag) and of log
        // lines (a control character could forge one).
        flotilla_proto::check_name("namespace", &self.namespace).map_err(|_| {
            format!(
                "namespace: {:?} is not a name: expected {}",
                self.namespace,
                flotilla_proto::NAME_RULE
            )
        })?;
        if let Some(q) = self
            .queues
            .iter()
            .find(|q| flotilla_proto::check_name("queue", &q.name).is_err())
        {
            return Err(format!(
                "queues: {:?} is not a queue name: expected {}",
                q.name,
                flotilla_proto::NAME_RULE
            ));
        }
        if let Some(q) = self.queues.iter().find(|q| q.weight == 0) {
            return Err(format!("queues: weight of {:?} must be at least 1", q.name));
        }
        if let Some(q) = self
            .queues
            .iter()
            .find(|q| flotilla_proto::split_partition(&q.name).1 != 0)
        {
            return Err(format!(
                "queues: {:?} names a partition; name the queue, and set its partitions under [partitions]",
                q.name
            ));
        }
        if let Some(q) = self
            .queues
            .iter()
            .find(|q| flotilla_proto::check_partitions(u64::from(q.partitions)).is_err())
        {
            return Err(format!(
                "partitions: {:?} must be {}",
                q.name,
                flotilla_proto::partition::PARTITIONS_RULE
            ));
        }
        if self.concurrency == 0 {
            return Err("worker.concurrency: must be at least 1".into());
        }
        if self.prefetch.is_some_and(|n| n > MAX_PREFETCH) {
            return Err(format!(
                "worker.prefetch: must be between 0 and {MAX_PREFETCH}"
            ));
        }
        if self.lease_ttl < self.heartbeat_interval * 3 {
            return Err(format!(
                "worker.lease_ttl: {:?} must be at least three heartbeat intervals ({:?})",
                self.lease_ttl,
                self.heartbeat_interval * 3
            ));
        }
        if self.block_time.is_zero() || self.block_time > Duration::from_secs(10) {
            return Err("worker.block_time: must be between 1ms and 10s".into());
        }
        self.jobs.check()
    }
}
