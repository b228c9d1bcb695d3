//! Turning fetched entries into running attempts: bury what cannot be decoded, start the
//! rest in one pipeline, run each handler under its timeout, and hand the outcome to the
//! completer.

use flotilla_proto::millis;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::scripts::{
    self, Bury, BuryReply, RawJob, ScriptCall, ScriptError, SkipReason, Start, StartEntry,
    StartReply, StartedJob,
};
use flotilla_proto::{Backoff, ContentType, EntryFields, Payload, new_lease_token};
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::completer::{Completion, Outcome};
use crate::fetch::Fetched;
use crate::inflight::Attempt;
use crate::worker::Shared;
use crate::{HandlerError, JobContext, NextStep, Shutdown};

/// How long a cancelled handler may take to return before it is dropped.
const CANCEL_CLEANUP: Duration = Duration::from_secs(2);

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

/// Starts every fetched entry and spawns its handler: one `start` call per queue for all
/// its entries, and the buries, in one pipeline. Waits for a concurrency slot for any
/// entry beyond `permits` (a blocking read may return one entry per queue); if shutdown
/// comes first, those entries stay pending for reclaim instead of holding up the drain.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    mut fetched: Vec<Fetched>,
    mut permits: Vec<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
    shutdown: &Shutdown,
) {
    while permits.len() < fetched.len() {
        tokio::select! {
            permit = Arc::clone(slots).acquire_owned() => match permit {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            },
            _ = shutdown.triggered() => break,
        }
    }
    fetched.truncate(permits.len());
    permits.truncate(fetched.len());

    let mut batches: Vec<(String, Vec<StartPlan>)> = Vec::new();
    let mut buries = Vec::new();
    for fetched in fetched {
        match fetched
            .entry
            .decode(shared.config.jobs.limits.max_payload_bytes)
        {
            Ok(fields) => {
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
                match batches.iter_mut().find(|(q, _)| *q == plan.fetched.queue) {
                    Some((_, plans)) => plans.push(plan),
                    None => batches.push((plan.fetched.queue.clone(), vec![plan])),
                }
            }
            Err(e) => buries.push(BuryPlan {
                fetched,
                reason: format!("malformed entry: {e}"),
            }),
        }
    }
    let keys = &shared.keys;
    let starts: Vec<Start> = batches
        .iter()
        .map(|(q, plans)| shared.start_call(q, plans))
        .collect();
    let bury_calls: Vec<Bury> = buries.iter().map(|b| shared.bury_call(b)).collect();
    let commands: Vec<redis::Cmd> = starts
        .iter()
        .map(|s| s.call(keys).cmd())
        .chain(bury_calls.iter().map(|b| b.call(keys).cmd()))
        .collect();
    let mut conn = shared.conn.clone();
    let mut replies = match scripts::exec_pipeline(&mut conn, &commands).await {
        Ok(replies) => replies.into_iter(),
        Err(e) => {
            // The entries stay pending under this worker; its reclaim pass retries them.
            tracing::warn!(
                entries = commands.len(),
                "could not start fetched entries: {e}"
            );
            return;
        }
    };
    drop(starts);
    let mut permits = permits.into_iter();
    let mut orphans = Vec::new();
    for (_, plans) in batches {
        let reply = replies.next().unwrap_or(Ok(redis::Value::Nil));
        let per_entry = match Start::parse_result(reply) {
            Ok(per_entry) => per_entry,
            Err(e) => {
                tracing::warn!(
                    entries = plans.len(),
                    "could not start entries (they will be retried): {e}"
                );
                continue;
            }
        };
        for (plan, reply) in plans.into_iter().zip(per_entry) {
            let Some(permit) = permits.next() else { break };
            if let Some(orphan) = begin(shared, plan, reply, permit) {
                orphans.push(orphan);
            }
        }
    }
    log_buried(&buries, replies.map(Bury::parse_result));
    if !orphans.is_empty() {
        let calls: Vec<Bury> = orphans.iter().map(|b| shared.bury_call(b)).collect();
        match scripts::run_all(&mut conn, keys, &calls).await {
            Ok(replies) => log_buried(&orphans, replies),
            Err(e) => tracing::warn!("could not dead-letter orphan entries (will retry): {e}"),
        }
    }
}

/// One WARN line per entry sent to the dead-letter queue, whichever way it got there.
fn log_buried(
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
            Ok(BuryReply::Buried) => tracing::warn!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                reason = %bury.reason,
                "dead-lettered a malformed entry"
            ),
            Err(e) => tracing::warn!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                "could not dead-letter an entry (will retry): {e}"
            ),
        }
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
        job_id,
        lease,
        ..
    } = plan;
    match reply {
        StartReply::Started(started) => {
            let attempt = Attempt {
                queue: fetched.queue,
                job_id,
                entry_id: fetched.entry.entry_id,
                lease,
                cancel: CancellationToken::new(),
            };
            shared.inflight.insert(attempt.clone());
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
            tracing::warn!(job = %job_id, queue = %fetched.queue, reason = %reason.escape_debug(), "poison pill dead-lettered");
            None
        }
        StartReply::Skipped(SkipReason::Orphan) => Some(BuryPlan {
            reason: format!("entry names job {job_id}, which has no record, and carries no type"),
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

async fn run_attempt(
    shared: Arc<Shared>,
    attempt: Attempt,
    started: StartedJob,
    permit: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!(
        "job",
        id = %attempt.job_id,
        r#type = %started.job_type,
        queue = %attempt.queue,
        attempt = started.attempt,
    );
    let outcome = execute(&shared, &attempt, started).instrument(span).await;
    let completion = Completion {
        attempt,
        outcome,
        permit,
    };
    if shared.completions.send(completion).await.is_err() {
        tracing::error!(
            "outcome writer stopped before the job finished; its entry stays pending for reclaim"
        );
    }
}

async fn execute(shared: &Shared, attempt: &Attempt, started: StartedJob) -> Outcome {
    let backoff: Backoff = started
        .backoff
        .parse()
        .unwrap_or_else(|_| shared.config.jobs.defaults.backoff.clone());
    let retry = |error: String| Outcome::Failed {
        error,
        delay: Some(backoff.delay_random(started.attempt)),
    };
    let content_type = match started.content_type.parse::<ContentType>() {
        Ok(ct) => ct,
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
                delay: None,
            };
        }
    };
    let payload = Payload {
        content_type,
        bytes: started.payload,
    };
    if let Err(e) = payload.validate(shared.config.jobs.limits.max_payload_bytes) {
        return Outcome::Failed {
            error: format!("bad payload: {e}"),
            delay: None,
        };
    }
    let Some(handler) = shared.registry.get(&started.job_type) else {
        return retry(format!(
            "no handler for type {} on worker {}",
            started.job_type, shared.worker_id
        ));
    };
    // Every record written since timeouts of 0 were refused has one; an older record
    // without it gets the default.
    let timeout = match started.timeout_ms {
        0 => shared.config.jobs.defaults.timeout,
        ms => Duration::from_millis(ms),
    };
    let max_result_bytes = shared.config.jobs.limits.max_result_bytes;
    let ctx = JobContext {
        id: attempt.job_id.clone(),
        job_type: started.job_type.clone(),
        queue: attempt.queue.clone(),
        attempt: started.attempt,
        max_attempts: started.max_attempts,
        timeout,
        payload,
        max_result_bytes,
        cancel: attempt.cancel.clone(),
        span: tracing::Span::current(),
        conn: shared.conn.clone(),
        keys: shared.keys.clone(),
        lease: attempt.lease.clone(),
    };
    let run = AssertUnwindSafe(handler.call(ctx)).catch_unwind();
    let mut run = std::pin::pin!(tokio::time::timeout(timeout, run));
    tokio::select! {
        biased;
        _ = shared.handback.cancelled() => Outcome::HandBack,
        _ = attempt.cancel.cancelled() => {
            // A handler that watches its token gets a moment to clean up; one that does not
            // is dropped (an exec child is killed with it).
            let _ = tokio::time::timeout(CANCEL_CLEANUP, &mut run).await;
            Outcome::Abandoned("cancelled, or the lease was lost")
        }
        result = &mut run => match result {
            Err(_) => retry(format!("timed out after {}", humantime_secs(timeout))),
            Ok(Err(panic)) => retry(format!("handler panicked: {}", panic_message(&panic))),
            Ok(Ok(Ok(value))) => bounded_result(value, max_result_bytes),
            Ok(Ok(Err(failure))) => failed(&failure, &backoff, started.attempt),
        },
    }
}

/// A failed attempt as the handler asked: retried after the backoff or its own delay, or
/// failed for good.
fn failed(failure: &HandlerError, backoff: &Backoff, attempt: u32) -> Outcome {
    let delay = match failure.next_step() {
        NextStep::Retry => Some(backoff.delay_random(attempt)),
        NextStep::RetryAfter(delay) => Some(delay),
        NextStep::GiveUp => None,
    };
    Outcome::Failed {
        error: failure.message(),
        delay,
    }
}

/// The result as the JSON text to store, or a failure (for good: the same work would give
/// the same result) when it is over the limit, so nothing over the limit reaches Redis.
fn bounded_result(value: Option<serde_json::Value>, limit: usize) -> Outcome {
    let Some(value) = value else {
        return Outcome::Completed(None);
    };
    let text = value.to_string();
    if text.len() > limit {
        return Outcome::Failed {
            error: format!(
                "result is {} bytes of JSON, over the limit of {limit} bytes (limits.max_result_bytes)",
                text.len()
            ),
            delay: None,
        };
    }
    Outcome::Completed(Some(text))
}

fn humantime_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned())
}
