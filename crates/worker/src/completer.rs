//! Writes attempt outcomes (complete, fail, hand back) to Redis in batches: many jobs'
//! outcomes go in one pipeline, and a write that fails while Redis is away is retried
//! until it lands or its lease is gone.

use std::time::Duration;

use flotilla_proto::Keys;
use flotilla_proto::scripts::{self, Call};
use flotilla_proto::{CONSUMER_GROUP, Status};
use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::WorkerConfig;
use crate::inflight::{Attempt, InFlight};

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

/// One outcome on its way to Redis. The concurrency permit is held until it lands.
#[derive(Debug)]
pub(crate) struct Completion {
    pub attempt: Attempt,
    pub outcome: Outcome,
    pub permit: OwnedSemaphorePermit,
}

/// Outcomes per pipeline.
const BATCH: usize = 256;

pub(crate) struct Completer {
    pub conn: ConnectionManager,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub inflight: InFlight,
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
                tracing::warn!(job = %c.attempt.job_id, queue = %c.attempt.queue, "attempt abandoned: {why}");
            }
            self.inflight.remove(&c.attempt.lease);
        }
        let mut delay = Duration::from_millis(50);
        while !to_write.is_empty() {
            let (groups, commands) = self.calls(&to_write);
            let mut conn = self.conn.clone();
            match scripts::exec_pipeline(&mut conn, &commands).await {
                Ok(replies) => {
                    let mut slots: Vec<Option<Completion>> =
                        to_write.into_iter().map(Some).collect();
                    let mut retry = Vec::new();
                    for (group, reply) in groups.iter().zip(replies) {
                        // A batched `complete` answers one word per attempt; others one reply.
                        let answers: Vec<redis::RedisResult<redis::Value>> = match reply {
                            Ok(redis::Value::Array(words)) if is_batch(&slots, group) => {
                                words.into_iter().map(Ok).collect()
                            }
                            other => vec![other],
                        };
                        for (&index, answer) in
                            group
                                .iter()
                                .zip(answers.into_iter().chain(std::iter::repeat_with(|| {
                                    Err(redis::RedisError::from((
                                        redis::ErrorKind::Client,
                                        "missing reply",
                                    )))
                                })))
                        {
                            let Some(completion) = slots[index].take() else {
                                continue;
                            };
                            match answer {
                                Ok(value) => self.landed(completion, &value),
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
    fn calls(&self, batch: &[Completion]) -> (Vec<Vec<usize>>, Vec<redis::Cmd>) {
        let mut completes: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut groups = Vec::new();
        let mut commands = Vec::new();
        for (index, c) in batch.iter().enumerate() {
            if matches!(c.outcome, Outcome::Completed(_)) {
                match completes.iter_mut().find(|(q, _)| *q == c.attempt.queue) {
                    Some((_, indices)) => indices.push(index),
                    None => completes.push((&c.attempt.queue, vec![index])),
                }
            } else if let Some(call) = self.single_call(c) {
                groups.push(vec![index]);
                commands.push(call.cmd());
            }
        }
        for (queue, indices) in completes {
            let mut call = Call::new(&scripts::COMPLETE)
                .key(self.keys.stream(queue))
                .key(self.keys.index(queue, Status::Completed))
                .arg(CONSUMER_GROUP)
                .arg(self.config.retention.as_millis() as u64);
            for &index in &indices {
                let c = &batch[index];
                let result = match &c.outcome {
                    Outcome::Completed(Some(text)) => text.as_str(),
                    _ => "",
                };
                call = call
                    .key(self.keys.job(queue, &c.attempt.job_id))
                    .arg(&c.attempt.entry_id)
                    .arg(&c.attempt.lease)
                    .arg(result);
            }
            groups.push(indices);
            commands.push(call.cmd());
        }
        (groups, commands)
    }

    /// The call for a failure or hand-back; successes are batched by `calls`.
    fn single_call(&self, c: &Completion) -> Option<Call> {
        let a = &c.attempt;
        let (keys, config) = (&self.keys, &self.config);
        match &c.outcome {
            Outcome::Failed { error, delay } => Some(
                Call::new(&scripts::FAIL)
                    .key(keys.stream(&a.queue))
                    .key(keys.job(&a.queue, &a.job_id))
                    .key(keys.delayed(&a.queue))
                    .key(keys.dead(&a.queue))
                    .key(keys.index(&a.queue, Status::Dead))
                    .arg(&a.entry_id)
                    .arg(CONSUMER_GROUP)
                    .arg(&a.lease)
                    .arg(error)
                    .arg(delay.map_or(-1, |d| d.as_millis() as i64))
                    .arg(config.dead_retention.as_millis() as u64)
                    .arg(config.dead_max_len),
            ),
            Outcome::HandBack => Some(
                Call::new(&scripts::HANDBACK)
                    .key(keys.stream(&a.queue))
                    .key(keys.job(&a.queue, &a.job_id))
                    .arg(&a.entry_id)
                    .arg(CONSUMER_GROUP)
                    .arg(&a.lease),
            ),
            Outcome::Completed(_) | Outcome::Abandoned(_) => None,
        }
    }

    fn landed(&self, c: Completion, reply: &redis::Value) {
        let a = &c.attempt;
        let reply = describe(reply);
        match (&c.outcome, reply.as_str()) {
            (_, "missing") => tracing::warn!(
                job = %a.job_id, queue = %a.queue,
                "the job's record is gone (Redis restarted without its data, or the record was deleted): this attempt's outcome is dropped"
            ),
            (_, "stale") => tracing::warn!(
                job = %a.job_id, queue = %a.queue,
                "lease lost (the job was reclaimed by another worker): this attempt's outcome is dropped"
            ),
            (_, "cancelled") => {
                tracing::info!(job = %a.job_id, queue = %a.queue, "job was cancelled while running")
            }
            (Outcome::Completed(_), _) => tracing::debug!(job = %a.job_id, "completed"),
            // The error is shown escaped: a handler's stderr must not write log lines.
            (Outcome::Failed { error, .. }, r) if r.starts_with("dead") => {
                tracing::warn!(job = %a.job_id, queue = %a.queue, error = %error.escape_debug(), "job is dead")
            }
            (Outcome::Failed { error, .. }, _) => {
                tracing::info!(job = %a.job_id, queue = %a.queue, error = %error.escape_debug(), "attempt failed, will retry")
            }
            (Outcome::HandBack, _) => {
                tracing::info!(job = %a.job_id, queue = %a.queue, "handed back for another worker")
            }
            (Outcome::Abandoned(_), _) => {}
        }
        self.inflight.remove(&a.lease);
        drop(c.permit);
    }
}

/// A script reply as words ("ok", "stale", "dead reason…").
fn describe(value: &redis::Value) -> String {
    match value {
        redis::Value::Array(items) => {
            let words: Vec<String> = items.iter().map(describe).collect();
            words.join(" ")
        }
        other => redis::from_redis_value_ref::<String>(other).unwrap_or_default(),
    }
}

/// True when the call covering `group` is a batched `complete`.
fn is_batch(slots: &[Option<Completion>], group: &[usize]) -> bool {
    group
        .first()
        .and_then(|&i| slots[i].as_ref())
        .is_some_and(|c| matches!(c.outcome, Outcome::Completed(_)))
}
