//! The bindings that end an attempt: `complete` (a batch of one queue per call), `fail`
//! and `handback`. Each applies only while the attempt is current (rule 3): its lease
//! matches its record, or, on the fast path, its entry is still its worker's at the
//! delivery count it began with.

use std::time::Duration;

use super::fast::{entry_range, fast_args};
use super::reply::{int, items, text};
use super::{COMPLETE, Call, FAIL, FastJob, HANDBACK, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys, Status};

/// How an attempt's outcome landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReply {
    /// The outcome is recorded.
    Ok,
    /// The lease is no longer this attempt's (another worker reclaimed the job): dropped.
    Stale,
    /// A fast-path job's entry was deleted from its stream while it ran (a worker that
    /// reclaimed it finished it, or it was deleted by hand): dropped.
    Gone,
    /// The job was cancelled while it ran.
    Cancelled,
    /// The record is gone (Redis lost its data, or it was deleted): dropped.
    Missing,
}

impl FinishReply {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "ok" => FinishReply::Ok,
            "stale" => FinishReply::Stale,
            "gone" => FinishReply::Gone,
            "cancelled" => FinishReply::Cancelled,
            "missing" => FinishReply::Missing,
            _ => return None,
        })
    }
}

/// Finish a queue's attempts successfully.
#[derive(Debug, Clone)]
pub struct Complete<'a> {
    /// The queue (or partition) the attempts ran on.
    pub queue: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// How long completed records are kept.
    pub retention_ms: u64,
    /// How many completed records of the queue are kept at most.
    pub max_len: u64,
    /// The successful attempts, each answered in order.
    pub items: Vec<CompleteItem<'a>>,
}

/// One successful attempt.
#[derive(Debug, Clone)]
pub struct CompleteItem<'a> {
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that delivered the attempt, acknowledged and removed.
    pub entry_id: &'a str,
    /// The attempt's lease token, which fences an attempt that has a record (not sent
    /// when `delivery` is above 0).
    pub lease: &'a str,
    /// The result's JSON text, empty for none.
    pub result: &'a str,
    /// For a fast-path attempt (no record), its entry's delivery count when it began;
    /// 0 for an attempt that has a record.
    pub delivery: u32,
    /// The job's type, written to its `done` entry.
    pub job_type: &'a str,
    /// This attempt's number, counting from 1, written to its `done` entry.
    pub attempt: u32,
    /// How long the handler ran, in ms.
    pub run_ms: u64,
}

impl ScriptCall for Complete<'_> {
    /// One reply per item, in order.
    type Reply = Vec<FinishReply>;
    const NAME: &'static str = "complete";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let mut call = Call::new(&COMPLETE)
            .key(keys.stream(q))
            .key(keys.index(q, Status::Completed))
            .key(keys.done(q))
            .key(keys.done_ids(q))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(self.retention_ms)
            .arg(self.max_len);
        let (low, high) = entry_range(
            self.items
                .iter()
                .filter(|item| item.delivery > 0)
                .map(|item| item.entry_id),
        );
        call = call.arg(low).arg(high).arg(keys.job_prefix(q));
        for item in &self.items {
            // A fast-path attempt is fenced by its delivery count, and named by its entry
            // unless it has an id of its own; one with a record by its job id and lease.
            let job_id = if item.delivery > 0 && item.job_id == item.entry_id {
                ""
            } else {
                item.job_id
            };
            call = call
                .arg(job_id)
                .arg(item.entry_id)
                .arg(item.delivery)
                .arg(if item.delivery > 0 { "" } else { item.lease })
                .arg(item.result)
                .arg(item.job_type)
                .arg(item.attempt)
                .arg(item.run_ms);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Vec<FinishReply>, ScriptError> {
        // One string of space-separated words; an empty batch answers an empty string.
        text(&value)
            .and_then(|text| {
                text.split_ascii_whitespace()
                    .map(FinishReply::from_word)
                    .collect()
            })
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}

/// End an attempt with an error: retry after a delay, or give up.
#[derive(Debug, Clone)]
pub struct Fail<'a> {
    /// The queue (or partition) the attempt ran on.
    pub queue: &'a str,
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that delivered the attempt.
    pub entry_id: &'a str,
    /// The attempt's lease token, which fences an attempt that has a record: the failure
    /// lands only while the record holds it.
    pub lease: &'a str,
    /// The error message, recorded as the job's last error.
    pub error: &'a str,
    /// `None` gives up now (dead); a delay retries (dead anyway if attempts are spent).
    pub retry_after: Option<Duration>,
    /// How long a job that goes dead here keeps its record and dead-letter entry, in ms.
    pub dead_retention_ms: u64,
    /// How many entries the queue's dead-letter stream keeps at most (and as many dead
    /// records).
    pub dead_max_len: u64,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// A fast-path attempt's job, which gets its record here, and the delivery count the
    /// attempt is current at.
    pub fast: Option<&'a FastJob>,
    /// The entry's delivery count when a fast-path attempt began; read only with `fast`.
    pub delivery: u32,
    /// For a snooze, the most snoozes a job may take (`limits.max_snoozes`): the attempt
    /// waits `retry_after` without being counted, unless the job was snoozed that many
    /// times already. 0 for a failure.
    pub snooze_limit: u32,
}

/// What `fail` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReply {
    /// Retrying at this time (ms).
    Retry {
        /// When the next attempt is due, ms since the Unix epoch on the server's clock.
        due_ms: u64,
    },
    /// Snoozed: the attempt was not counted, and the job runs again at this time (ms).
    Snoozed {
        /// When it runs again, ms since the Unix epoch on the server's clock.
        due_ms: u64,
    },
    /// No retry: the job is dead and in the dead-letter queue.
    Dead {
        /// The error recorded, with a note of the attempts spent when they ran out.
        reason: String,
    },
    /// As [`FinishReply::Stale`].
    Stale,
    /// As [`FinishReply::Gone`].
    Gone,
    /// As [`FinishReply::Cancelled`]: the error is dropped.
    Cancelled,
    /// As [`FinishReply::Missing`].
    Missing,
}

impl ScriptCall for Fail<'_> {
    type Reply = FailReply;
    const NAME: &'static str = "fail";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        // A handler's delay (a Retry-After, say) waits at most the longest duration a job
        // may name, so the script's arithmetic stays on whole numbers.
        let delay = self.retry_after.map_or(-1, |d| {
            i64::try_from(crate::millis(d).min(crate::MAX_DURATION_MS)).unwrap_or(i64::MAX)
        });
        let call = Call::new(&FAIL)
            .key(keys.stream(q))
            .key(keys.job(q, self.job_id))
            .key(keys.delayed(q))
            .key(keys.dead(q))
            .key(keys.index(q, Status::Dead))
            .key(keys.later(q))
            .arg(self.entry_id)
            .arg(CONSUMER_GROUP)
            .arg(self.lease)
            .arg(self.error)
            .arg(delay)
            .arg(self.dead_retention_ms)
            .arg(self.dead_max_len)
            .arg(self.consumer)
            .arg(self.job_id)
            .arg(q)
            .arg(self.snooze_limit);
        fast_args(call, self.delivery, self.fast)
    }

    fn parse(value: redis::Value) -> Result<FailReply, ScriptError> {
        let bad = || ScriptError::reply(Self::NAME, &value);
        let parts = items(value.clone()).ok_or_else(bad)?;
        let word = parts.first().and_then(text).ok_or_else(bad)?;
        let due_ms = || {
            parts
                .get(1)
                .and_then(int)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(bad)
        };
        Ok(match word.as_str() {
            "retry" => FailReply::Retry { due_ms: due_ms()? },
            "snoozed" => FailReply::Snoozed { due_ms: due_ms()? },
            "dead" => FailReply::Dead {
                reason: parts.get(1).and_then(text).unwrap_or_default(),
            },
            "stale" => FailReply::Stale,
            "gone" => FailReply::Gone,
            "cancelled" => FailReply::Cancelled,
            "missing" => FailReply::Missing,
            _ => return Err(bad()),
        })
    }
}

/// Return a running job to its stream at shutdown, attempt not charged.
#[derive(Debug, Clone)]
pub struct HandBack<'a> {
    /// The queue (or partition) the attempt runs on.
    pub queue: &'a str,
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that delivered the attempt.
    pub entry_id: &'a str,
    /// The attempt's lease token, which fences an attempt that has a record: the job goes
    /// back only while the record holds it.
    pub lease: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// A fast-path attempt's job, which gets its record here, and the delivery count the
    /// attempt is current at.
    pub fast: Option<&'a FastJob>,
    /// The entry's delivery count when a fast-path attempt began; read only with `fast`.
    pub delivery: u32,
}

impl ScriptCall for HandBack<'_> {
    type Reply = FinishReply;
    const NAME: &'static str = "handback";

    fn call(&self, keys: &Keys) -> Call {
        let call = Call::new(&HANDBACK)
            .key(keys.stream(self.queue))
            .key(keys.job(self.queue, self.job_id))
            .arg(self.entry_id)
            .arg(CONSUMER_GROUP)
            .arg(self.lease)
            .arg(self.consumer)
            .arg(self.job_id)
            .arg(self.queue);
        fast_args(call, self.delivery, self.fast)
    }

    fn parse(value: redis::Value) -> Result<FinishReply, ScriptError> {
        text(&value)
            .and_then(|w| FinishReply::from_word(&w))
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}
