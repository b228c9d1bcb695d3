//! Bindings that change a queue's streams as a whole: `reset_stream_id` brings back a
//! stream whose last id ran ahead of the clock, `remove_queue` deletes a queue that holds
//! nothing to run.

use super::reply::text;
use super::{Call, REMOVE_QUEUE, RESET_STREAM_ID, ScriptCall, ScriptError};
use crate::{Keys, Status};

/// Bring a queue's stream back when its last id is far ahead of the server's clock (an
/// entry added by hand at a chosen id): its last id and its consumer group's go back to
/// its newest entry, so `XADD *` works again.
#[derive(Debug, Clone)]
pub struct ResetStreamId<'a> {
    /// The queue (or partition) whose stream is looked at.
    pub queue: &'a str,
    /// The server's clock.
    pub now_ms: i64,
    /// Reset it, or only say whether it would.
    pub repair: bool,
}

/// What a reset did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReply {
    /// The last id was not ahead.
    Unchanged,
    /// An entry ahead is still on the stream: it is dead-lettered first.
    EntryAhead,
    /// The last id is ahead, and it was only looked at.
    Ahead,
    /// The stream's last id, and each consumer group's, went back to its newest entry.
    Reset,
}

impl ScriptCall for ResetStreamId<'_> {
    type Reply = ResetReply;
    const NAME: &'static str = "reset_stream_id";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&RESET_STREAM_ID)
            .key(keys.stream(self.queue))
            .arg(self.now_ms)
            .arg(crate::MAX_ID_AHEAD_MS)
            .arg(if self.repair { "repair" } else { "check" })
    }

    fn parse(value: redis::Value) -> Result<ResetReply, ScriptError> {
        match text(&value).as_deref() {
            Some("unchanged") => Ok(ResetReply::Unchanged),
            Some("entry_ahead") => Ok(ResetReply::EntryAhead),
            Some("ahead") => Ok(ResetReply::Ahead),
            Some("reset") => Ok(ResetReply::Reset),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}

/// Delete one partition of a queue (`queue` names it) that holds nothing to run, with
/// its finished history. Answers false, deleting nothing, while a job waits or runs.
#[derive(Debug, Clone)]
pub struct RemoveQueue<'a> {
    /// The partition to delete, by name (`<queue>` or `<queue>#<n>`).
    pub queue: &'a str,
}

impl ScriptCall for RemoveQueue<'_> {
    /// Whether it was removed.
    type Reply = bool;
    const NAME: &'static str = "remove_queue";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        Call::new(&REMOVE_QUEUE)
            .key(keys.stream(q))
            .key(keys.delayed(q))
            .key(keys.done(q))
            .key(keys.dead(q))
            .key(keys.index(q, Status::Completed))
            .key(keys.index(q, Status::Dead))
            .key(keys.index(q, Status::Cancelled))
            .key(keys.cancels(q))
            .key(keys.index(q, Status::Expired))
            .arg(keys.job_prefix(q))
    }

    fn parse(value: redis::Value) -> Result<bool, ScriptError> {
        match text(&value).as_deref() {
            Some("removed") => Ok(true),
            Some("busy") => Ok(false),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
