//! The scheduler's bindings: take, renew and release the leader lease (rule 6), and record
//! a schedule's last tick under the fencing epoch (rule 5).

use super::reply::{flag, int, items, text};
use super::{
    Call, LEADER_ACQUIRE, LEADER_RELEASE, LEADER_RENEW, SCHEDULE_ADVANCE, ScriptCall, ScriptError,
};
use crate::Keys;

/// Take the lease if it is free, or confirm it is ours.
#[derive(Debug, Clone)]
pub struct LeaderAcquire<'a> {
    /// This process's instance id, which the lease names while it leads.
    pub holder: &'a str,
    /// How long the lease lasts unless renewed, in ms.
    pub ttl_ms: u64,
}

/// Who holds the lease after an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireReply {
    /// Taken now: a new term with a new epoch.
    Acquired {
        /// The new term's fencing epoch.
        epoch: u64,
    },
    /// Already ours: extended.
    Extended {
        /// The current term's fencing epoch.
        epoch: u64,
    },
    /// Someone else leads.
    Held {
        /// The fencing epoch of the leader's term.
        epoch: u64,
        /// The leader's instance id.
        holder: String,
        /// How long its lease has left, in ms.
        remaining_ms: i64,
    },
}

impl ScriptCall for LeaderAcquire<'_> {
    type Reply = AcquireReply;
    const NAME: &'static str = "leader_acquire";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&LEADER_ACQUIRE)
            .key(keys.leader())
            .key(keys.fence())
            .arg(self.holder)
            .arg(self.ttl_ms)
    }

    fn parse(value: redis::Value) -> Result<AcquireReply, ScriptError> {
        let bad = || ScriptError::reply(Self::NAME, &value);
        let parts = items(value.clone()).ok_or_else(bad)?;
        let number = |i: usize| parts.get(i).and_then(int);
        let epoch = number(1)
            .and_then(|e| u64::try_from(e).ok())
            .ok_or_else(bad)?;
        Ok(match number(0) {
            Some(1) => AcquireReply::Acquired { epoch },
            Some(2) => AcquireReply::Extended { epoch },
            Some(0) => AcquireReply::Held {
                epoch,
                holder: parts.get(2).and_then(text).unwrap_or_default(),
                remaining_ms: number(3).unwrap_or(0),
            },
            _ => return Err(bad()),
        })
    }
}

/// Extend the lease, only while holder and epoch are still ours.
#[derive(Debug, Clone)]
pub struct LeaderRenew<'a> {
    /// This process's instance id, which the lease names while it leads.
    pub holder: &'a str,
    /// How long the lease lasts from now unless renewed again, in ms.
    pub ttl_ms: u64,
    /// The fencing epoch this term began with.
    pub epoch: u64,
}

impl ScriptCall for LeaderRenew<'_> {
    /// True if extended.
    type Reply = bool;
    const NAME: &'static str = "leader_renew";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&LEADER_RENEW)
            .key(keys.leader())
            .key(keys.fence())
            .arg(self.holder)
            .arg(self.ttl_ms)
            .arg(self.epoch)
    }

    fn parse(value: redis::Value) -> Result<bool, ScriptError> {
        flag(Self::NAME, &value)
    }
}

/// Give the lease up at once, if it is ours.
#[derive(Debug, Clone)]
pub struct LeaderRelease<'a> {
    /// This process's instance id: the lease goes only if it still names it.
    pub holder: &'a str,
}

impl ScriptCall for LeaderRelease<'_> {
    /// True if released, false if it was not ours.
    type Reply = bool;
    const NAME: &'static str = "leader_release";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&LEADER_RELEASE)
            .key(keys.leader())
            .arg(self.holder)
    }

    fn parse(value: redis::Value) -> Result<bool, ScriptError> {
        flag(Self::NAME, &value)
    }
}

/// Record a schedule's last handled tick, fenced by the leader's epoch.
#[derive(Debug, Clone)]
pub struct ScheduleAdvance<'a> {
    /// The fencing epoch of this leader's term: nothing is written once a newer one holds.
    pub epoch: u64,
    /// The schedule's name.
    pub name: &'a str,
    /// The tick handled, ms since the Unix epoch; it may not be earlier than the one
    /// recorded.
    pub last_tick_ms: i64,
    /// The job the tick fired, if it fired one.
    pub last_job: Option<&'a str>,
    /// The schedule's next tick, ms since the Unix epoch; `None` when it has none.
    pub next_tick_ms: Option<i64>,
    /// When the tick was handled, ms since the Unix epoch.
    pub fired_at_ms: i64,
}

/// What a schedule advance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceReply {
    /// The tick is recorded.
    Recorded,
    /// A newer leader holds the fencing epoch.
    StaleEpoch,
    /// The tick would move backwards.
    Backwards,
    /// The schedule was removed meanwhile; its state is not recreated.
    Removed,
}

impl ScriptCall for ScheduleAdvance<'_> {
    type Reply = AdvanceReply;
    const NAME: &'static str = "schedule_advance";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&SCHEDULE_ADVANCE)
            .key(keys.fence())
            .key(keys.schedule(self.name))
            .key(keys.schedules())
            .arg(self.epoch)
            .arg(self.last_tick_ms)
            .arg(self.last_job.unwrap_or_default())
            .arg(
                self.next_tick_ms
                    .map_or_else(String::new, |t| t.to_string()),
            )
            .arg(self.fired_at_ms)
            .arg(self.name)
    }

    fn parse(value: redis::Value) -> Result<AdvanceReply, ScriptError> {
        Ok(match int(&value) {
            Some(1) => AdvanceReply::Recorded,
            Some(0) => AdvanceReply::StaleEpoch,
            Some(-1) => AdvanceReply::Backwards,
            Some(-2) => AdvanceReply::Removed,
            _ => return Err(ScriptError::reply(Self::NAME, &value)),
        })
    }
}
