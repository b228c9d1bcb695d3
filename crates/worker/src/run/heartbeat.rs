//! The worker's pulse: every interval it refreshes the entries of its running jobs (so no
//! reclaimer takes them, rule 4), learns which jobs were cancelled or lost, and records
//! itself in the worker registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{
    self, BeatReply, ForgetConsumer, Heartbeat as RefreshEntries, HeartbeatItem,
    Holds as HoldsCall, HoldsReply, ScriptCall, ScriptError, WorkerBeat, WorkerInfo,
};
use tokio_util::sync::CancellationToken;

use crate::WorkerConfig;
use crate::flow::Flow;
use crate::metrics::Outcome;
use crate::run::inflight::{Attempt, InFlight};

/// How long a heartbeat waits before stopping an attempt it found lost, so that one
/// whose outcome was being written at that moment is not stopped, nor warned about.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// How often a worker with jobs in flight reads the cancels counters of their queues:
/// when one moved, it beats at once, so a cancel reaches a running handler within a
/// second whatever the heartbeat interval, for one GET per queue.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) struct Heartbeat {
    pub conn: SharedConnection,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub worker_id: String,
    pub inflight: InFlight,
    pub started_at: u64,
    /// The capped queues' slots this worker holds, renewed with every beat.
    pub flow: Arc<Flow>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Heartbeat {
    /// Beats until `stop` is cancelled: every interval, and at once when a queue with
    /// jobs in flight had a running job cancelled.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cancel_check = tokio::time::interval(CANCEL_CHECK);
        cancel_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cancels_seen: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = cancel_check.tick() => {
                    if !self.cancels_moved(&mut cancels_seen).await {
                        continue;
                    }
                }
                // A hold of concurrency slots ended: stop the jobs under it now.
                () = self.flow.holds.lost.notified() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.beat().await {
                tracing::warn!("heartbeat failed (will retry): {e}");
            }
        }
    }

    /// Whether a queue of the jobs in flight had a running job cancelled since it was
    /// last looked at (or is looked at for the first time).
    async fn cancels_moved(&self, seen: &mut HashMap<String, u64>) -> bool {
        let mut queues: Vec<String> = self
            .inflight
            .snapshot()
            .into_iter()
            .map(|attempt| attempt.queue)
            .collect();
        if queues.is_empty() {
            return false;
        }
        queues.sort();
        queues.dedup();
        let mut conn = self.conn.clone();
        let counts =
            match flotilla_proto::consume::cancel_counts(&mut conn, &self.keys, &queues).await {
                Ok(counts) => counts,
                // The next heartbeat looks anyway.
                Err(_) => return false,
            };
        let mut moved = false;
        for (queue, count) in queues.into_iter().zip(counts) {
            moved |= seen.insert(queue, count) != Some(count);
        }
        moved
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
                RefreshEntries {
                    queue,
                    consumer: &self.worker_id,
                    items: attempts
                        .iter()
                        .map(|a| HeartbeatItem {
                            job_id: &a.job_id,
                            entry_id: &a.entry_id,
                            lease: &a.lease,
                            delivery: a.delivery(),
                        })
                        .collect(),
                }
                .call(&self.keys)
                .cmd()
            })
            .collect();
        let held_queues = self.flow.holds.held_queues();
        commands.extend(held_queues.iter().map(|queue| {
            HoldsCall {
                queue,
                worker: &self.worker_id,
                given_back: 0,
                lease: self.config.lease_ttl,
            }
            .call(&self.keys)
            .cmd()
        }));
        commands.push(self.registry_call());
        let mut conn = self.conn.clone();
        let mut replies = scripts::exec_pipeline(&mut conn, &commands).await?;
        let hold_replies = replies.split_off(groups.len());
        self.stop_over_cap(&held_queues, hold_replies);
        let mut to_stop = Vec::new();
        for ((queue, attempts), reply) in groups.iter().zip(replies) {
            let states = match RefreshEntries::parse_result(reply) {
                Ok(states) => states,
                Err(e) => {
                    tracing::warn!(queue = %queue, "heartbeat for running jobs failed: {e}");
                    continue;
                }
            };
            for (attempt, state) in attempts.iter().zip(states) {
                if state != BeatReply::Ok {
                    to_stop.push((queue.as_str(), attempt, state));
                }
            }
        }
        if !to_stop.is_empty() {
            // An attempt that finished while the heartbeat was on its way reads as
            // completed (lost) or already trimmed (missing): give its outcome's reply a
            // moment to be handled, and stop only the attempts still running after it.
            tokio::time::sleep(SETTLE).await;
        }
        for (queue, attempt, state) in to_stop {
            if !self.inflight.contains(&attempt.lease) {
                continue;
            }
            match state {
                BeatReply::Ok => {}
                BeatReply::Cancelled => {
                    tracing::info!(job = %attempt.job_id, queue = %queue, r#type = %attempt.job_type, attempt = attempt.number, "job cancelled: stopping its handler");
                    attempt.stop(Outcome::Cancelled);
                }
                BeatReply::Missing => {
                    tracing::warn!(job = %attempt.job_id, queue = %queue, r#type = %attempt.job_type, attempt = attempt.number,
                        "the job's record is gone (Redis restarted without its data, or the record was deleted); stopping");
                    attempt.stop(Outcome::Lost);
                }
                BeatReply::Gone => {
                    tracing::warn!(job = %attempt.job_id, queue = %queue, r#type = %attempt.job_type, attempt = attempt.number,
                        "lease lost: the job's entry was deleted from its stream while it ran (a worker that reclaimed it finished it, or it was deleted by hand); stopping");
                    attempt.stop(Outcome::Stale);
                }
                BeatReply::Lost => {
                    tracing::warn!(job = %attempt.job_id, queue = %queue, r#type = %attempt.job_type, attempt = attempt.number, "lease lost: another worker owns this job now; stopping");
                    attempt.stop(Outcome::Stale);
                }
            }
        }
        Ok(())
    }

    /// Takes the renewals' replies, then stops every attempt whose slot belongs to a hold
    /// that ended (found by a renewal, a give-back or an admission): this worker stopped
    /// beating for a lease (frozen, say), its slots went to others, and its jobs under
    /// that hold, reclaimed meanwhile, would run over the cap.
    fn stop_over_cap(
        &self,
        held_queues: &[String],
        replies: Vec<redis::RedisResult<redis::Value>>,
    ) {
        for (queue, reply) in held_queues.iter().zip(replies) {
            match HoldsCall::parse_result(reply) {
                Ok(HoldsReply::Holding(_)) => {}
                Ok(HoldsReply::Ended) => self.flow.holds.hold_ended(queue),
                Err(e) => tracing::warn!(queue = %queue, "could not renew concurrency slots: {e}"),
            }
        }
        for attempt in self.inflight.snapshot() {
            if attempt.slot.as_ref().is_some_and(|slot| !slot.is_current()) {
                tracing::warn!(job = %attempt.job_id, queue = %attempt.queue, r#type = %attempt.job_type,
                    "concurrency slot lost: this worker stopped beating for a lease and its slots went to others; stopping");
                attempt.stop(Outcome::Stale);
            }
        }
    }

    fn registry_call(&self) -> redis::Cmd {
        let queues: Vec<&str> = self.config.queues.iter().map(|q| q.name.as_str()).collect();
        let host = flotilla_proto::host_name();
        WorkerBeat {
            info: WorkerInfo {
                worker_id: &self.worker_id,
                host: &host,
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION"),
                queues: &queues,
                concurrency: self.config.concurrency,
                in_flight: self.inflight.len(),
                started_at_ms: self.started_at,
                lease_ms: lease_ms(&self.config),
            },
        }
        .call(&self.keys)
        .cmd()
    }
}

fn lease_ms(config: &WorkerConfig) -> u64 {
    config.lease_ttl.as_millis() as u64
}

/// Removes this worker from the registry and, where it owns nothing, from the consumer
/// groups (deleting a consumer with pending entries would lose them, so those stay).
pub(crate) async fn deregister(
    conn: &mut SharedConnection,
    keys: &Keys,
    streams: &[String],
    worker_id: &str,
) -> redis::RedisResult<()> {
    for queue in streams {
        let forget = ForgetConsumer {
            queue,
            consumer: worker_id,
        };
        let forgotten = scripts::run(conn, keys, &forget)
            .await
            .map_err(|e| match e {
                ScriptError::Redis(e) => e,
                other => redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "forget_consumer",
                    other.to_string(),
                )),
            })?;
        if !forgotten {
            tracing::warn!(queue = %queue, "leaving entries pending for another worker to reclaim");
        }
    }
    flotilla_proto::consume::leave_registry(conn, keys, worker_id).await?;
    Ok(())
}
