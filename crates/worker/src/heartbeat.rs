//! The worker's pulse: every interval it refreshes the entries of its running jobs (so no
//! reclaimer takes them, rule 4), learns which jobs were cancelled or lost, and records
//! itself in the worker registry.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use flotilla_proto::scripts::{self, Call};
use flotilla_proto::{CONSUMER_GROUP, Keys};
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::WorkerConfig;
use crate::inflight::{Attempt, InFlight};

pub(crate) struct Heartbeat {
    pub conn: ConnectionManager,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub worker_id: String,
    pub inflight: InFlight,
    pub started_at: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Heartbeat {
    /// Beats until `stop` is cancelled.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.beat().await {
                tracing::warn!("heartbeat failed (will retry): {e}");
            }
        }
    }

    pub(crate) async fn beat(&self) -> redis::RedisResult<()> {
        let mut by_queue: HashMap<String, Vec<Attempt>> = HashMap::new();
        for attempt in self.inflight.snapshot() {
            by_queue
                .entry(attempt.queue.clone())
                .or_default()
                .push(attempt);
        }
        let groups: Vec<(String, Vec<Attempt>)> = by_queue.into_iter().collect();
        let mut commands: Vec<redis::Cmd> = groups
            .iter()
            .map(|(queue, attempts)| {
                let mut call = Call::new(&scripts::HEARTBEAT)
                    .key(self.keys.stream(queue))
                    .arg(CONSUMER_GROUP)
                    .arg(&self.worker_id);
                for a in attempts {
                    call = call
                        .key(self.keys.job(queue, &a.job_id))
                        .arg(&a.entry_id)
                        .arg(&a.lease);
                }
                call.cmd()
            })
            .collect();
        commands.extend(self.registry_commands());
        let mut conn = self.conn.clone();
        let replies = scripts::exec_pipeline(&mut conn, &commands).await?;
        for ((queue, attempts), reply) in groups.iter().zip(replies) {
            let states: Vec<String> = match reply.and_then(|v| Ok(redis::from_redis_value(v)?)) {
                Ok(states) => states,
                Err(e) => {
                    tracing::warn!(queue = %queue, "heartbeat for running jobs failed: {e}");
                    continue;
                }
            };
            for (attempt, state) in attempts.iter().zip(states) {
                match state.as_str() {
                    "ok" => {}
                    "cancelled" => {
                        tracing::info!(job = %attempt.job_id, queue = %queue, "job cancelled: stopping its handler");
                        attempt.cancel.cancel();
                    }
                    "missing" => {
                        tracing::warn!(job = %attempt.job_id, queue = %queue,
                            "the job's record is gone (Redis restarted without its data, or the record was deleted); stopping");
                        attempt.cancel.cancel();
                    }
                    _ => {
                        tracing::warn!(job = %attempt.job_id, queue = %queue, "lease lost: another worker owns this job now; stopping");
                        attempt.cancel.cancel();
                    }
                }
            }
        }
        Ok(())
    }

    fn registry_commands(&self) -> Vec<redis::Cmd> {
        let queues: Vec<&str> = self.config.queues.iter().map(|q| q.name.as_str()).collect();
        let call = Call::new(&scripts::WORKER_BEAT)
            .key(self.keys.workers())
            .key(self.keys.worker(&self.worker_id))
            .arg(&self.worker_id)
            .arg(lease_ms(&self.config) * 2)
            .arg("id")
            .arg(&self.worker_id)
            .arg("host")
            .arg(flotilla_proto::host_name())
            .arg("pid")
            .arg(std::process::id())
            .arg("version")
            .arg(env!("CARGO_PKG_VERSION"))
            .arg(flotilla_proto::worker_field::QUEUES)
            .arg(queues.join(","))
            .arg("concurrency")
            .arg(self.config.concurrency)
            .arg("in_flight")
            .arg(self.inflight.len())
            .arg("started_at")
            .arg(self.started_at)
            // How long this worker's entries may go unrefreshed: the reconciler waits at
            // least this long before it calls the worker gone.
            .arg(flotilla_proto::worker_field::LEASE_MS)
            .arg(lease_ms(&self.config));
        vec![call.cmd()]
    }
}

fn lease_ms(config: &WorkerConfig) -> u64 {
    config.lease_ttl.as_millis() as u64
}

/// Removes this worker from the registry and, where it owns nothing, from the consumer
/// groups (deleting a consumer with pending entries would lose them, so those stay).
pub(crate) async fn deregister(
    conn: &mut ConnectionManager,
    keys: &Keys,
    config: &WorkerConfig,
    worker_id: &str,
) -> redis::RedisResult<()> {
    for queue in &config.queues {
        let forgotten: i64 = Call::new(&scripts::FORGET_CONSUMER)
            .key(keys.stream(&queue.name))
            .arg(CONSUMER_GROUP)
            .arg(worker_id)
            .invoke(conn)
            .await?;
        if forgotten == 0 {
            tracing::warn!(queue = %queue.name, "leaving entries pending for another worker to reclaim");
        }
    }
    let _: () = redis::pipe()
        .cmd("ZREM")
        .arg(keys.workers())
        .arg(worker_id)
        .ignore()
        .cmd("DEL")
        .arg(keys.worker(worker_id))
        .ignore()
        .query_async(conn)
        .await?;
    Ok(())
}
