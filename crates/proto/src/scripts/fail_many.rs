//! The binding of `fail_many`: the failed fast-path attempts of one queue that are retried
//! without a record, in one call, as `fail` would retry each.

use std::time::Duration;

use super::fast::entry_range;
use super::reply::{items, text};
use super::{Call, FAIL_MANY, FailReply, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys};

/// Retry failed fast-path attempts of one queue without a record. Pass only attempts
/// with attempts left and a retry delay; the others, and any this answers
/// [`FailManyReply::One`] for, go through [`super::Fail`].
#[derive(Debug, Clone)]
pub struct FailMany<'a> {
    /// The queue (or partition) the attempts ran on.
    pub queue: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// The failed attempts, each answered in order.
    pub items: Vec<FailManyItem<'a>>,
}

/// One failed attempt of a [`FailMany`] batch.
#[derive(Debug, Clone)]
pub struct FailManyItem<'a> {
    /// The job's id: its own, or its entry id for a job without one.
    pub job_id: &'a str,
    /// The stream entry that carries the job.
    pub entry_id: &'a str,
    /// The entry's delivery count when the attempt began: it is current while its entry
    /// is pending under this worker at that count.
    pub delivery: u32,
    /// The number of the attempt that failed, counting from 1.
    pub attempt: u32,
    /// How long to wait before the retry, at most the longest duration a job may name.
    pub retry_after: Duration,
    /// The error message, kept with the job's errors so far.
    pub error: &'a str,
}

/// What `fail_many` did with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailManyReply {
    /// Retried, stale or gone, as `fail` would answer.
    Landed(FailReply),
    /// Its job has a record, or its entry was deleted while it ran: send it through
    /// `fail`, which decides.
    One,
}

impl ScriptCall for FailMany<'_> {
    /// One reply per item, in order.
    type Reply = Vec<FailManyReply>;
    const NAME: &'static str = "fail_many";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let (low, high) = entry_range(self.items.iter().map(|item| item.entry_id));
        let mut call = Call::new(&FAIL_MANY)
            .key(keys.stream(q))
            .key(keys.later(q))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(keys.job_prefix(q))
            .arg(low)
            .arg(high);
        for item in &self.items {
            // As `fail`, a delay waits at most the longest duration a job may name.
            let delay = crate::millis(item.retry_after).min(crate::MAX_DURATION_MS);
            call = call
                .arg(item.entry_id)
                .arg(item.job_id)
                .arg(item.delivery)
                .arg(item.attempt)
                .arg(delay)
                .arg(item.error);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Vec<FailManyReply>, ScriptError> {
        let bad = || ScriptError::reply(Self::NAME, &value);
        items(value.clone())
            .ok_or_else(bad)?
            .iter()
            .map(|part| {
                let word = text(part).ok_or_else(bad)?;
                Ok(match word.as_str() {
                    "one" => FailManyReply::One,
                    "stale" => FailManyReply::Landed(FailReply::Stale),
                    "gone" => FailManyReply::Landed(FailReply::Gone),
                    "missing" => FailManyReply::Landed(FailReply::Missing),
                    due => FailManyReply::Landed(FailReply::Retry {
                        due_ms: due.parse().map_err(|_| bad())?,
                    }),
                })
            })
            .collect()
    }
}
