//! The bindings of groups' gates: `release_groups`, after jobs of groups completed, gives
//! their places back and lets their groups' next jobs through (protocol 2.17);
//! `group_gate` puts a job of a group that reached its stream by a raw XADD through its
//! group's gate (2.18).

use super::reply::{int, words};
use super::{Call, GROUP_GATE, RELEASE_GROUPS, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys};

/// Give back the places of one queue's completed grouped jobs.
#[derive(Debug, Clone)]
pub struct ReleaseGroups<'a> {
    /// The queue (or partition) the jobs ran in.
    pub queue: &'a str,
    /// Each completed job's group and id.
    pub released: Vec<(&'a str, &'a str)>,
}

impl ScriptCall for ReleaseGroups<'_> {
    /// How many waiting jobs were let through.
    type Reply = u64;
    const NAME: &'static str = "release_groups";

    fn call(&self, keys: &Keys) -> Call {
        let mut call = Call::new(&RELEASE_GROUPS)
            .key(keys.stream(self.queue))
            .arg(keys.job_prefix(self.queue));
        for (group, id) in &self.released {
            call = call.arg(*group).arg(*id);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<u64, ScriptError> {
        int(&value)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}

/// Put a delivered entry of a job of a group that skipped its group's gate through it.
#[derive(Debug, Clone)]
pub struct GroupGate<'a> {
    /// The queue (or partition) that delivered the entry.
    pub queue: &'a str,
    /// This worker's consumer name: only an entry still pending under it is gated.
    pub consumer: &'a str,
    /// The entry's id.
    pub entry_id: &'a str,
    /// The delivery count the entry was read with: a reclaim since makes it another's.
    pub delivery: u32,
}

/// What `group_gate` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateReply {
    /// Its group has room (or it had its place already, or groups are not limited): run
    /// it.
    Go,
    /// It waits its group's turn; its entry is gone, and it comes back as a new one.
    Waits,
    /// Not this worker's entry any more.
    Stale,
}

impl ScriptCall for GroupGate<'_> {
    type Reply = GateReply;
    const NAME: &'static str = "group_gate";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&GROUP_GATE)
            .key(keys.stream(self.queue))
            .arg(keys.job_prefix(self.queue))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(self.entry_id)
            .arg(self.delivery)
    }

    fn parse(value: redis::Value) -> Result<GateReply, ScriptError> {
        match words(&value).as_deref() {
            Some([w]) if w == "go" => Ok(GateReply::Go),
            Some([w]) if w == "waits" => Ok(GateReply::Waits),
            Some([w]) if w == "stale" => Ok(GateReply::Stale),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
