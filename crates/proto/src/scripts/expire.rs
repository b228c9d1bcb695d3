//! The `expire` binding: end a delivered fast-path job whose `expires_at` has come as
//! `expired`, without running it.

use std::collections::HashMap;

use super::reply::words;
use super::{Call, EXPIRE, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys, Status, StreamEntry};

/// End the job of a delivered entry that may no longer start.
#[derive(Debug, Clone)]
pub struct Expire<'a> {
    /// The queue (or partition) that delivered the entry.
    pub queue: &'a str,
    /// This worker's consumer name: only an entry still pending under it is expired.
    pub consumer: &'a str,
    /// The entry as read from the stream; the expired job's record is built from it.
    pub entry: &'a StreamEntry,
    /// The delivery count the entry was read with: a reclaim since makes it another's.
    pub delivery: u32,
    /// How long the expired record is kept, in ms (as completed ones).
    pub retention_ms: u64,
    /// How many expired records the queue keeps at most (0: no limit).
    pub max_len: u64,
}

/// What `expire` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireReply {
    /// The job ended as `expired`; its entry is gone.
    Expired,
    /// The server's clock says it may still start (this worker's clock runs ahead): run
    /// it as usual.
    NotYet,
    /// Not this worker's any more (a reclaim took it), or a leftover entry of a job that
    /// moved on (removed).
    Skipped,
}

impl ScriptCall for Expire<'_> {
    type Reply = ExpireReply;
    const NAME: &'static str = "expire";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let job_id = self.entry.job_id();
        let mut call = Call::new(&EXPIRE)
            .key(keys.stream(q))
            .key(keys.job(q, &job_id))
            .key(keys.index(q, Status::Expired))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(&self.entry.entry_id)
            .arg(&job_id)
            .arg(q)
            .arg(self.retention_ms)
            .arg(self.max_len)
            .arg(self.delivery);
        let fields: &HashMap<String, Vec<u8>> = &self.entry.fields;
        for (name, value) in fields {
            call = call.arg(name).arg(value);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<ExpireReply, ScriptError> {
        match words(&value).as_deref() {
            Some([w]) if w == "expired" => Ok(ExpireReply::Expired),
            Some([w]) if w == "not_yet" => Ok(ExpireReply::NotYet),
            Some([w]) if w == "skipped" => Ok(ExpireReply::Skipped),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
