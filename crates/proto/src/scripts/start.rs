//! The `start` binding (begin attempts of delivered entries, a batch of one queue per
//! call) and the `bury` binding (dead-letter an entry that cannot be decoded).

use std::collections::HashMap;

use super::reply::{bytes, int, items, text, words};
use super::{BURY, Call, START, ScriptCall, ScriptError};
use crate::{Backoff, CONSUMER_GROUP, EntryFields, Keys, PROTOCOL_VERSION, Status, StreamEntry};

/// Begin the attempts of a queue's delivered entries.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    /// The queue (or partition) that delivered the entries.
    pub queue: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// How long a job that goes dead here (its attempts spent) keeps its record and
    /// dead-letter entry, in ms.
    pub dead_retention_ms: u64,
    /// How many entries the queue's dead-letter stream keeps at most (and as many dead
    /// records).
    pub dead_max_len: u64,
    /// How long the record of a job that expires here is kept, in ms (as completed ones).
    pub expired_retention_ms: u64,
    /// How many expired records the queue keeps at most (as completed ones; 0: no limit).
    pub expired_max_len: u64,
    /// The delivered entries, each answered in order.
    pub entries: Vec<StartEntry<'a>>,
}

/// One delivered entry to start.
#[derive(Debug, Clone)]
pub struct StartEntry<'a> {
    /// The stream entry, as delivered to this worker.
    pub entry_id: &'a str,
    /// The id of the job behind the entry: its own, or the entry id for a job without one.
    pub job_id: &'a str,
    /// The new attempt's lease token.
    pub lease: &'a str,
    /// The whole job, for an entry XADDed by hand (it has no record yet).
    pub raw: Option<RawJob<'a>>,
}

/// A job carried whole by its entry, with defaults filled in for what it leaves out.
#[derive(Debug, Clone)]
pub struct RawJob<'a> {
    /// The job's fields, as decoded from its entry.
    pub fields: &'a EntryFields,
    /// How many attempts the job gets when its entry names no number.
    pub default_max_attempts: u32,
    /// How long one attempt may run when its entry names no timeout, in ms.
    pub default_timeout_ms: u64,
    /// How long to wait between attempts when its entry names no backoff.
    pub default_backoff: &'a Backoff,
}

/// What `start` did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartReply {
    /// The attempt began: run this job.
    Started(StartedJob),
    /// A raw entry whose `run_at` is ahead now waits in `delayed` until this time (ms).
    Scheduled {
        /// When it is due, ms since the Unix epoch.
        due_ms: u64,
    },
    /// Its attempts were spent (a poison pill): it is dead with this reason.
    Dead {
        /// The error recorded on the dead job.
        reason: String,
    },
    /// Its `expires_at` had come: it ended as `expired` without starting.
    Expired {
        /// When it expired, ms since the Unix epoch.
        at_ms: u64,
        /// Its job type, for the count of expired jobs.
        job_type: String,
    },
    /// Not started, for this reason. The entry was acknowledged and removed, unless it is
    /// [`SkipReason::NotOwner`], [`SkipReason::Orphan`] or [`SkipReason::ReservedId`].
    Skipped(SkipReason),
}

/// Why an entry was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Another worker took the entry meanwhile.
    NotOwner,
    /// An older entry of a job that moved on (the same id XADDed twice).
    Duplicate,
    /// The job had already ended.
    Finished(Status),
    /// It names a job with no record and carries no type: the caller buries it.
    Orphan,
    /// A new job whose `id` has the form of a stream entry id, which names the jobs
    /// without an id of their own ([`crate::is_entry_id`]): the caller buries it.
    ReservedId,
    /// A reason this version does not know.
    Other(String),
}

/// What a started attempt needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedJob {
    /// The job's type, which picks its handler.
    pub job_type: String,
    /// The encoded arguments.
    pub payload: Vec<u8>,
    /// How the payload is encoded, as the record or entry names its content type.
    pub content_type: String,
    /// This attempt's number, counting from 1.
    pub attempt: u32,
    /// How many attempts the job gets, the first included.
    pub max_attempts: u32,
    /// 0 only for a record written before timeouts were required.
    pub timeout_ms: u64,
    /// `None` when the record's text is not a backoff: the worker's default applies.
    /// Kept parsed, so a job on the fast path never formats or parses its backoff.
    pub backoff: Option<Backoff>,
    /// The W3C trace context the job carries, empty when none.
    pub trace: String,
    /// Times the job was snoozed before this attempt (none of them attempts).
    pub snoozes: u32,
}

impl ScriptCall for Start<'_> {
    type Reply = Vec<StartReply>;
    const NAME: &'static str = "start";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let mut call = Call::new(&START)
            .key(keys.stream(q))
            .key(keys.dead(q))
            .key(keys.index(q, Status::Dead))
            .key(keys.delayed(q))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(self.dead_retention_ms)
            .arg(self.dead_max_len)
            .arg(self.expired_retention_ms)
            .arg(self.expired_max_len);
        for entry in &self.entries {
            call = call
                .key(keys.job(q, entry.job_id))
                .arg(entry.entry_id)
                .arg(entry.job_id)
                .arg(entry.lease);
            call = match &entry.raw {
                None => call.arg(&["", "", "", "", "", "", "", "", "", "0", "", "0"][..]),
                Some(raw) => {
                    let f = raw.fields;
                    call.arg(f.job_type.as_deref().unwrap_or_default())
                        .arg(&f.payload.bytes)
                        .arg(f.payload.content_type.as_str())
                        .arg(f.max_attempts.unwrap_or(raw.default_max_attempts))
                        .arg(f.timeout_ms.unwrap_or(raw.default_timeout_ms))
                        .arg(
                            f.backoff
                                .as_ref()
                                .unwrap_or(raw.default_backoff)
                                .to_string(),
                        )
                        .arg(q)
                        .arg(PROTOCOL_VERSION)
                        .arg(f.run_at_ms.unwrap_or(0))
                        .arg(f.attempts.unwrap_or(0))
                        .arg(f.trace.as_deref().unwrap_or_default())
                        .arg(f.expires_at_ms.unwrap_or(0))
                }
            };
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Vec<StartReply>, ScriptError> {
        let all = items(value.clone()).ok_or_else(|| ScriptError::reply(Self::NAME, &value))?;
        all.into_iter()
            .map(|one| parse_one(one).ok_or_else(|| ScriptError::reply(Self::NAME, &value)))
            .collect()
    }
}

fn parse_one(value: redis::Value) -> Option<StartReply> {
    let parts = items(value)?;
    let word = |i: usize| parts.get(i).and_then(text);
    Some(match word(0)?.as_str() {
        "started" => StartReply::Started(StartedJob {
            job_type: word(1)?,
            payload: parts.get(2).and_then(bytes)?,
            content_type: word(3)?,
            attempt: u32::try_from(parts.get(4).and_then(int)?).ok()?,
            max_attempts: u32::try_from(parts.get(5).and_then(int)?).ok()?,
            timeout_ms: parts
                .get(6)
                .and_then(int)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            backoff: word(7).and_then(|text| text.parse().ok()),
            trace: word(8).unwrap_or_default(),
            // Protocol 2.13: a snoozed job's count (a start script before it sent none).
            snoozes: parts
                .get(9)
                .and_then(int)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        }),
        "scheduled" => StartReply::Scheduled {
            due_ms: u64::try_from(parts.get(1).and_then(int)?).ok()?,
        },
        "dead" => StartReply::Dead {
            reason: word(1).unwrap_or_default(),
        },
        "expired" => StartReply::Expired {
            at_ms: u64::try_from(parts.get(1).and_then(int)?).ok()?,
            job_type: word(2).unwrap_or_default(),
        },
        "skipped" => StartReply::Skipped(match word(1).unwrap_or_default().as_str() {
            "not_owner" => SkipReason::NotOwner,
            "duplicate" => SkipReason::Duplicate,
            "orphan" => SkipReason::Orphan,
            "reserved_id" => SkipReason::ReservedId,
            other => match other.parse::<Status>() {
                Ok(status) => SkipReason::Finished(status),
                Err(_) => SkipReason::Other(other.to_owned()),
            },
        }),
        _ => return None,
    })
}

/// Send an entry that cannot be decoded straight to the dead-letter queue, keeping a
/// record of its raw fields for inspection.
#[derive(Debug, Clone)]
pub struct Bury<'a> {
    /// The queue (or partition) that delivered the entry.
    pub queue: &'a str,
    /// The entry as read from the stream; its record keeps the raw fields.
    pub entry: &'a StreamEntry,
    /// Why it cannot be run, recorded as the dead job's error.
    pub reason: &'a str,
    /// How long the dead record and its dead-letter entry are kept, in ms.
    pub dead_retention_ms: u64,
    /// How many entries the queue's dead-letter stream keeps at most (and as many dead
    /// records).
    pub dead_max_len: u64,
}

/// What `bury` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuryReply {
    /// Dead-lettered, with a record of its raw fields.
    Buried,
    /// A duplicate entry of a job that moved on: removed, nothing buried.
    Skipped,
}

impl ScriptCall for Bury<'_> {
    type Reply = BuryReply;
    const NAME: &'static str = "bury";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let job_id = self.entry.job_id();
        let mut call = Call::new(&BURY)
            .key(keys.stream(q))
            .key(keys.job(q, &job_id))
            .key(keys.dead(q))
            .key(keys.index(q, Status::Dead))
            .key(keys.job(q, &self.entry.entry_id))
            .arg(&self.entry.entry_id)
            .arg(&job_id)
            .arg(CONSUMER_GROUP)
            .arg(self.reason)
            .arg(self.dead_retention_ms)
            .arg(self.dead_max_len)
            .arg(q);
        let fields: &HashMap<String, Vec<u8>> = &self.entry.fields;
        for (name, value) in fields {
            call = call.arg(name).arg(value);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<BuryReply, ScriptError> {
        match words(&value).as_deref() {
            Some([w]) if w == "buried" => Ok(BuryReply::Buried),
            Some([w]) if w == "skipped" => Ok(BuryReply::Skipped),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
