//! Writes attempt outcomes (complete, fail, hand back) to Redis in batches: many jobs'
//! outcomes go in one pipeline, and a write that fails while Redis is away is retried
//! until it lands or its lease is gone.

use flotilla_proto::millis;
use std::time::Duration;

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{
    self, Complete, CompleteItem, Fail, FailReply, FinishReply, HandBack, ScriptCall, ScriptError,
};
use tokio::sync::mpsc;

use crate::WorkerConfig;
use crate::inflight::{Attempt, InFlight};
use crate::metrics::Outcome as MetricOutcome;

/// What to record about a finished attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Succeeded, with the result's JSON text (already within the result limit).
    Completed(Option<String>),
    /// Failed; retry after `delay`, or give up when `delay` is `None`.
    Failed {
        error: String,
        delay: Option<Duration>,
    },
    /// Not finished at shutdown: back to the stream, attempt not charged.
    HandBack,
    /// The job is no longer ours (cancelled, lease lost): nothing to write.
    Abandoned(&'static str),
}

/// One outcome on its way to Redis. Its attempt stays in flight (and its entry refreshed)
/// until it lands.
#[derive(Debug)]
pub(crate) struct Completion {
    pub attempt: Attempt,
    pub outcome: Outcome,
    /// How long the handler ran.
    pub run_time: Duration,
}

/// Outcomes per pipeline.
const BATCH: usize = 256;

pub(crate) struct Completer {
    pub conn: SharedConnection,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub inflight: InFlight,
    /// This worker's consumer name.
    pub worker_id: String,
}

impl Outcome {
    /// How the run ended, as its span records it.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed { delay: Some(_), .. } => "failed",
            Outcome::Failed { delay: None, .. } => "dead",
            Outcome::HandBack => "handed_back",
            Outcome::Abandoned(_) => "stopped",
        }
    }
}

impl Completer {
    /// Runs until every sender is gone and the queue is empty.
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<Completion>) {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&self, batch: Vec<Completion>) {
        let (mut to_write, abandoned): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|c| !matches!(c.outcome, Outcome::Abandoned(_)));
        for c in abandoned {
            if let Outcome::Abandoned(why) = c.outcome {
                tracing::warn!(job = %c.attempt.job_id, queue = %c.attempt.queue, r#type = %c.attempt.job_type, attempt = c.attempt.number, "attempt abandoned: {why}");
            }
            self.inflight.remove(&c.attempt.lease);
        }
        let mut delay = Duration::from_millis(50);
        while !to_write.is_empty() {
            let calls = self.calls(&to_write);
            let commands: Vec<redis::Cmd> = calls.iter().map(|(_, cmd)| cmd.clone()).collect();
            let mut conn = self.conn.clone();
            match scripts::exec_pipeline(&mut conn, &commands).await {
                Ok(replies) => {
                    let mut slots: Vec<Option<Completion>> =
                        to_write.into_iter().map(Some).collect();
                    let mut retry = Vec::new();
                    for ((group, _), reply) in calls.iter().zip(replies) {
                        for (&index, landed) in group.iter().zip(parse(&slots, group, reply)) {
                            let Some(completion) = slots[index].take() else {
                                continue;
                            };
                            match landed {
                                Ok(landed) => self.landed(completion, landed),
                                Err(e) => {
                                    tracing::warn!(job = %completion.attempt.job_id, "outcome not recorded, will retry: {e}");
                                    retry.push(completion);
                                }
                            }
                        }
                    }
                    to_write = retry;
                }
                Err(e) => {
                    tracing::warn!(
                        jobs = to_write.len(),
                        "redis unavailable, retrying outcome writes in {delay:?}: {e}"
                    );
                }
            }
            if !to_write.is_empty() {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }

    /// The script calls for a batch: one `complete` per queue for all its successes, one
    /// call per failure or hand-back. Returns the completions each call covers.
    fn calls(&self, batch: &[Completion]) -> Vec<(Vec<usize>, redis::Cmd)> {
        let mut completes: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut calls = Vec::new();
        for (index, c) in batch.iter().enumerate() {
            if matches!(c.outcome, Outcome::Completed(_)) {
                match completes.iter_mut().find(|(q, _)| *q == c.attempt.queue) {
                    Some((_, indices)) => indices.push(index),
                    None => completes.push((&c.attempt.queue, vec![index])),
                }
            } else if let Some(cmd) = self.single_call(c) {
                calls.push((vec![index], cmd));
            }
        }
        for (queue, indices) in completes {
            let items = indices
                .iter()
                .map(|&index| {
                    let c = &batch[index];
                    let a = &c.attempt;
                    CompleteItem {
                        job_id: &a.job_id,
                        entry_id: &a.entry_id,
                        lease: &a.lease,
                        result: match &c.outcome {
                            Outcome::Completed(Some(text)) => text.as_str(),
                            _ => "",
                        },
                        delivery: a.delivery(),
                        job_type: &a.job_type,
                        attempt: a.number,
                        run_ms: millis(c.run_time),
                    }
                })
                .collect();
            let complete = Complete {
                queue,
                consumer: &self.worker_id,
                retention_ms: millis(self.config.jobs.retention.completed),
                max_len: self.config.jobs.retention.completed_max_len,
                items,
            };
            calls.push((indices, complete.call(&self.keys).cmd()));
        }
        calls
    }

    /// The call for a failure or hand-back; successes are batched by `calls`.
    fn single_call(&self, c: &Completion) -> Option<redis::Cmd> {
        let a = &c.attempt;
        let keys = &self.keys;
        match &c.outcome {
            Outcome::Failed { error, delay } => Some(
                Fail {
                    queue: &a.queue,
                    job_id: &a.job_id,
                    entry_id: &a.entry_id,
                    lease: &a.lease,
                    error,
                    retry_after: *delay,
                    dead_retention_ms: millis(self.config.jobs.retention.dead),
                    dead_max_len: self.config.jobs.retention.dead_max_len,
                    consumer: &self.worker_id,
                    fast: a.fast.as_deref(),
                    delivery: a.delivery(),
                }
                .call(keys)
                .cmd(),
            ),
            Outcome::HandBack => Some(
                HandBack {
                    queue: &a.queue,
                    job_id: &a.job_id,
                    entry_id: &a.entry_id,
                    lease: &a.lease,
                    consumer: &self.worker_id,
                    fast: a.fast.as_deref(),
                    delivery: a.delivery(),
                }
                .call(keys)
                .cmd(),
            ),
            Outcome::Completed(_) | Outcome::Abandoned(_) => None,
        }
    }

    fn landed(&self, c: Completion, landed: Landed) {
        let a = &c.attempt;
        a.series.count(match (&landed, &c.outcome) {
            (Landed::Finish(FinishReply::Missing) | Landed::Fail(FailReply::Missing), _) => {
                MetricOutcome::Lost
            }
            (
                Landed::Finish(FinishReply::Stale | FinishReply::Gone)
                | Landed::Fail(FailReply::Stale | FailReply::Gone),
                _,
            ) => MetricOutcome::Stale,
            (Landed::Finish(FinishReply::Cancelled) | Landed::Fail(FailReply::Cancelled), _) => {
                MetricOutcome::Cancelled
            }
            (Landed::Fail(FailReply::Dead { .. }), _) => MetricOutcome::Dead,
            (Landed::Fail(FailReply::Retry { .. }), _) => MetricOutcome::Failed,
            (Landed::Finish(FinishReply::Ok), Outcome::HandBack) => MetricOutcome::HandedBack,
            (Landed::Finish(FinishReply::Ok), _) => MetricOutcome::Completed,
        });
        match landed {
            Landed::Finish(FinishReply::Missing) | Landed::Fail(FailReply::Missing) => {
                tracing::warn!(
                    job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(),
                    "the job's record is gone (Redis restarted without its data, or the record was deleted): this attempt's outcome is dropped"
                )
            }
            Landed::Finish(FinishReply::Stale) | Landed::Fail(FailReply::Stale) => tracing::warn!(
                job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(),
                "lease lost (the job was reclaimed by another worker): this attempt's outcome is dropped"
            ),
            Landed::Finish(FinishReply::Gone) | Landed::Fail(FailReply::Gone) => tracing::warn!(
                job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(),
                "lease lost: the job's entry was deleted from its stream while it ran (a worker that reclaimed it finished it, or it was deleted by hand): this attempt's outcome is dropped"
            ),
            Landed::Finish(FinishReply::Cancelled) | Landed::Fail(FailReply::Cancelled) => {
                tracing::info!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), "job was cancelled while running")
            }
            // The error is shown escaped: a handler's stderr must not write log lines.
            Landed::Fail(FailReply::Dead { reason }) => {
                tracing::warn!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), error = %reason.escape_debug(), "job is dead")
            }
            Landed::Fail(FailReply::Retry { due_ms }) => {
                let error = match &c.outcome {
                    Outcome::Failed { error, .. } => error.as_str(),
                    _ => "",
                };
                tracing::info!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), due_ms, error = %error.escape_debug(), "attempt failed, will retry")
            }
            Landed::Finish(FinishReply::Ok) => match c.outcome {
                Outcome::HandBack => {
                    tracing::info!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), "handed back for another worker")
                }
                _ => {
                    tracing::debug!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), "completed")
                }
            },
        }
        self.inflight.remove(&a.lease);
    }
}

/// How an outcome landed, by the script that wrote it.
enum Landed {
    Finish(FinishReply),
    Fail(FailReply),
}

/// Reads the reply of the call covering `group`: one answer per completion in it.
fn parse(
    slots: &[Option<Completion>],
    group: &[usize],
    reply: redis::RedisResult<redis::Value>,
) -> Vec<Result<Landed, ScriptError>> {
    let outcome = group
        .first()
        .and_then(|&i| slots[i].as_ref())
        .map(|c| &c.outcome);
    let one = |landed: Result<Landed, ScriptError>| vec![landed];
    match outcome {
        Some(Outcome::Completed(_)) => match Complete::parse_result(reply) {
            Ok(replies) => {
                let mut landed: Vec<_> =
                    replies.into_iter().map(|r| Ok(Landed::Finish(r))).collect();
                // A short reply leaves the rest to be written again.
                while landed.len() < group.len() {
                    landed.push(Err(ScriptError::Reply {
                        script: "complete",
                        reply: "too few answers".to_owned(),
                    }));
                }
                landed
            }
            Err(e) => {
                let text = e.to_string();
                group
                    .iter()
                    .map(|_| {
                        Err(ScriptError::Reply {
                            script: "complete",
                            reply: text.clone(),
                        })
                    })
                    .collect()
            }
        },
        Some(Outcome::Failed { .. }) => one(Fail::parse_result(reply).map(Landed::Fail)),
        _ => one(HandBack::parse_result(reply).map(Landed::Finish)),
    }
}
