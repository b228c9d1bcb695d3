//! Bindings that move jobs outside an attempt: `promote` due delayed jobs, `cancel` a job,
//! `requeue` a stranded one, `put_back` entries of a paused queue, `forget_consumer` once
//! it owns nothing.

use std::time::Duration;

use super::reply::{flag, int, items, text, words};
use super::{
    CANCEL, Call, FORGET_CONSUMER, PROMOTE, PURGE, PUTBACK, REQUEUE, RETRY, ScriptCall, ScriptError,
};
use crate::{CONSUMER_GROUP, Keys, Status};

/// Move up to `limit` due jobs of a queue from `delayed` onto its stream (rule 7).
#[derive(Debug, Clone)]
pub struct Promote<'a> {
    /// The queue (or partition) whose due jobs move.
    pub queue: &'a str,
    /// How many due jobs are taken from each of `delayed` and `later` per call at most.
    pub limit: usize,
    /// How long a group that waits for room in its window stays out of later calls (a
    /// completion in it lets it through at once): the caller's pass interval.
    pub recheck: Duration,
}

/// What one `promote` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoteReply {
    /// How many jobs moved onto the stream.
    pub moved: u64,
    /// How long until the next job left waiting is due (on the server's clock), if any.
    pub next_due_in: Option<Duration>,
}

impl ScriptCall for Promote<'_> {
    type Reply = PromoteReply;
    const NAME: &'static str = "promote";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&PROMOTE)
            .key(keys.delayed(self.queue))
            .key(keys.stream(self.queue))
            .key(keys.later(self.queue))
            .arg(keys.job_prefix(self.queue))
            .arg(self.limit)
            .arg(self.recheck.as_millis().max(1) as u64)
    }

    fn parse(value: redis::Value) -> Result<PromoteReply, ScriptError> {
        let bad = || ScriptError::reply(Self::NAME, &value);
        let parts = items(value.clone()).ok_or_else(bad)?;
        let moved = parts
            .first()
            .and_then(int)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(bad)?;
        let next_due_in = parts
            .get(1)
            .and_then(int)
            .ok_or_else(bad)
            .map(|ms| u64::try_from(ms).ok().map(Duration::from_millis))?;
        Ok(PromoteReply { moved, next_due_in })
    }
}

/// Return entries of one stream that were delivered to `consumer` but never started, to
/// the stream's end, unrun and uncharged (their queue was paused when they arrived). For
/// entries that name their job with an `id`; a fast-path entry goes back through
/// `handback`, which keeps its job id.
#[derive(Debug, Clone)]
pub struct PutBack<'a> {
    /// The queue (or partition) that delivered the entries.
    pub queue: &'a str,
    /// This worker's consumer name: only entries still pending under it go back.
    pub consumer: &'a str,
    /// (entry id, job id) of each entry.
    pub entries: Vec<(&'a str, &'a str)>,
}

impl ScriptCall for PutBack<'_> {
    /// How many were put back.
    type Reply = u64;
    const NAME: &'static str = "putback";

    fn call(&self, keys: &Keys) -> Call {
        let mut call = Call::new(&PUTBACK).key(keys.stream(self.queue));
        for (_, job_id) in &self.entries {
            call = call.key(keys.job(self.queue, job_id));
        }
        call = call.arg(CONSUMER_GROUP).arg(self.consumer);
        for (entry_id, _) in &self.entries {
            call = call.arg(*entry_id);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<u64, ScriptError> {
        int(&value)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}

/// Cancel a job that has not finished.
#[derive(Debug, Clone)]
pub struct Cancel<'a> {
    /// The queue (or partition) that holds the job.
    pub queue: &'a str,
    /// The job to cancel: its own id, or its entry id for a job without one.
    pub job_id: &'a str,
    /// How long the cancelled record is kept.
    pub retention_ms: u64,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReply {
    /// Stopped; it was in this state.
    Cancelled {
        /// The status it had; `None` for one this version does not know.
        was: Option<Status>,
    },
    /// It had already finished in this state; nothing changed.
    AlreadyFinished {
        /// The status it finished in; `None` for one this version does not know.
        status: Option<Status>,
    },
    /// No record and no entry: it may have completed, which its queue's `done` stream
    /// would show.
    NotFound,
}

impl ScriptCall for Cancel<'_> {
    type Reply = CancelReply;
    const NAME: &'static str = "cancel";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        Call::new(&CANCEL)
            .key(keys.stream(q))
            .key(keys.job(q, self.job_id))
            .key(keys.delayed(q))
            .key(keys.index(q, Status::Cancelled))
            .key(keys.later(q))
            .key(keys.cancels(q))
            .arg(CONSUMER_GROUP)
            .arg(self.retention_ms)
            .arg(self.job_id)
            .arg(q)
    }

    fn parse(value: redis::Value) -> Result<CancelReply, ScriptError> {
        let words = words(&value).ok_or_else(|| ScriptError::reply(Self::NAME, &value))?;
        let status = words.get(1).and_then(|s| s.parse::<Status>().ok());
        match words.first().map(String::as_str) {
            Some("cancelled") => Ok(CancelReply::Cancelled { was: status }),
            Some("finished") => Ok(CancelReply::AlreadyFinished { status }),
            Some("missing") => Ok(CancelReply::NotFound),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}

/// What reconciliation found stranded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueMode<'a> {
    /// The record says running but its entry is no longer pending.
    OrphanRunning,
    /// The record says pending but its entry is gone from the stream.
    OrphanPending,
    /// The record says scheduled (or failed, waiting to retry) but it is missing from
    /// `delayed`, so no promotion would ever find it.
    OrphanScheduled,
    /// The id key holds a job waiting without a record, but the job is missing from
    /// `later`, so no promotion would ever find it.
    OrphanWaiting,
    /// An entry pending under a consumer whose worker is gone.
    DeadConsumer {
        /// The consumer name of the worker that is gone.
        consumer: &'a str,
        /// The entry pending under it.
        entry_id: &'a str,
    },
}

/// Put a stranded job back on its stream.
#[derive(Debug, Clone)]
pub struct Requeue<'a> {
    /// The queue (or partition) that holds the job.
    pub queue: &'a str,
    /// The stranded job: its own id, or its entry id for a job without one.
    pub job_id: &'a str,
    /// Recorded as the job's error, so operators see why it ran again.
    pub reason: &'a str,
    /// How the job was found stranded, which decides how it goes back.
    pub mode: RequeueMode<'a>,
}

/// What a requeue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueReply {
    /// The job is back where it waits to run: on its stream, or in `delayed` or `later`
    /// when it is due later.
    Requeued,
    /// An entry with no record was added again (a fast-path job keeps its id and is
    /// charged the deliveries it had).
    Copied,
    /// An entry with no record whose data was deleted: nothing is left to run.
    Lost,
    /// A duplicate entry of a job that moved on was removed.
    Dropped,
    /// Nothing was stranded after all.
    Unchanged,
}

impl ScriptCall for Requeue<'_> {
    type Reply = RequeueReply;
    const NAME: &'static str = "requeue";

    fn call(&self, keys: &Keys) -> Call {
        let (mode, consumer, entry) = match self.mode {
            RequeueMode::OrphanRunning => ("orphan_running", "", ""),
            RequeueMode::OrphanPending => ("orphan_pending", "", ""),
            RequeueMode::OrphanScheduled => ("orphan_scheduled", "", ""),
            RequeueMode::OrphanWaiting => ("orphan_waiting", "", ""),
            RequeueMode::DeadConsumer { consumer, entry_id } => {
                ("dead_consumer", consumer, entry_id)
            }
        };
        Call::new(&REQUEUE)
            .key(keys.stream(self.queue))
            .key(keys.job(self.queue, self.job_id))
            .key(keys.delayed(self.queue))
            .arg(CONSUMER_GROUP)
            .arg(self.reason)
            .arg(mode)
            .arg(consumer)
            .arg(entry)
            .arg(self.queue)
            .arg(self.job_id)
    }

    fn parse(value: redis::Value) -> Result<RequeueReply, ScriptError> {
        Ok(match text(&value).as_deref() {
            Some("requeued") => RequeueReply::Requeued,
            Some("copied") => RequeueReply::Copied,
            Some("lost") => RequeueReply::Lost,
            Some("dropped") => RequeueReply::Dropped,
            Some("unchanged") => RequeueReply::Unchanged,
            _ => return Err(ScriptError::reply(Self::NAME, &value)),
        })
    }
}

/// Delete a consumer from a queue's group, only if it owns no entries.
#[derive(Debug, Clone)]
pub struct ForgetConsumer<'a> {
    /// The queue (or partition) whose consumer group holds the consumer.
    pub queue: &'a str,
    /// The consumer to delete: a worker's consumer name.
    pub consumer: &'a str,
}

impl ScriptCall for ForgetConsumer<'_> {
    /// True if deleted, false while it still owns entries.
    type Reply = bool;
    const NAME: &'static str = "forget_consumer";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&FORGET_CONSUMER)
            .key(keys.stream(self.queue))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
    }

    fn parse(value: redis::Value) -> Result<bool, ScriptError> {
        flag(Self::NAME, &value)
    }
}

/// Put a dead job back on its stream with a fresh set of attempts.
#[derive(Debug, Clone)]
pub struct Retry<'a> {
    /// The queue (or partition) that holds the job.
    pub queue: &'a str,
    /// The dead job's id.
    pub job_id: &'a str,
    /// Its entry in the dead-letter stream, deleted with the retry; `None` when unknown.
    pub dead_entry: Option<&'a str>,
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReply {
    /// Back on its stream with a fresh set of attempts.
    Retried,
    /// No such job (or its record expired).
    Missing,
    /// The job is not dead: its status.
    NotDead(String),
}

impl ScriptCall for Retry<'_> {
    type Reply = RetryReply;
    const NAME: &'static str = "retry";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&RETRY)
            .key(keys.stream(self.queue))
            .key(keys.job(self.queue, self.job_id))
            .key(keys.index(self.queue, Status::Dead))
            .key(keys.dead(self.queue))
            .arg(self.job_id)
            .arg(self.dead_entry.unwrap_or(""))
    }

    fn parse(value: redis::Value) -> Result<RetryReply, ScriptError> {
        match text(&value).as_deref() {
            Some("retried") => Ok(RetryReply::Retried),
            Some("missing") => Ok(RetryReply::Missing),
            Some(status) => Ok(RetryReply::NotDead(status.to_owned())),
            None => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}

/// Delete finished jobs of one status (`completed` or `dead`) that ended before a cutoff.
#[derive(Debug, Clone)]
pub struct Purge<'a> {
    /// The queue (or partition) whose finished jobs go.
    pub queue: &'a str,
    /// `Completed` or `Dead`.
    pub status: Status,
    /// Jobs that ended before this (ms since the Unix epoch) go.
    pub before_ms: i64,
    /// Records deleted per call at most, so one call never blocks Redis for long.
    pub limit: usize,
}

/// What a purge call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReply {
    /// How many job records were deleted.
    pub records: u64,
    /// How many entries of the status's stream (`done` or dead-letter) were deleted.
    pub entries: u64,
    /// Ids older than the cutoff still in the index: call again while above 0.
    pub left: u64,
}

impl ScriptCall for Purge<'_> {
    type Reply = PurgeReply;
    const NAME: &'static str = "purge";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let stream = if self.status == Status::Dead {
            keys.dead(q)
        } else {
            keys.done(q)
        };
        Call::new(&PURGE)
            .key(keys.index(q, self.status))
            .key(stream)
            .arg(keys.job_prefix(q))
            .arg(self.status.as_str())
            .arg(self.before_ms)
            .arg(self.limit)
    }

    fn parse(value: redis::Value) -> Result<PurgeReply, ScriptError> {
        let numbers: Option<Vec<u64>> = match &value {
            redis::Value::Array(items) => items
                .iter()
                .map(|v| int(v).and_then(|n| u64::try_from(n).ok()))
                .collect(),
            _ => None,
        };
        match numbers.as_deref() {
            Some(&[records, entries, left]) => Ok(PurgeReply {
                records,
                entries,
                left,
            }),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
