//! Entries a flow limit held back: they keep their slots, stay pending under this worker
//! (refreshed as running jobs' entries are), and are asked for again when their queue's
//! next start is due; while any is held, the fetch loop leaves the queue alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::queue_of_partition;
use tokio::sync::OwnedSemaphorePermit;

use crate::Shutdown;
use crate::fetch::reads::Fetched;
use crate::flow::{Flow, admission};
use crate::shared::Shared;

use super::begin::still_pending;
use super::{expiry, hand_back_unstarted, put_back_paused, start_admitted};

/// Held entries, in order, with their slots.
pub(super) struct HeldBack {
    entries: Vec<Fetched>,
    permits: Vec<OwnedSemaphorePermit>,
    /// When their read went out.
    sent: Instant,
    /// When they were first held back.
    since: Instant,
    flow: Arc<Flow>,
    /// Queue → how many of `entries` are counted as held in `flow`.
    counted: HashMap<String, usize>,
}

impl Drop for HeldBack {
    fn drop(&mut self) {
        for (queue, n) in self.counted.drain() {
            self.flow.count_held(&queue, -(n as isize));
        }
    }
}

impl HeldBack {
    /// Holds `entries` back with their `permits`, counted in the worker's flow state.
    pub(super) fn new(
        shared: &Shared,
        entries: Vec<Fetched>,
        permits: Vec<OwnedSemaphorePermit>,
        sent: Instant,
    ) -> Self {
        let mut held = Self {
            entries,
            permits,
            sent,
            since: Instant::now(),
            flow: Arc::clone(&shared.flow),
            counted: HashMap::new(),
        };
        held.count();
        held
    }

    /// Brings the held counts of `flow` in line with `entries`, so a queue is read again
    /// once none of its entries is held here.
    fn count(&mut self) {
        let mut now: HashMap<String, usize> = HashMap::new();
        for entry in &self.entries {
            *now.entry(queue_of_partition(&entry.queue).to_owned())
                .or_default() += 1;
        }
        for (queue, &n) in &now {
            let before = self.counted.get(queue).copied().unwrap_or(0);
            self.flow.count_held(queue, n as isize - before as isize);
        }
        for (queue, &before) in &self.counted {
            if !now.contains_key(queue) {
                self.flow.count_held(queue, -(before as isize));
            }
        }
        self.counted = now;
    }

    /// Asks again each time the queue's next start is due and starts what is admitted,
    /// in order, until none is left; on shutdown hands back what still waits.
    pub(super) async fn start_when_admitted(
        mut self,
        shared: &Arc<Shared>,
        wait: Duration,
        shutdown: &Shutdown,
    ) {
        // Held entries stay pending under this worker: their idle time is reset every
        // third of a lease, as running jobs' entries are, so no reclaimer takes them.
        let refresh_every = shared.config.lease_ttl / 3;
        let mut refreshed = self.sent;
        let mut ask_at = Instant::now() + wait;
        while !self.entries.is_empty() {
            let nap = ask_at
                .saturating_duration_since(Instant::now())
                .min(refresh_every);
            let changed = self.flow.changed.notified();
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                // A limit changed, or this worker gave back a slot: ask at once.
                () = changed => ask_at = Instant::now(),
                _ = shutdown.triggered() => {
                    hand_back_unstarted(shared, std::mem::take(&mut self.entries)).await;
                    return;
                }
            }
            // Paused while they waited: back to the stream, unrun, as a fetched entry of
            // a paused queue goes.
            let (paused, waiting): (Vec<Fetched>, Vec<Fetched>) = std::mem::take(&mut self.entries)
                .into_iter()
                .partition(|f| shared.is_paused(&f.queue));
            self.entries = waiting;
            if !paused.is_empty() {
                self.permits.truncate(self.entries.len());
                self.count();
                put_back_paused(shared, paused).await;
            }
            if refreshed.elapsed() >= refresh_every {
                let entries = std::mem::take(&mut self.entries);
                self.entries = still_pending(shared, entries, |f| (f, f.entry.job_id())).await;
                self.permits.truncate(self.entries.len());
                self.count();
                refreshed = Instant::now();
            }
            if Instant::now() < ask_at || self.entries.is_empty() {
                continue;
            }
            // Expired while they waited: ended, unrun, asking the limit for nothing.
            let (mut waiting, expired) =
                expiry::split_expired(shared, std::mem::take(&mut self.entries));
            if !expired.is_empty() {
                waiting.extend(expiry::end_expired(shared, expired).await);
                self.permits.truncate(waiting.len());
            }
            self.entries = waiting;
            self.count();
            if self.entries.is_empty() {
                continue;
            }
            let admitted = admission::admit(shared, std::mem::take(&mut self.entries)).await;
            for entry in &admitted.run {
                let queue = queue_of_partition(&entry.queue);
                shared.metrics.limit_waited(queue, self.since.elapsed());
            }
            let rest = self
                .permits
                .split_off(admitted.run.len().min(self.permits.len()));
            let permits = std::mem::replace(&mut self.permits, rest);
            self.entries = admitted.held;
            self.count();
            start_admitted(shared, admitted.run, permits, self.sent).await;
            ask_at = Instant::now() + admitted.ask_again_in;
        }
    }
}
