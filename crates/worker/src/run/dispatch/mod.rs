//! Turning fetched entries into running attempts as slots free: bury what cannot be
//! decoded, run fast-path entries (the whole job in the entry, protocol 2) with no Redis
//! call (those with ids of their own after one `claim` call per queue), start entries that
//! have records in one pipeline, and spawn an attempt for each.

use std::sync::Arc;
use std::time::Instant;

use flotilla_proto::scripts::{self, PutBack};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Shutdown;
use crate::fetch::reads::Fetched;
use crate::flow::admission;
use crate::run::start_line::Place;
use crate::run::{claim, slots};
use crate::shared::Shared;

mod begin;
mod entry_plan;
mod expiry;
mod group_gate;
mod held_back;
mod plan;

use begin::{begin_fast, still_ours};
use held_back::HeldBack;
use plan::{Plans, bury_orphans};

/// One fetch's entries and what lets them run: a slot for each of the first ones, a
/// ticket for each fetched ahead of a free slot, a place in the start line when some
/// must wait for a slot, and when the read went out.
pub(crate) struct Batch {
    pub fetched: Vec<Fetched>,
    pub permits: Vec<OwnedSemaphorePermit>,
    pub ahead: Vec<OwnedSemaphorePermit>,
    pub place: Option<Place>,
    pub sent: Instant,
}

/// Starts a fetch's entries: those with a slot at once, the rest in order as slots free
/// (each gives back its ticket as it takes one). On shutdown the entries still waiting
/// are handed back, so other workers take them now rather than after a lease.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    batch: Batch,
    slots: &Arc<Semaphore>,
    shutdown: &Shutdown,
) {
    let Batch {
        fetched,
        permits,
        mut ahead,
        place,
        sent,
    } = batch;
    // Every entry of the fetch that carries an id of its own is claimed at once, in one
    // call per queue, whether it runs now or waits for a slot.
    let mut fetched = claim::claim_ids(shared, fetched, sent).await;
    let mut waiting = fetched.split_off(permits.len().min(fetched.len()));
    start(shared, fetched, permits, sent, shutdown).await;
    if waiting.is_empty() {
        return;
    }
    // One batch at a time takes freed slots, in the order the batches were fetched
    // (strict priority holds, and one slot runs jobs in queue order). The fetch loop
    // gives a place to every batch that has entries to wait; it leaves the line when
    // this returns.
    if let Some(place) = &place {
        tokio::select! {
            () = place.turn() => {}
            _ = shutdown.triggered() => {
                hand_back_unstarted(shared, waiting).await;
                return;
            }
        }
    }
    while !waiting.is_empty() {
        let Some(permits) = slots::wait_for_some(slots, shutdown, waiting.len()).await else {
            hand_back_unstarted(shared, waiting).await;
            return;
        };
        let rest = waiting.split_off(permits.len());
        ahead.truncate(ahead.len().saturating_sub(permits.len()));
        start(shared, waiting, permits, sent, shutdown).await;
        waiting = rest;
    }
}

/// Starts entries that each have a slot, once their queues' flow limits let them (see
/// [`start_admitted`]); entries held back by a limit keep their slots and start from a
/// task of their own when their queue's next start is due. An entry of a queue paused
/// since it was read (a blocking read in flight when the pause came, say) goes back unrun;
/// one whose job expired ends so, unrun, asking no limit.
async fn start(
    shared: &Arc<Shared>,
    fetched: Vec<Fetched>,
    mut permits: Vec<OwnedSemaphorePermit>,
    sent: Instant,
    shutdown: &Shutdown,
) {
    let (fetched, paused): (Vec<Fetched>, Vec<Fetched>) = fetched
        .into_iter()
        .partition(|f| !shared.is_paused(&f.queue));
    if !paused.is_empty() {
        put_back_paused(shared, paused).await;
    }
    let (mut fetched, expired) = expiry::split_expired(shared, fetched);
    fetched.extend(expiry::end_expired(shared, expired).await);
    let fetched = group_gate::pass_gates(shared, fetched).await;
    let admitted = admission::admit(shared, fetched).await;
    if !admitted.held.is_empty() {
        admission::count_throttled(shared, &admitted.held);
        let kept = permits.len().saturating_sub(admitted.held.len());
        let held_permits = permits.split_off(kept);
        let held = HeldBack::new(shared, admitted.held, held_permits, sent);
        let (shared, shutdown) = (Arc::clone(shared), shutdown.clone());
        shared.tracker.clone().spawn(async move {
            held.start_when_admitted(&shared, admitted.ask_again_in, &shutdown)
                .await
        });
    }
    start_admitted(shared, admitted.run, permits, sent).await;
}

/// Starts entries that each have a slot: fast-path ones at once (those with ids of their
/// own once claimed; the others after confirming they are still this worker's when their
/// read went out `sent` half a lease ago or more), the rest with one `start` call per queue
/// for all its entries, and the buries, in one pipeline.
pub(super) async fn start_admitted(
    shared: &Arc<Shared>,
    fetched: Vec<Fetched>,
    permits: Vec<OwnedSemaphorePermit>,
    sent: Instant,
) {
    if fetched.is_empty() {
        return;
    }
    let mut plans = Plans::new(shared, fetched);
    let mut permits = permits.into_iter();
    let mut fast = std::mem::take(&mut plans.fast);
    // An entry is reclaimable only once idle for a whole lease; one whose read went out
    // half of that ago may have gone to another worker meanwhile (this one froze between
    // sending the read and taking the reply, or while it waited for a slot, say), so it
    // is checked last thing before it runs.
    if sent.elapsed() >= shared.config.lease_ttl / 2 {
        fast = still_ours(shared, fast).await;
    }
    for plan in fast {
        let Some(permit) = permits.next() else { break };
        begin_fast(shared, plan, Some(permit)).await;
    }
    if plans.batches.is_empty() && plans.buries.is_empty() {
        return;
    }
    let Some(replies) = plans.send(shared).await else {
        return;
    };
    let orphans = plans.begin_all(shared, replies, permits);
    bury_orphans(shared, orphans).await;
}

/// Hands back fast-path entries that never got a slot before shutdown (attempt not
/// charged); entries with records stay pending for reclaim, as after a crash.
pub(super) async fn hand_back_unstarted(shared: &Arc<Shared>, entries: Vec<Fetched>) {
    let mut plans = Plans::new(shared, entries);
    let left = plans.batches.iter().map(|(_, b)| b.len()).sum::<usize>() + plans.buries.len();
    if left > 0 {
        tracing::info!(
            entries = left,
            "shutting down: fetched entries that never started stay pending for reclaim"
        );
    }
    for plan in std::mem::take(&mut plans.fast) {
        begin_fast(shared, plan, None).await;
    }
}

/// Returns entries of paused queues unrun and uncharged: fast-path ones through
/// `handback` (which keeps their job id), the others with one `putback` call per queue.
/// Malformed ones are dead-lettered as they would be anyway.
pub(super) async fn put_back_paused(shared: &Arc<Shared>, entries: Vec<Fetched>) {
    let mut plans = Plans::new(shared, entries);
    for plan in std::mem::take(&mut plans.fast) {
        begin_fast(shared, plan, None).await;
    }
    let calls: Vec<PutBack> = plans
        .batches
        .iter()
        .map(|(queue, batch)| PutBack {
            queue,
            consumer: &shared.worker_id,
            entries: batch
                .iter()
                .map(|plan| (plan.fetched.entry.entry_id.as_str(), plan.job_id.as_str()))
                .collect(),
        })
        .collect();
    if !calls.is_empty() {
        let mut conn = shared.conn.clone();
        match scripts::run_all(&mut conn, &shared.keys, &calls).await {
            Ok(replies) => {
                for (call, reply) in calls.iter().zip(replies) {
                    match reply {
                        Ok(moved) => {
                            tracing::info!(queue = %call.queue, moved, "queue paused: entries put back unrun")
                        }
                        Err(e) => {
                            tracing::warn!(queue = %call.queue, "could not put back entries of a paused queue (they stay pending for reclaim): {e}")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(
                "could not put back entries of a paused queue (they stay pending for reclaim): {e}"
            ),
        }
    }
    let buries = std::mem::take(&mut plans.buries);
    bury_orphans(shared, buries).await;
}
