//! Beginning attempts: a fast-path entry in its slot (after checking it is still this
//! worker's when it waited long), or an entry `start` answered for; each is counted and
//! spawned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::scripts::{
    self, BeatReply, FastJob, Heartbeat, HeartbeatItem, SkipReason, StartReply, StartedJob,
};
use flotilla_proto::{ProtoError, millis, new_lease_token};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::fetch::reads::{self as fetch, Fetched};
use crate::metrics::Outcome as MetricOutcome;
use crate::run::completer::{Completion, Outcome};
use crate::run::heartbeat::now_ms;
use crate::run::inflight::Attempt;
use crate::run::runner::run_attempt;
use crate::shared::Shared;

use super::entry_plan::{BuryPlan, FastPlan, StartPlan};

/// The fast-path entries still pending under this worker at their delivery count, their
/// idle time reset: entries that waited for a free slot may have been reclaimed by another
/// worker meanwhile, and must not run twice.
pub(super) async fn still_ours(shared: &Shared, plans: Vec<FastPlan>) -> Vec<FastPlan> {
    still_pending(shared, plans, |plan| {
        let job = plan.fields.job_id.as_deref();
        (
            &plan.fetched,
            job.unwrap_or(&plan.fetched.entry.entry_id).to_owned(),
        )
    })
    .await
}

/// The `items` whose entries are still pending under this worker at their delivery
/// count, their idle time reset (so no reclaimer, this worker's own included, takes them
/// while they wait); `entry_of` gives an item's entry and its job's id. The others were
/// taken by another worker meanwhile and are dropped, with a warning.
pub(crate) async fn still_pending<T>(
    shared: &Shared,
    items: Vec<T>,
    entry_of: impl Fn(&T) -> (&Fetched, String),
) -> Vec<T> {
    let by_queue = fetch::by_queue(items, |item| entry_of(item).0.queue.as_str());
    let job_ids: Vec<Vec<String>> = by_queue
        .iter()
        .map(|(_, group)| group.iter().map(|item| entry_of(item).1).collect())
        .collect();
    let calls: Vec<Heartbeat> = by_queue
        .iter()
        .zip(&job_ids)
        .map(|((queue, group), ids)| Heartbeat {
            queue,
            consumer: &shared.worker_id,
            items: group
                .iter()
                .zip(ids)
                .map(|(item, job_id)| {
                    let fetched = entry_of(item).0;
                    HeartbeatItem {
                        job_id,
                        entry_id: &fetched.entry.entry_id,
                        lease: "",
                        delivery: fetched.delivery,
                    }
                })
                .collect(),
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = match scripts::run_all(&mut conn, &shared.keys, &calls).await {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!(
                "could not confirm fetched entries (they stay pending for reclaim): {e}"
            );
            return Vec::new();
        }
    };
    drop(calls);
    let mut ours = Vec::new();
    for (((queue, group), ids), reply) in by_queue.into_iter().zip(job_ids).zip(replies) {
        let Ok(states) = reply else { continue };
        for ((item, job), state) in group.into_iter().zip(ids).zip(states) {
            match state {
                BeatReply::Ok => ours.push(item),
                // Worth a warning, as when a running job's lease is lost: this worker
                // stalled for as long as a lease while the job waited for a slot.
                BeatReply::Lost | BeatReply::Gone => tracing::warn!(
                    job = %job,
                    queue = %queue,
                    "lease lost before the job started (another worker took it over while this one stalled): not run"
                ),
                other => {
                    tracing::debug!(job = %job, queue = %queue, "entry not started: {other:?}")
                }
            }
        }
    }
    ours
}

/// Runs a fast-path entry in the slot `permit` holds, or hands it back unrun when there
/// is none: its attempt is its attempts spent before plus its deliveries, so an attempt
/// that crashed its worker counts (rule 2) with no write at start. One whose deliveries
/// have spent its attempts is a poison pill: dead, not run.
pub(super) async fn begin_fast(
    shared: &Arc<Shared>,
    plan: FastPlan,
    permit: Option<OwnedSemaphorePermit>,
) {
    let FastPlan {
        fetched,
        mut fields,
    } = plan;
    if fetched.delivery == 0 {
        tracing::debug!(entry = %fetched.entry.entry_id, "reclaimed entry taken by another worker meanwhile");
        return;
    }
    let defaults = &shared.config.jobs.defaults;
    let max_attempts = fields.max_attempts.unwrap_or(defaults.max_attempts);
    let spent_before = fields.attempts.unwrap_or(0);
    let attempt = spent_before.saturating_add(fetched.delivery);
    let started = StartedJob {
        job_type: fields.job_type.unwrap_or_default(),
        content_type: fields.payload.content_type.as_str().to_owned(),
        payload: fields.payload.bytes,
        attempt: attempt.min(max_attempts),
        max_attempts,
        timeout_ms: fields
            .timeout_ms
            .unwrap_or_else(|| millis(defaults.timeout)),
        backoff: Some(fields.backoff.unwrap_or_else(|| defaults.backoff.clone())),
        trace: fields.trace.unwrap_or_default(),
        snoozes: fields.snoozes,
    };
    let entry_id = fetched.entry.entry_id;
    let series = shared.series(&fetched.queue, &started.job_type);
    let attempt_of = Attempt {
        queue: fetched.queue,
        job_id: fields.job_id.take().unwrap_or_else(|| entry_id.clone()),
        entry_id,
        lease: new_lease_token(),
        job_type: started.job_type.clone(),
        number: started.attempt,
        began: Instant::now(),
        // The record a failure would write needs the payload too: one copy per job.
        fast: Some(Arc::new(FastJob {
            job: started.clone(),
            started_at_ms: now_ms(),
        })),
        delivery: Arc::new(fetched.delivery.into()),
        cancel: CancellationToken::new(),
        stopped_for: Arc::default(),
        series,
        trace_id: None,
        slot: fetched.slot,
        group: fields.group.map(Arc::from),
    };
    shared.inflight.insert(attempt_of.clone());
    if attempt > max_attempts {
        // Spent by the producer's own count, or by deliveries whose workers died mid-run:
        // the reason says which, and invents no crash for the first.
        let error = if spent_before >= max_attempts {
            format!(
                "attempts spent ({max_attempts} of {max_attempts}) before this entry was written: not run"
            )
        } else {
            format!(
                "attempts spent ({max_attempts} of {max_attempts}); last error: attempt {max_attempts} interrupted: its worker stopped responding"
            )
        };
        tracing::warn!(job = %attempt_of.job_id, queue = %attempt_of.queue, "poison pill: dead-lettering");
        let poison = Completion {
            attempt: attempt_of,
            outcome: Outcome::Failed { error, delay: None },
            run_time: std::time::Duration::ZERO,
        };
        if shared.completions.send(poison).await.is_err() {
            tracing::error!("outcome writer stopped; the entry stays pending for reclaim");
        }
        return;
    }
    match permit {
        Some(permit) => {
            count_start(&attempt_of, fetched.delivery);
            shared
                .tracker
                .spawn(run_attempt(Arc::clone(shared), attempt_of, started, permit));
        }
        None => {
            let hand_back = Completion {
                attempt: attempt_of,
                outcome: Outcome::HandBack,
                run_time: std::time::Duration::ZERO,
            };
            if shared.completions.send(hand_back).await.is_err() {
                tracing::error!("outcome writer stopped; the entry stays pending for reclaim");
            }
        }
    }
}

/// Counts an attempt that is about to run, and how long its entry waited for it. An entry
/// delivered before went to a worker that stopped: its job was reclaimed. A later attempt
/// on a fresh entry follows a failure (a hand-back is not charged an attempt): a retry.
pub(super) fn count_start(attempt: &Attempt, delivery: u32) {
    attempt.series.count(MetricOutcome::Started);
    if delivery > 1 {
        attempt.series.count(MetricOutcome::Reclaimed);
    } else if attempt.number > 1 {
        attempt.series.count(MetricOutcome::Retried);
    }
    let entered_ms =
        flotilla_proto::entry_id_ms(&attempt.entry_id).and_then(|ms| u64::try_from(ms).ok());
    if let Some(entered_ms) = entered_ms {
        attempt
            .series
            .waited(Duration::from_millis(now_ms().saturating_sub(entered_ms)));
    }
}

/// Acts on one entry's start reply: spawns the attempt, or logs why not. Returns an entry
/// to bury when it names a job that has no record.
pub(super) fn begin(
    shared: &Arc<Shared>,
    plan: StartPlan,
    reply: StartReply,
    permit: OwnedSemaphorePermit,
) -> Option<BuryPlan> {
    let StartPlan {
        fetched,
        fields,
        job_id,
        lease,
    } = plan;
    match reply {
        StartReply::Started(started) => {
            let series = shared.series(&fetched.queue, &started.job_type);
            let attempt = Attempt {
                queue: fetched.queue,
                job_id,
                entry_id: fetched.entry.entry_id,
                lease,
                job_type: started.job_type.clone(),
                number: started.attempt,
                began: Instant::now(),
                fast: None,
                delivery: Arc::default(),
                cancel: CancellationToken::new(),
                stopped_for: Arc::default(),
                series,
                trace_id: None,
                slot: fetched.slot,
                // A job with a record gives its group's place back when a promote pass
                // finds it ended.
                group: None,
            };
            shared.inflight.insert(attempt.clone());
            count_start(&attempt, fetched.delivery);
            shared
                .tracker
                .spawn(run_attempt(Arc::clone(shared), attempt, started, permit));
            None
        }
        StartReply::Scheduled { due_ms } => {
            tracing::info!(job = %job_id, queue = %fetched.queue, due_ms, "entry asks to run later: scheduled");
            None
        }
        StartReply::Dead { reason } => {
            shared
                .series(
                    &fetched.queue,
                    fields.job_type.as_deref().unwrap_or_default(),
                )
                .count(MetricOutcome::Dead);
            tracing::warn!(job = %job_id, queue = %fetched.queue, reason = %reason.escape_debug(), "poison pill dead-lettered");
            None
        }
        StartReply::Expired { at_ms, job_type } => {
            shared
                .series(&fetched.queue, &job_type)
                .count(MetricOutcome::Expired);
            tracing::info!(job = %job_id, queue = %fetched.queue, expired_at_ms = at_ms, "job expired before it could start: not run");
            None
        }
        // The reasons PROTOCOL.md gives, as for every malformed entry.
        StartReply::Skipped(SkipReason::Orphan) => Some(BuryPlan {
            reason: format!("malformed entry: {}", ProtoError::NoType),
            fetched,
        }),
        StartReply::Skipped(SkipReason::ReservedId) => Some(BuryPlan {
            reason: format!(
                "malformed entry: {}",
                ProtoError::BadField {
                    field: flotilla_proto::field::ID,
                    value: job_id,
                    expected: flotilla_proto::JOB_ID_RULE,
                }
            ),
            fetched,
        }),
        StartReply::Skipped(why) => {
            tracing::debug!(job = %job_id, "entry skipped: {why:?}");
            None
        }
    }
}
