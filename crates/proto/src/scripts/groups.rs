//! The `release_groups` binding: after jobs of groups completed, give their places back
//! and let their groups' next jobs through (protocol 2.17).

use super::reply::int;
use super::{Call, RELEASE_GROUPS, ScriptCall, ScriptError};
use crate::Keys;

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
