//! Worker settings: plain, validated values with no I/O. The binary builds them from its
//! TOML file and environment; tests build them directly.

use std::time::Duration;

use flotilla_proto::Backoff;

/// A queue and its share of fetches under weighted priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueWeight {
    pub name: String,
    pub weight: u32,
}

impl QueueWeight {
    pub fn new(name: &str, weight: u32) -> Self {
        Self {
            name: name.to_owned(),
            weight,
        }
    }
}

/// Everything a worker needs to know besides its handlers and its Redis URL.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Key namespace (default `flotilla`).
    pub namespace: String,
    /// Queues served, with weights (default critical 6, default 3, low 1).
    pub queues: Vec<QueueWeight>,
    /// Serve queues strictly by weight, highest first, instead of by weighted lottery.
    pub strict_priority: bool,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// How long running jobs may go on after SIGTERM before they are handed back.
    pub shutdown_grace: Duration,
    /// How often the worker proves it is alive and refreshes its jobs' entries.
    pub heartbeat_interval: Duration,
    /// How long an entry may go unrefreshed before another worker may reclaim it. Must be
    /// several heartbeats long.
    pub lease_ttl: Duration,
    /// How long a blocking read waits before checking for shutdown again.
    pub block_time: Duration,
    /// How often due delayed jobs are promoted (workers do it too, so retries never wait
    /// on a scheduler).
    pub promote_interval: Duration,
    /// Largest payload accepted; bigger ones go to the dead-letter queue.
    pub max_payload_bytes: usize,
    /// Largest result kept, in bytes of JSON; a bigger one fails its attempt for good.
    pub max_result_bytes: usize,
    /// How long completed and cancelled records are kept.
    pub retention: Duration,
    /// How long dead records are kept.
    pub dead_retention: Duration,
    /// Entries kept in each dead-letter stream (approximate, oldest dropped first).
    pub dead_max_len: u64,
    /// Attempts and timeout for entries XADDed without them.
    pub default_max_attempts: u32,
    pub default_timeout: Duration,
    pub default_backoff: Backoff,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            namespace: "flotilla".to_owned(),
            queues: vec![
                QueueWeight::new("critical", 6),
                QueueWeight::new("default", 3),
                QueueWeight::new("low", 1),
            ],
            strict_priority: false,
            concurrency: 10,
            shutdown_grace: Duration::from_secs(25),
            heartbeat_interval: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
            block_time: Duration::from_secs(2),
            promote_interval: Duration::from_millis(250),
            max_payload_bytes: 512 * 1024,
            max_result_bytes: 64 * 1024,
            retention: Duration::from_secs(24 * 3600),
            dead_retention: Duration::from_secs(30 * 24 * 3600),
            dead_max_len: 10_000,
            default_max_attempts: 3,
            default_timeout: Duration::from_secs(30 * 60),
            default_backoff: Backoff::default(),
        }
    }
}

impl WorkerConfig {
    /// Checks the relations between settings; the message names the setting to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.queues.is_empty() {
            return Err("queues: at least one queue is needed".into());
        }
        if let Some(q) = self.queues.iter().find(|q| q.weight == 0) {
            return Err(format!("queues: weight of {:?} must be at least 1", q.name));
        }
        if self.concurrency == 0 {
            return Err("concurrency: must be at least 1".into());
        }
        if self.lease_ttl < self.heartbeat_interval * 3 {
            return Err(format!(
                "lease_ttl: {:?} must be at least three heartbeat intervals ({:?})",
                self.lease_ttl,
                self.heartbeat_interval * 3
            ));
        }
        if self.block_time.is_zero() || self.block_time > Duration::from_secs(10) {
            return Err("block_time: must be between 1ms and 10s".into());
        }
        if self.default_max_attempts == 0
            || self.default_max_attempts > flotilla_proto::MAX_ATTEMPTS
        {
            return Err(format!(
                "default_max_attempts: expected {}",
                flotilla_proto::MAX_ATTEMPTS_RULE
            ));
        }
        if self.default_timeout.is_zero() {
            return Err("default_timeout: expected a duration of at least 1ms".into());
        }
        if self.max_payload_bytes == 0 || self.max_result_bytes == 0 {
            return Err(
                "max_payload_bytes and max_result_bytes: expected at least 1 byte (0 would refuse every payload or result)"
                    .into(),
            );
        }
        if self.retention.is_zero() || self.dead_retention.is_zero() {
            return Err(
                "retention: expected at least 1s (finished records are kept for this long, then expire)"
                    .into(),
            );
        }
        Ok(())
    }
}
