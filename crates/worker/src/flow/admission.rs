//! Asking before jobs of flow-limited queues start: one `admit` call per limited queue of
//! a batch, all in one pipeline. What is admitted runs (with its cap slot, if the queue
//! has a cap); the rest of the queue's entries are held back, in order, until its next
//! start is due. Entries of queues without limits pass untouched, with no call.

use std::time::Duration;

use flotilla_proto::queue_of_partition;
use flotilla_proto::scripts::{self, Admission, Admit};

use crate::fetch::reads::{Fetched, by_queue};
use crate::metrics::{Outcome, UNKNOWN_TYPE};
use crate::shared::Shared;

use super::CAP_RECHECK;

/// How long entries are held back after an admission failed (Redis away, say).
const AFTER_FAILURE: Duration = Duration::from_secs(1);

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
    let groups = by_queue(limited, |(_, f)| queue_of_partition(&f.queue));
    let limits: Vec<_> = groups
        .iter()
        .map(|(queue, _)| flow.limit_of(queue).unwrap_or_default())
        .collect();
    let calls: Vec<Admit> = groups
        .iter()
        .zip(&limits)
        .map(|((queue, entries), limit)| Admit {
            queue,
            limit,
            worker: &shared.worker_id,
            wanted: entries.len(),
            lease: shared.config.lease_ttl,
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = scripts::run_all(&mut conn, &shared.keys, &calls).await;
    drop(calls);
    let mut held = Vec::new();
    let mut ask_again_in: Option<Duration> = None;
    let mut sooner = |wait: Duration| {
        ask_again_in = Some(ask_again_in.map_or(wait, |w| w.min(wait)));
    };
    match replies {
        Ok(replies) => {
            for (((queue, mut entries), limit), reply) in
                groups.into_iter().zip(limits).zip(replies)
            {
                let admission = match reply {
                    Ok(admission) => admission,
                    Err(e) => {
                        tracing::warn!(queue = %queue, "could not ask the queue's flow limit (its jobs wait): {e}");
                        sooner(AFTER_FAILURE);
                        held.extend(entries);
                        continue;
                    }
                };
                let waiting = entries.split_off(admission.admitted.min(entries.len()));
                give_slots(
                    shared,
                    &queue,
                    &mut entries,
                    admission,
                    limit.concurrency.is_some(),
                );
                if let Some(wait) = flow.admitted(&queue, &admission) {
                    sooner(wait);
                } else if !waiting.is_empty() {
                    sooner(CAP_RECHECK);
                }
                run.extend(entries);
                held.extend(waiting);
            }
        }
        Err(e) => {
            tracing::warn!("could not ask the queues' flow limits (their jobs wait): {e}");
            sooner(AFTER_FAILURE);
            held.extend(groups.into_iter().flat_map(|(_, entries)| entries));
        }
    }
    run.sort_by_key(|(index, _)| *index);
    held.sort_by_key(|(index, _)| *index);
    Admitted {
        run: run.into_iter().map(|(_, f)| f).collect(),
        held: held.into_iter().map(|(_, f)| f).collect(),
        ask_again_in: ask_again_in.unwrap_or(CAP_RECHECK),
    }
}

/// Hands each admitted entry of a capped queue its slot. A slot the admission gave
/// beyond the entries (it never does) goes back at once.
fn give_slots(
    shared: &Shared,
    queue: &str,
    entries: &mut [(usize, Fetched)],
    admission: Admission,
    capped: bool,
) {
    if !capped || admission.admitted == 0 {
        return;
    }
    let slots = shared.flow.holds.took(queue, admission.admitted);
    for ((_, entry), slot) in entries.iter_mut().zip(slots) {
        entry.slot = Some(slot);
    }
}

/// Counts entries held back, as the `throttled` outcome of their queue and type.
pub(crate) fn count_held(shared: &Shared, held: &[Fetched]) {
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
