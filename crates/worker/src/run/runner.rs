//! Running one attempt: the handler under its timeout, cancellation and panics caught,
//! and its answer turned into the outcome the completer writes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::scripts::StartedJob;
use flotilla_proto::{Backoff, ContentType, Payload};
use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::metrics::Outcome as MetricOutcome;
use crate::run::completer::{Completion, Outcome};
use crate::run::inflight::Attempt;
use crate::shared::Shared;
use crate::{HandlerError, JobContext, NextStep};

/// How long a cancelled handler may take to return before it is dropped.
const CANCEL_CLEANUP: Duration = Duration::from_secs(2);

/// Runs one started attempt under its span and hands the outcome to the completer.
pub(crate) async fn run_attempt(
    shared: Arc<Shared>,
    mut attempt: Attempt,
    started: StartedJob,
    permit: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!(
        "job",
        id = %attempt.job_id,
        r#type = %started.job_type,
        queue = %attempt.queue,
        attempt = started.attempt,
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    // The producer's enqueue span (or any W3C traceparent another language wrote) is
    // this run's parent, on every attempt.
    flotilla_proto::trace_context::continue_in(&span, &started.trace);
    // With tracing on, the run's lines (the handler's included) name its trace and span.
    if let Some((trace_id, span_id)) = flotilla_proto::trace_context::ids_of(&span) {
        span.record("trace_id", trace_id.as_str());
        span.record("span_id", span_id.as_str());
        attempt.trace_id = Some(trace_id.into());
    }
    let outcome = execute(&shared, &attempt, started)
        .instrument(span.clone())
        .await;
    span.record("outcome", outcome.label());
    let run_time = attempt.began.elapsed();
    shared.pace.record(run_time);
    attempt.series.ran(run_time);
    if matches!(outcome, Outcome::Abandoned(_)) {
        // Nothing is written for it, so it is counted here, for why it was stopped.
        let why = attempt.stopped_for.get().copied();
        attempt
            .series
            .count(why.unwrap_or(MetricOutcome::Cancelled));
    }
    let completion = Completion {
        attempt,
        outcome,
        run_time,
    };
    if shared.completions.send(completion).await.is_err() {
        tracing::error!(
            "outcome writer stopped before the job finished; its entry stays pending for reclaim"
        );
    }
    // The slot frees once the outcome is queued for writing, not once it has landed: the
    // next job starts while this one's completion is on its way, instead of a round trip
    // later. The queue is bounded, so outcomes waiting out a Redis outage stay bounded.
    drop(permit);
}

/// Runs the handler for one attempt and decides what its answer means.
async fn execute(shared: &Shared, attempt: &Attempt, mut started: StartedJob) -> Outcome {
    let backoff: Backoff = started
        .backoff
        .clone()
        .unwrap_or_else(|| shared.config.jobs.defaults.backoff.clone());
    let payload = std::mem::take(&mut started.payload);
    let ctx = match job_context(shared, attempt, &started, payload) {
        Ok(ctx) => ctx,
        Err(outcome) => return outcome,
    };
    let Some(handler) = shared.registry.get(&started.job_type) else {
        let error = format!(
            "no handler for type {} on worker {}",
            started.job_type, shared.worker_id
        );
        return failed(&HandlerError::retry(error), &backoff, started.attempt);
    };
    let timeout = ctx.timeout;
    let run = AssertUnwindSafe(handler.call(ctx)).catch_unwind();
    let mut run = std::pin::pin!(tokio::time::timeout(timeout, run));
    let answer = tokio::select! {
        biased;
        _ = shared.handback.cancelled() => return Outcome::HandBack,
        _ = attempt.cancel.cancelled() => {
            // A handler that watches its token gets a moment to clean up; one that does not
            // is dropped (an exec child is killed with it).
            let _ = tokio::time::timeout(CANCEL_CLEANUP, &mut run).await;
            return Outcome::Abandoned("cancelled, or the lease was lost");
        }
        answer = &mut run => answer,
    };
    let answer = match answer {
        Err(_) => Err(HandlerError::retry(format!(
            "timed out after {}",
            humantime_secs(timeout)
        ))),
        Ok(Err(panic)) => Err(HandlerError::retry(format!(
            "handler panicked: {}",
            panic_message(&panic)
        ))),
        Ok(Ok(answer)) => answer,
    };
    match answer {
        Ok(value) => bounded_result(value, shared.config.jobs.limits.max_result_bytes),
        Err(failure) => failed(&failure, &backoff, started.attempt),
    }
}

/// What the handler is handed, or the outcome when the stored job cannot be run at all
/// (retrying would meet the same content type and bytes).
fn job_context(
    shared: &Shared,
    attempt: &Attempt,
    started: &StartedJob,
    payload: Vec<u8>,
) -> Result<JobContext, Outcome> {
    let fail_for_good = |error: String| Outcome::Failed { error, delay: None };
    let content_type = started
        .content_type
        .parse::<ContentType>()
        .map_err(|e| fail_for_good(e.to_string()))?;
    let payload = Payload {
        content_type,
        bytes: payload,
    };
    // A fast-path job's payload was checked, under the same limit, when its entry was
    // decoded; one started from its record is checked here.
    if attempt.fast.is_none() {
        payload
            .validate(shared.config.jobs.limits.max_payload_bytes)
            .map_err(|e| fail_for_good(format!("bad payload: {e}")))?;
    }
    // Every record written since timeouts of 0 were refused has one; an older record
    // without it gets the default.
    let timeout = match started.timeout_ms {
        0 => shared.config.jobs.defaults.timeout,
        ms => Duration::from_millis(ms),
    };
    Ok(JobContext {
        id: attempt.job_id.clone(),
        job_type: started.job_type.clone(),
        queue: attempt.queue.clone(),
        attempt: started.attempt,
        max_attempts: started.max_attempts,
        snoozes: started.snoozes,
        timeout,
        payload,
        max_result_bytes: shared.config.jobs.limits.max_result_bytes,
        cancel: attempt.cancel.clone(),
        span: tracing::Span::current(),
        conn: shared.conn.clone(),
        keys: shared.keys.clone(),
        lease: attempt.lease.clone(),
        entry_id: attempt.entry_id.clone(),
        consumer: shared.worker_id.clone(),
        fast: attempt.fast.clone(),
        delivery: Arc::clone(&attempt.delivery),
    })
}

/// A failed attempt as the handler asked: retried after the backoff or its own delay,
/// failed for good, or snoozed.
fn failed(failure: &HandlerError, backoff: &Backoff, attempt: u32) -> Outcome {
    let delay = match failure.next_step() {
        NextStep::Retry => Some(backoff.delay_random(attempt)),
        NextStep::RetryAfter(delay) => Some(delay),
        NextStep::GiveUp => None,
        NextStep::Snooze(delay) => {
            return Outcome::Snoozed {
                delay,
                note: failure.message(),
            };
        }
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
