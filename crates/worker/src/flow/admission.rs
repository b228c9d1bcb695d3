//! Asking before jobs of flow-limited queues start. Each limited queue's entries of a
//! batch first use the spare starts this worker holds (see `Flow::take_spare`); the rest
//! are asked for with one `admit` call per queue, all in one pipeline, which also asks
//! for spares while the limit is far from reached. What is admitted runs (with its cap
//! slot, if the queue has a cap); the rest of the queue's entries are held back, in
//! order, until its next start is due. Entries of queues without limits pass untouched.

use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::flow::QueueLimit;
use flotilla_proto::queue_of_partition;
use flotilla_proto::scripts::{self, Admit};
use flotilla_proto::tally::Tally;

use crate::fetch::reads::{Fetched, by_queue};
use crate::metrics::{Outcome, UNKNOWN_TYPE};
use crate::shared::Shared;

use super::CAP_RECHECK;
use super::holds::Slot;

/// How long entries are held back after an admission failed (Redis away, say).
const AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The most spare starts one admission asks for.
const MAX_SPARE: usize = 512;

/// What may start now and what waits.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    /// Entries that may start, in the order they came.
    pub run: Vec<Fetched>,
    /// Entries held back, in the order they came.
    pub held: Vec<Fetched>,
    /// When to ask again for the held ones.
    pub ask_again_in: Duration,
}

/// One limited queue's entries of a batch, by their place in it.
struct Group {
    queue: String,
    limit: QueueLimit,
    entries: Vec<(usize, Fetched)>,
    /// Spare slots of the worker's own taken for the first of them (a capped queue whose
    /// rate must still be asked): the cap is not asked for those.
    own_slots: Vec<Arc<Slot>>,
}

/// Splits `fetched` into what may start now and what waits for its queue's limit.
pub(crate) async fn admit(shared: &Shared, fetched: Vec<Fetched>) -> Admitted {
    let flow = &shared.flow;
    if fetched.iter().all(|f| flow.limit_of(&f.queue).is_none()) {
        return Admitted {
            run: fetched,
            ..Admitted::default()
        };
    }
    let tagged: Vec<(usize, Fetched)> = fetched.into_iter().enumerate().collect();
    let (limited, mut run): (Vec<_>, Vec<_>) = tagged
        .into_iter()
        .partition(|(_, f)| flow.limit_of(&f.queue).is_some());
    // Spare starts first: entries they cover run with no call.
    let mut groups = Vec::new();
    for (queue, mut entries) in by_queue(limited, |(_, f)| queue_of_partition(&f.queue)) {
        let limit = flow.limit_of(&queue).unwrap_or_default();
        let (spared, slots) = flow.take_spare(&queue, &limit, entries.len());
        let rest = entries.split_off(spared.min(entries.len()));
        run.extend(with_slots(entries, slots, limit.concurrency.is_some()));
        if !rest.is_empty() {
            let own_slots = if limit.concurrency.is_some() {
                flow.holds.take_spare(&queue, rest.len())
            } else {
                Vec::new()
            };
            groups.push(Group {
                queue,
                limit,
                entries: rest,
                own_slots,
            });
        }
    }
    let mut held = Vec::new();
    let mut ask_again_in: Option<Duration> = None;
    if !groups.is_empty() {
        ask_redis(shared, groups, &mut run, &mut held, &mut ask_again_in).await;
    }
    run.sort_by_key(|(index, _)| *index);
    held.sort_by_key(|(index, _)| *index);
    Admitted {
        run: run.into_iter().map(|(_, f)| f).collect(),
        held: held.into_iter().map(|(_, f)| f).collect(),
        ask_again_in: ask_again_in.unwrap_or(CAP_RECHECK),
    }
}

/// Asks `admit` for each group's entries, in one pipeline: the admitted ones go to `run`,
/// the others to `held`, and `ask_again_in` becomes the soonest a held one may start.
async fn ask_redis(
    shared: &Shared,
    groups: Vec<Group>,
    run: &mut Vec<(usize, Fetched)>,
    held: &mut Vec<(usize, Fetched)>,
    ask_again_in: &mut Option<Duration>,
) {
    let flow = &shared.flow;
    let calls: Vec<Admit> = groups
        .iter()
        .map(|group| {
            let (spare_starts, spare_slots) = spares_to_ask(shared, group);
            Admit {
                queue: &group.queue,
                limit: &group.limit,
                worker: &shared.worker_id,
                wanted: group.entries.len(),
                lease: shared.config.lease_ttl,
                spare_starts,
                spare_slots,
                believed: flow.holds.held(&group.queue),
                covered: group.own_slots.len(),
            }
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = scripts::run_all(&mut conn, &shared.keys, &calls).await;
    drop(calls);
    let mut sooner = |wait: Duration| {
        *ask_again_in = Some(ask_again_in.map_or(wait, |w| w.min(wait)));
    };
    let replies = match replies {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!("could not ask the queues' flow limits (their jobs wait): {e}");
            sooner(AFTER_FAILURE);
            held.extend(groups.into_iter().flat_map(|group| group.entries));
            return;
        }
    };
    for (group, reply) in groups.into_iter().zip(replies) {
        let Group {
            queue,
            limit,
            mut entries,
            mut own_slots,
        } = group;
        let admission = match reply {
            Ok(admission) => admission,
            Err(e) => {
                tracing::warn!(queue = %queue, "could not ask the queue's flow limit (its jobs wait): {e}");
                sooner(AFTER_FAILURE);
                held.extend(entries);
                continue;
            }
        };
        if admission.hold_ended {
            // Frozen for a lease, this worker lost its hold: its jobs under it are stopped
            // by the heartbeat, and these wait for a slot of a new hold.
            tracing::warn!(queue = %queue, "concurrency slots lost: this worker stopped beating for a lease and its slots went to others");
            flow.holds.hold_ended(&queue);
            sooner(CAP_RECHECK);
            held.extend(entries);
            continue;
        }
        let waiting = entries.split_off(admission.admitted.min(entries.len()));
        // Its own spare slots first, then those the admission gave; own slots left over
        // go back to its spares as they drop.
        let from_own = own_slots.len().min(entries.len());
        let rest_own = own_slots.split_off(from_own);
        drop(rest_own);
        let mut slots = own_slots;
        slots.extend(flow.took(&queue, &limit, &admission, entries.len() - from_own));
        run.extend(with_slots(entries, slots, limit.concurrency.is_some()));
        if let Some(wait) = flow.admitted(&queue, &admission) {
            shared.metrics.limit_reached(&queue);
            sooner(wait);
        } else if !waiting.is_empty() {
            sooner(CAP_RECHECK);
        }
        held.extend(waiting);
    }
}

/// The spares to ask for with an admission of `group`'s queue (given only while twice as
/// many are left): starts, which last 10 ms, up to a quarter of the burst; slots, which
/// stay until unused, up to twice the worker's concurrency or a quarter of the cap, less
/// those it holds spare already.
fn spares_to_ask(shared: &Shared, group: &Group) -> (usize, usize) {
    let starts = (group.limit.burst_in_force() as usize / 4).min(MAX_SPARE);
    let slots = group.limit.concurrency.map_or(0, |cap| {
        (2 * shared.config.concurrency)
            .min(cap as usize / 4)
            .min(MAX_SPARE)
            .saturating_sub(shared.flow.holds.spare(&group.queue))
    });
    (starts, slots)
}

/// The entries, each with its cap slot when the queue has a cap.
fn with_slots(
    entries: Vec<(usize, Fetched)>,
    slots: Vec<Arc<Slot>>,
    capped: bool,
) -> impl Iterator<Item = (usize, Fetched)> {
    let mut slots = slots.into_iter();
    entries.into_iter().map(move |(index, mut entry)| {
        if capped {
            entry.slot = slots.next();
        }
        (index, entry)
    })
}

/// Counts entries held back, as the `throttled` outcome of their queue and type.
pub(crate) fn count_throttled(shared: &Shared, held: &[Fetched]) {
    for (queue, entries) in by_queue(held, |f| f.queue.as_str()) {
        let n = entries.len() as u64;
        crate::tallies::note(&shared.conn, &shared.keys, &queue, Tally::Throttled, n);
    }
    for entry in held {
        let job_type = entry
            .entry
            .fields
            .get(flotilla_proto::field::TYPE)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or(UNKNOWN_TYPE);
        shared
            .series(&entry.queue, job_type)
            .count(Outcome::Throttled);
    }
}
