//! Writes attempt outcomes (complete, fail, hand back) to Redis in batches: many jobs'
//! outcomes go in one pipeline, and a write that fails while Redis is away is retried
//! until it lands or its lease is gone.

use flotilla_proto::millis;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{
    self, Complete, CompleteItem, Fail, FailMany, FailManyItem, FailManyReply, FailReply,
    FinishReply, HandBack, ReleaseGroups, ScriptCall, ScriptError,
};
use flotilla_proto::tally::Tally;
use tokio::sync::mpsc;

use crate::WorkerConfig;
use crate::metrics::Outcome as MetricOutcome;
use crate::promoter::PromoteWake;
use crate::run::inflight::{Attempt, InFlight};

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
    /// The handler said "not yet": run again after `delay`, attempt not charged (unless
    /// the job took `limits.max_snoozes` snoozes already, when `note` is its error).
    Snoozed { delay: Duration, note: String },
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
    /// Told when a retry is due, so that the promoter moves it then.
    pub promote_wake: Arc<PromoteWake>,
}

impl Outcome {
    /// How the run ended, as its span records it.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed { delay: Some(_), .. } => "failed",
            Outcome::Failed { delay: None, .. } => "dead",
            Outcome::Snoozed { .. } => "snoozed",
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
        // Failures a batched retry handed on to `fail`, by lease.
        let mut singles = HashSet::new();
        // Completed jobs of groups, whose places go back once the batch is written.
        let mut releases = Vec::new();
        while !to_write.is_empty() {
            let calls = self.calls(&to_write, &singles);
            let commands: Vec<redis::Cmd> = calls.iter().map(|call| call.cmd.clone()).collect();
            let mut conn = self.conn.clone();
            let mut failed = true;
            match scripts::exec_pipeline(&mut conn, &commands).await {
                Ok(replies) => {
                    let mut slots: Vec<Option<Completion>> =
                        to_write.into_iter().map(Some).collect();
                    let mut retry = Vec::new();
                    failed = false;
                    for (call, reply) in calls.iter().zip(replies) {
                        for (&index, landed) in call.covers.iter().zip(parse(call, reply)) {
                            let Some(completion) = slots[index].take() else {
                                continue;
                            };
                            match landed {
                                Ok(Answer::ToFail) => {
                                    singles.insert(completion.attempt.lease.clone());
                                    retry.push(completion);
                                }
                                Ok(Answer::Landed(landed)) => {
                                    self.landed(completion, landed, &mut releases)
                                }
                                Err(e) => {
                                    tracing::warn!(job = %completion.attempt.job_id, "outcome not recorded, will retry: {e}");
                                    failed = true;
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
            if failed && !to_write.is_empty() {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        self.release_groups(releases);
    }

    /// The script calls for a batch: one `complete` per queue for all its successes, one
    /// `fail_many` per queue for its fast-path failures to retry without a record (unless
    /// `singles` names them), one call per other failure or hand-back.
    fn calls(&self, batch: &[Completion], singles: &HashSet<String>) -> Vec<OutcomeCall> {
        let mut completes: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut retries: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut calls = Vec::new();
        for (index, c) in batch.iter().enumerate() {
            let by_queue = if matches!(c.outcome, Outcome::Completed(_)) {
                Some(&mut completes)
            } else if retried_without_record(c) && !singles.contains(&c.attempt.lease) {
                Some(&mut retries)
            } else {
                None
            };
            match by_queue {
                Some(groups) => match groups.iter_mut().find(|(q, _)| *q == c.attempt.queue) {
                    Some((_, indices)) => indices.push(index),
                    None => groups.push((&c.attempt.queue, vec![index])),
                },
                None => {
                    if let Some(cmd) = self.single_call(c) {
                        let kind = match c.outcome {
                            Outcome::Failed { .. } | Outcome::Snoozed { .. } => CallKind::Fail,
                            _ => CallKind::HandBack,
                        };
                        calls.push(OutcomeCall {
                            kind,
                            covers: vec![index],
                            cmd,
                        });
                    }
                }
            }
        }
        for (queue, indices) in retries {
            calls.push(self.fail_many_call(batch, queue, indices));
        }
        for (queue, indices) in completes {
            calls.push(self.complete_call(batch, queue, indices));
        }
        calls
    }

    /// One `fail_many` call for the fast-path failures of `queue` at `indices` of `batch`.
    fn fail_many_call(
        &self,
        batch: &[Completion],
        queue: &str,
        indices: Vec<usize>,
    ) -> OutcomeCall {
        let items = indices
            .iter()
            .filter_map(|&index| {
                let c = &batch[index];
                let Outcome::Failed {
                    error,
                    delay: Some(delay),
                } = &c.outcome
                else {
                    return None;
                };
                let a = &c.attempt;
                Some(FailManyItem {
                    job_id: &a.job_id,
                    entry_id: &a.entry_id,
                    delivery: a.delivery(),
                    attempt: a.number,
                    retry_after: *delay,
                    error,
                })
            })
            .collect();
        let fail_many = FailMany {
            queue,
            consumer: &self.worker_id,
            items,
        };
        OutcomeCall {
            kind: CallKind::FailMany,
            cmd: fail_many.call(&self.keys).cmd(),
            covers: indices,
        }
    }

    /// One `complete` call for the successes of `queue` at `indices` of `batch`.
    fn complete_call(&self, batch: &[Completion], queue: &str, indices: Vec<usize>) -> OutcomeCall {
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
        OutcomeCall {
            kind: CallKind::Complete,
            cmd: complete.call(&self.keys).cmd(),
            covers: indices,
        }
    }

    /// The call for a failure or hand-back; successes are batched by `calls`.
    fn single_call(&self, c: &Completion) -> Option<redis::Cmd> {
        let a = &c.attempt;
        let keys = &self.keys;
        match &c.outcome {
            Outcome::Failed { error, delay } => Some(self.fail_call(a, error, *delay, 0)),
            Outcome::Snoozed { delay, note } => {
                Some(self.fail_call(a, note, Some(*delay), self.config.jobs.limits.max_snoozes))
            }
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

    /// The `fail` call for an attempt that failed (`snooze_limit` 0) or snoozed.
    fn fail_call(
        &self,
        a: &Attempt,
        error: &str,
        retry_after: Option<Duration>,
        snooze_limit: u32,
    ) -> redis::Cmd {
        Fail {
            queue: &a.queue,
            job_id: &a.job_id,
            entry_id: &a.entry_id,
            lease: &a.lease,
            error,
            retry_after,
            dead_retention_ms: millis(self.config.jobs.retention.dead),
            dead_max_len: self.config.jobs.retention.dead_max_len,
            consumer: &self.worker_id,
            fast: a.fast.as_deref(),
            delivery: a.delivery(),
            snooze_limit,
        }
        .call(&self.keys)
        .cmd()
    }

    fn landed(&self, c: Completion, landed: Landed, releases: &mut Vec<GroupRelease>) {
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
            (Landed::Fail(FailReply::Snoozed { .. }), _) => MetricOutcome::Snoozed,
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
            Landed::Fail(FailReply::Snoozed { due_ms }) => {
                crate::tallies::note(&self.conn, &self.keys, &a.queue, Tally::Snoozed, 1);
                if let Outcome::Snoozed { delay, .. } = &c.outcome
                    && !delay.is_zero()
                {
                    self.promote_wake.at(tokio::time::Instant::now() + *delay);
                }
                tracing::info!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), due_ms, "snoozed: runs again then, the attempt not counted")
            }
            Landed::Fail(FailReply::Retry { due_ms }) => {
                let (error, delay) = match &c.outcome {
                    Outcome::Failed { error, delay } => (error.as_str(), *delay),
                    // A snooze past the limit became a failed attempt.
                    Outcome::Snoozed { note, delay } => (note.as_str(), Some(*delay)),
                    _ => ("", None),
                };
                if let Some(delay) = delay.filter(|d| !d.is_zero()) {
                    self.promote_wake.at(tokio::time::Instant::now() + delay);
                }
                tracing::info!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), due_ms, error = %error.escape_debug(), "attempt failed, will retry")
            }
            Landed::Finish(FinishReply::Ok) => match c.outcome {
                Outcome::Completed(_) if a.group.is_some() => {
                    if let Some(group) = &a.group {
                        releases.push(GroupRelease {
                            queue: a.queue.clone(),
                            group: group.to_string(),
                            job_id: a.job_id.to_string(),
                        });
                    }
                    tracing::debug!(job = %a.job_id, queue = %a.queue, r#type = %a.job_type, attempt = a.number, trace_id = a.trace_id.as_deref(), "completed")
                }
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

/// A completed job of a group, whose place in its group's window goes back.
struct GroupRelease {
    queue: String,
    group: String,
    job_id: String,
}

impl Completer {
    /// Gives the places of a batch's completed grouped jobs back and lets their groups'
    /// next jobs through, one call per queue, in the background: a release that fails
    /// costs only time, as the next promote pass finds the jobs ended.
    fn release_groups(&self, releases: Vec<GroupRelease>) {
        let mut by_queue: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for release in releases {
            by_queue
                .entry(release.queue)
                .or_default()
                .push((release.group, release.job_id));
        }
        for (queue, released) in by_queue {
            let (mut conn, keys) = (self.conn.clone(), self.keys.clone());
            tokio::spawn(async move {
                let call = ReleaseGroups {
                    queue: &queue,
                    released: released
                        .iter()
                        .map(|(group, id)| (group.as_str(), id.as_str()))
                        .collect(),
                };
                if let Err(e) = scripts::run(&mut conn, &keys, &call).await {
                    tracing::debug!(%queue, jobs = released.len(), "could not release groups' places (the next promote pass will): {e}");
                }
            });
        }
    }
}

/// Whether a failure may be retried in a batch without a record: a fast-path attempt
/// with attempts left and a retry delay.
fn retried_without_record(c: &Completion) -> bool {
    let a = &c.attempt;
    matches!(c.outcome, Outcome::Failed { delay: Some(_), .. })
        && a.delivery() > 0
        && a.fast
            .as_ref()
            .is_some_and(|fast| a.number < fast.job.max_attempts)
}

/// Which script a call of a batch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Complete,
    FailMany,
    Fail,
    HandBack,
}

/// One script call of a batch, and the positions of the outcomes it covers.
struct OutcomeCall {
    kind: CallKind,
    covers: Vec<usize>,
    cmd: redis::Cmd,
}

/// How an outcome landed, by the script that wrote it.
enum Landed {
    Finish(FinishReply),
    Fail(FailReply),
}

/// What a call answered for one outcome.
enum Answer {
    Landed(Landed),
    /// Not written: a batched retry hands it on to `fail`.
    ToFail,
}

/// Reads the reply of `call`: one answer per outcome it covers. A short reply leaves the
/// rest to be written again.
fn parse(
    call: &OutcomeCall,
    reply: redis::RedisResult<redis::Value>,
) -> Vec<Result<Answer, ScriptError>> {
    let landed: Result<Vec<Answer>, ScriptError> = match call.kind {
        CallKind::Complete => Complete::parse_result(reply).map(|replies| {
            replies
                .into_iter()
                .map(|reply| Answer::Landed(Landed::Finish(reply)))
                .collect()
        }),
        CallKind::FailMany => FailMany::parse_result(reply).map(|replies| {
            replies
                .into_iter()
                .map(|reply| match reply {
                    FailManyReply::Landed(landed) => Answer::Landed(Landed::Fail(landed)),
                    FailManyReply::One => Answer::ToFail,
                })
                .collect()
        }),
        CallKind::Fail => {
            Fail::parse_result(reply).map(|landed| vec![Answer::Landed(Landed::Fail(landed))])
        }
        CallKind::HandBack => {
            HandBack::parse_result(reply).map(|landed| vec![Answer::Landed(Landed::Finish(landed))])
        }
    };
    let script = match call.kind {
        CallKind::Complete => "complete",
        CallKind::FailMany => "fail_many",
        CallKind::Fail => "fail",
        CallKind::HandBack => "handback",
    };
    match landed {
        Ok(landed) => {
            let mut landed: Vec<_> = landed.into_iter().map(Ok).collect();
            while landed.len() < call.covers.len() {
                landed.push(Err(ScriptError::Reply {
                    script,
                    reply: "too few answers".to_owned(),
                }));
            }
            landed
        }
        Err(e) => {
            let text = e.to_string();
            call.covers
                .iter()
                .map(|_| {
                    Err(ScriptError::Reply {
                        script,
                        reply: text.clone(),
                    })
                })
                .collect()
        }
    }
}
