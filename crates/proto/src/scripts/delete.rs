//! The binding of `delete`: an operator removes a job that is not running, with every
//! trace of it (record, indexes, stream, dead-letter and `done` entries, unique lock).

use super::reply::words;
use super::{Call, DELETE, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys, Status};

/// Remove one job that is not running.
#[derive(Debug, Clone)]
pub struct Delete<'a> {
    /// The queue (or partition) that holds the job.
    pub queue: &'a str,
    /// The job to remove: its own id, or its entry id for a job without one.
    pub job_id: &'a str,
    /// Its entry in the dead-letter stream, when it has one.
    pub dead_entry: Option<&'a str>,
    /// Its entry in the `done` stream, when it completed and the entry is still there.
    pub done_entry: Option<&'a str>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReply {
    /// Gone; it had this status.
    Deleted {
        /// The status it had; `None` for one this version does not know.
        was: Option<Status>,
    },
    /// An attempt is under way: cancel it first.
    Running,
    /// No such job (or retention removed it already).
    Missing,
}

impl ScriptCall for Delete<'_> {
    type Reply = DeleteReply;
    const NAME: &'static str = "delete";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        Call::new(&DELETE)
            .key(keys.stream(q))
            .key(keys.job(q, self.job_id))
            .key(keys.delayed(q))
            .key(keys.index(q, Status::Completed))
            .key(keys.index(q, Status::Dead))
            .key(keys.index(q, Status::Cancelled))
            .key(keys.dead(q))
            .key(keys.done(q))
            .key(keys.later(q))
            .key(keys.index(q, Status::Expired))
            .arg(CONSUMER_GROUP)
            .arg(self.job_id)
            .arg(self.dead_entry.unwrap_or(""))
            .arg(self.done_entry.unwrap_or(""))
    }

    fn parse(value: redis::Value) -> Result<DeleteReply, ScriptError> {
        let words = words(&value).ok_or_else(|| ScriptError::reply(Self::NAME, &value))?;
        match words.first().map(String::as_str) {
            Some("deleted") => Ok(DeleteReply::Deleted {
                was: words.get(1).and_then(|s| s.parse().ok()),
            }),
            Some("running") => Ok(DeleteReply::Running),
            Some("missing") => Ok(DeleteReply::Missing),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
