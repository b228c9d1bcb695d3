//! The worker's promoter: moves due delayed jobs and retries onto their streams, and keeps
//! the paused set, the flow limits and partition counts fresh. It wakes every promote interval, and sooner
//! when a job is due sooner: when the last promotion saw one due before the next tick, or
//! when this worker just scheduled a retry, so that a retry a few milliseconds away does
//! not wait a whole interval.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fetch::reads as fetch;
use crate::fetch::served::Served;
use crate::flow::Flow;

/// Due delayed jobs moved per queue per promotion pass.
const PROMOTE_BATCH: usize = 1000;
/// Promotion calls one pass makes at most while they come back full.
const MAX_PROMOTE_ROUNDS: usize = 20;
/// The shortest time between two passes woken by a due job: a busy stream of jobs due
/// one after another costs each worker at most a hundred passes a second, and a job due
/// "now" never makes the promoter spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// When a part of the worker (its outcome writer) knows a job is due: the promoter wakes
/// then if that is before its next pass.
#[derive(Debug, Default)]
pub(crate) struct PromoteWake {
    earliest: Mutex<Option<Instant>>,
    notify: Notify,
}

impl PromoteWake {
    /// Asks for a pass at `at` at the latest.
    pub(crate) fn at(&self, at: Instant) {
        let mut earliest = self.earliest.lock().unwrap_or_else(|p| p.into_inner());
        if earliest.is_none_or(|e| at < e) {
            *earliest = Some(at);
            drop(earliest);
            self.notify.notify_one();
        }
    }

    /// The earliest pass asked for, forgotten once read.
    fn take(&self) -> Option<Instant> {
        self.earliest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The promoter's connection and the state it refreshes.
pub(crate) struct Promoter {
    pub conn: SharedConnection,
    pub keys: Keys,
    pub interval: Duration,
    pub served: Arc<Served>,
    pub paused: Arc<RwLock<HashSet<String>>>,
    pub flow: Arc<Flow>,
    pub wake: Arc<PromoteWake>,
}

impl Promoter {
    /// Runs passes until `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut counts_read_at = std::time::Instant::now();
        let mut ticked_at = Instant::now();
        let mut next_pass = Instant::now();
        let mut last_pass = Instant::now();
        loop {
            // Wait for the next pass, or an earlier one asked for meanwhile (never sooner
            // than MIN_PAUSE after the last).
            loop {
                if let Some(asked) = self.wake.take() {
                    next_pass = next_pass.min(asked.max(last_pass + MIN_PAUSE));
                }
                tokio::select! {
                    () = tokio::time::sleep_until(next_pass) => break,
                    () = self.wake.notify.notified() => {}
                    () = stop.cancelled() => return,
                }
            }
            let due_in = self.promote().await;
            let now = Instant::now();
            last_pass = now;
            if now >= ticked_at + self.interval {
                ticked_at = now;
                self.refresh_paused().await;
                if counts_read_at.elapsed() >= flotilla_proto::partition::PARTITION_COUNT_TTL {
                    counts_read_at = std::time::Instant::now();
                    if let Err(e) = self.served.refresh(&mut self.conn, &self.keys).await {
                        tracing::debug!("reading partition counts failed (will retry): {e}");
                    }
                }
            }
            let tick = ticked_at + self.interval;
            next_pass = match due_in {
                Some(due_in) => tick.min(now + due_in.max(MIN_PAUSE)),
                None => tick,
            };
        }
    }

    /// One pass over the served queues; returns how long until the next job left waiting
    /// is due. A full batch means more may be due: it goes on at once, so that a due
    /// backlog moves at the rate Redis takes it rather than one batch per pass.
    async fn promote(&mut self) -> Option<Duration> {
        let streams = self.served.streams();
        let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
        for _ in 0..MAX_PROMOTE_ROUNDS {
            match fetch::promote(
                &mut self.conn,
                &self.keys,
                &streams,
                PROMOTE_BATCH,
                self.interval,
            )
            .await
            {
                Ok((moved, due_in)) => {
                    if moved > 0 {
                        tracing::debug!(moved, "promoted due jobs");
                    }
                    if (moved as usize) < PROMOTE_BATCH {
                        return due_in;
                    }
                }
                Err(e) => {
                    tracing::debug!("promotion failed (will retry): {e}");
                    return None;
                }
            }
        }
        Some(Duration::ZERO)
    }

    /// Reads the paused set and the flow limits again.
    async fn refresh_paused(&mut self) {
        if let Ok(now_paused) = fetch::paused(&mut self.conn, &self.keys).await {
            *self.paused.write().unwrap_or_else(|p| p.into_inner()) = now_paused;
        }
        if let Err(e) = self.flow.refresh(&mut self.conn, &self.keys).await {
            tracing::debug!("reading flow limits failed (will retry): {e}");
        }
    }
}
