//! Turning fetched entries into running attempts as slots free: bury what cannot be
//! decoded, run fast-path entries (the whole job in the entry, protocol 2) with no Redis
//! call (those with ids of their own after one `claim` call per queue), start entries that
//! have records in one pipeline, and spawn an attempt for each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::scripts::{
    self, BeatReply, Bury, BuryReply, FastJob, Heartbeat, HeartbeatItem, PutBack, RawJob,
    ScriptCall, ScriptError, SkipReason, Start, StartEntry, StartReply, StartedJob,
};
use flotilla_proto::{EntryFields, ProtoError, millis, new_lease_token};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::Shutdown;
use crate::fetch::reads::{self as fetch, Fetched, IdClaim};
use crate::metrics::{Outcome as MetricOutcome, UNKNOWN_TYPE};
use crate::run::completer::{Completion, Outcome};
use crate::run::heartbeat::now_ms;
use crate::run::inflight::Attempt;
use crate::run::runner::run_attempt;
use crate::run::start_line::Place;
use crate::run::{claim, slots};
use crate::shared::Shared;

/// An entry to start.
struct StartPlan {
    fetched: Fetched,
    fields: EntryFields,
    job_id: String,
    lease: String,
}

/// An entry to dead-letter without running it.
struct BuryPlan {
    fetched: Fetched,
    reason: String,
}

/// A fast-path entry to run: the whole job is in it.
struct FastPlan {
    fetched: Fetched,
    fields: EntryFields,
}

/// What to do with one fetch's entries: fast-path runs, start calls grouped by queue, and
/// buries.
#[derive(Default)]
struct Plans {
    fast: Vec<FastPlan>,
    batches: Vec<(String, Vec<StartPlan>)>,
    buries: Vec<BuryPlan>,
}

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
    start(shared, fetched, permits, sent).await;
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
        start(shared, waiting, permits, sent).await;
        waiting = rest;
    }
}

/// Starts entries that each have a slot: fast-path ones at once (those with ids of their
/// own once claimed; the others after confirming they are still this worker's when their
/// read went out `sent` half a lease ago or more), the rest with one `start` call per queue
/// for all its entries, and the buries, in one pipeline. An entry of a queue paused since
/// it was read (a blocking read in flight when the pause came, say) goes back unrun.
async fn start(
    shared: &Arc<Shared>,
    fetched: Vec<Fetched>,
    permits: Vec<OwnedSemaphorePermit>,
    sent: Instant,
) {
    let (fetched, paused): (Vec<Fetched>, Vec<Fetched>) = fetched
        .into_iter()
        .partition(|f| !shared.is_paused(&f.queue));
    if !paused.is_empty() {
        put_back_paused(shared, paused).await;
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
async fn hand_back_unstarted(shared: &Arc<Shared>, entries: Vec<Fetched>) {
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
async fn put_back_paused(shared: &Arc<Shared>, entries: Vec<Fetched>) {
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

/// The fast-path entries still pending under this worker at their delivery count, their
/// idle time reset: entries that waited for a free slot may have been reclaimed by another
/// worker meanwhile, and must not run twice.
async fn still_ours(shared: &Shared, plans: Vec<FastPlan>) -> Vec<FastPlan> {
    let by_queue = fetch::by_queue(plans, |plan| &plan.fetched.queue);
    let calls: Vec<Heartbeat> = by_queue
        .iter()
        .map(|(queue, group)| Heartbeat {
            queue,
            consumer: &shared.worker_id,
            items: group
                .iter()
                .map(|plan| HeartbeatItem {
                    job_id: plan
                        .fields
                        .job_id
                        .as_deref()
                        .unwrap_or(&plan.fetched.entry.entry_id),
                    entry_id: &plan.fetched.entry.entry_id,
                    lease: "",
                    delivery: plan.fetched.delivery,
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
    let mut ours = Vec::new();
    for ((_, group), reply) in by_queue.into_iter().zip(replies) {
        let Ok(states) = reply else { continue };
        for (plan, state) in group.into_iter().zip(states) {
            let job = plan
                .fields
                .job_id
                .as_deref()
                .unwrap_or(&plan.fetched.entry.entry_id);
            let queue = &plan.fetched.queue;
            match state {
                BeatReply::Ok => ours.push(plan),
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
async fn begin_fast(shared: &Arc<Shared>, plan: FastPlan, permit: Option<OwnedSemaphorePermit>) {
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

impl Plans {
    /// Decodes each entry: a valid one joins its queue's start call, a malformed one is
    /// buried with the reason.
    fn new(shared: &Shared, fetched: Vec<Fetched>) -> Self {
        let mut plans = Self::default();
        let max_payload_bytes = shared.config.jobs.limits.max_payload_bytes;
        let now = now_ms();
        for fetched in fetched {
            if flotilla_proto::entry_id_ahead(&fetched.entry.entry_id, now) {
                let reason = format!(
                    "malformed entry: its id {} is more than a day ahead of the clock: only \
                     Redis chooses entry ids (XADD with *), and an id chosen ahead keeps the \
                     stream from taking new jobs until reconciliation sets its last id back",
                    fetched.entry.entry_id
                );
                plans.buries.push(BuryPlan { fetched, reason });
                continue;
            }
            let fields = match fetched.entry.decode(max_payload_bytes) {
                Ok(fields) => fields,
                Err(e) => {
                    plans.buries.push(BuryPlan {
                        fetched,
                        reason: format!("malformed entry: {e}"),
                    });
                    continue;
                }
            };
            // An entry with an id of its own runs on the fast path once it holds the id.
            let fast = fields.is_fast(now)
                && match fetched.id_claim {
                    IdClaim::Run => true,
                    IdClaim::WithRecord => false,
                    IdClaim::None => fields.job_id.is_none(),
                };
            if fast {
                plans.fast.push(FastPlan { fetched, fields });
            } else {
                plans.add_start(fetched, fields);
            }
        }
        plans
    }

    /// Adds an entry to its queue's start call.
    fn add_start(&mut self, fetched: Fetched, fields: EntryFields) {
        let job_id = fields
            .job_id
            .clone()
            .unwrap_or_else(|| fetched.entry.entry_id.clone());
        let plan = StartPlan {
            fetched,
            fields,
            job_id,
            lease: new_lease_token(),
        };
        match self
            .batches
            .iter_mut()
            .find(|(q, _)| *q == plan.fetched.queue)
        {
            Some((_, batch)) => batch.push(plan),
            None => self.batches.push((plan.fetched.queue.clone(), vec![plan])),
        }
    }

    /// Sends the start calls and the buries in one pipeline; `None` when it failed, and
    /// the entries stay pending under this worker for its reclaim pass to retry.
    async fn send(
        &self,
        shared: &Shared,
    ) -> Option<std::vec::IntoIter<redis::RedisResult<redis::Value>>> {
        let keys = &shared.keys;
        let starts: Vec<Start> = self
            .batches
            .iter()
            .map(|(q, batch)| shared.start_call(q, batch))
            .collect();
        let buries: Vec<Bury> = self.buries.iter().map(|b| shared.bury_call(b)).collect();
        let commands: Vec<redis::Cmd> = starts
            .iter()
            .map(|s| s.call(keys).cmd())
            .chain(buries.iter().map(|b| b.call(keys).cmd()))
            .collect();
        let mut conn = shared.conn.clone();
        match scripts::exec_pipeline(&mut conn, &commands).await {
            Ok(replies) => Some(replies.into_iter()),
            Err(e) => {
                tracing::warn!(
                    entries = commands.len(),
                    "could not start fetched entries: {e}"
                );
                None
            }
        }
    }

    /// Acts on the replies, in the order [`Plans::send`] sent the calls: spawns each
    /// started attempt and logs each burial. Returns entries naming a job that has no
    /// record, to be buried next.
    fn begin_all(
        self,
        shared: &Arc<Shared>,
        mut replies: impl Iterator<Item = redis::RedisResult<redis::Value>>,
        mut permits: impl Iterator<Item = OwnedSemaphorePermit>,
    ) -> Vec<BuryPlan> {
        let mut orphans = Vec::new();
        for (_, batch) in self.batches {
            let reply = replies.next().unwrap_or(Ok(redis::Value::Nil));
            let per_entry = match Start::parse_result(reply) {
                Ok(per_entry) => per_entry,
                Err(e) => {
                    tracing::warn!(
                        entries = batch.len(),
                        "could not start entries (they will be retried): {e}"
                    );
                    continue;
                }
            };
            for (plan, reply) in batch.into_iter().zip(per_entry) {
                let Some(permit) = permits.next() else { break };
                orphans.extend(begin(shared, plan, reply, permit));
            }
        }
        log_buried(shared, &self.buries, replies.map(Bury::parse_result));
        orphans
    }
}

/// Dead-letters entries whose job has no record and that carry no type to rebuild it.
async fn bury_orphans(shared: &Shared, orphans: Vec<BuryPlan>) {
    if orphans.is_empty() {
        return;
    }
    let calls: Vec<Bury> = orphans.iter().map(|b| shared.bury_call(b)).collect();
    let mut conn = shared.conn.clone();
    match scripts::run_all(&mut conn, &shared.keys, &calls).await {
        Ok(replies) => log_buried(shared, &orphans, replies),
        Err(e) => tracing::warn!("could not dead-letter orphan entries (will retry): {e}"),
    }
}

/// One WARN line per entry sent to the dead-letter queue, whichever way it got there.
fn log_buried(
    shared: &Shared,
    buries: &[BuryPlan],
    replies: impl IntoIterator<Item = Result<BuryReply, ScriptError>>,
) {
    for (bury, reply) in buries.iter().zip(replies) {
        match reply {
            Ok(BuryReply::Skipped) => tracing::debug!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                "removed a duplicate entry of a job that moved on"
            ),
            Ok(BuryReply::Buried) => {
                shared
                    .series(&bury.fetched.queue, UNKNOWN_TYPE)
                    .count(MetricOutcome::Malformed);
                tracing::warn!(
                    queue = %bury.fetched.queue,
                    entry = %bury.fetched.entry.entry_id,
                    reason = %bury.reason,
                    "dead-lettered a malformed entry"
                )
            }
            Err(e) => tracing::warn!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                "could not dead-letter an entry (will retry): {e}"
            ),
        }
    }
}

/// Counts an attempt that is about to run, and how long its entry waited for it. An entry
/// delivered before went to a worker that stopped: its job was reclaimed. A later attempt
/// on a fresh entry follows a failure (a hand-back is not charged an attempt): a retry.
fn count_start(attempt: &Attempt, delivery: u32) {
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
fn begin(
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

impl Shared {
    fn bury_call<'a>(&self, plan: &'a BuryPlan) -> Bury<'a> {
        Bury {
            queue: &plan.fetched.queue,
            entry: &plan.fetched.entry,
            reason: &plan.reason,
            dead_retention_ms: millis(self.config.jobs.retention.dead),
            dead_max_len: self.config.jobs.retention.dead_max_len,
        }
    }

    /// One `start` call for a queue's entries.
    fn start_call<'a>(&'a self, queue: &'a str, plans: &'a [StartPlan]) -> Start<'a> {
        let config = &self.config;
        Start {
            queue,
            consumer: &self.worker_id,
            dead_retention_ms: millis(config.jobs.retention.dead),
            dead_max_len: config.jobs.retention.dead_max_len,
            entries: plans
                .iter()
                .map(|plan| StartEntry {
                    entry_id: &plan.fetched.entry.entry_id,
                    job_id: &plan.job_id,
                    lease: &plan.lease,
                    raw: plan.fields.job_type.is_some().then_some(RawJob {
                        fields: &plan.fields,
                        default_max_attempts: config.jobs.defaults.max_attempts,
                        default_timeout_ms: millis(config.jobs.defaults.timeout),
                        default_backoff: &config.jobs.defaults.backoff,
                    }),
                })
                .collect(),
        }
    }
}
