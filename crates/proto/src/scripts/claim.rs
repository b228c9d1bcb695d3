//! The `claim` binding: before a worker runs delivered entries that carry a whole job with
//! an id of its own, one call per queue confirms each is still its own and makes the
//! first entry carrying an id the only one that runs it.

use super::fast::entry_range;
use super::reply::text;
use super::{CLAIM, Call, ScriptCall, ScriptError};
use crate::{CONSUMER_GROUP, Keys};

/// Claim a queue's delivered entries with ids of their own.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// The queue (or partition) that delivered the entries.
    pub queue: &'a str,
    /// This worker's consumer name.
    pub consumer: &'a str,
    /// Entries idle this long or longer (ms) have their idle time reset; 0 resets all.
    pub refresh_idle_ms: u64,
    /// The delivered entries, each answered in order.
    pub entries: Vec<ClaimEntry<'a>>,
}

/// One delivered entry.
#[derive(Debug, Clone, Copy)]
pub struct ClaimEntry<'a> {
    /// The stream entry, as delivered to this worker.
    pub entry_id: &'a str,
    /// The id of the job the entry carries: the first entry to claim it runs it.
    pub job_id: &'a str,
    /// The entry's delivery count when this worker read it.
    pub delivery: u32,
}

/// What became of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimReply {
    /// Run it: it is this worker's and the only entry of its id.
    Ok,
    /// Another worker took it meanwhile: not run.
    Lost,
    /// Another entry carries (or carried) the same id: removed unrun.
    Duplicate,
    /// The id has a record, which leads: start the entry through `start`.
    Record,
}

impl ScriptCall for Claim<'_> {
    /// One reply per entry, in order.
    type Reply = Vec<ClaimReply>;
    const NAME: &'static str = "claim";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let (low, high) = entry_range(self.entries.iter().map(|e| e.entry_id));
        let mut call = Call::new(&CLAIM)
            .key(keys.stream(q))
            .arg(CONSUMER_GROUP)
            .arg(self.consumer)
            .arg(keys.job_prefix(q))
            .arg(low)
            .arg(high)
            .arg(self.refresh_idle_ms);
        for entry in &self.entries {
            call = call
                .arg(entry.entry_id)
                .arg(entry.job_id)
                .arg(entry.delivery);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Vec<ClaimReply>, ScriptError> {
        let word = |w: &str| {
            Some(match w {
                "ok" => ClaimReply::Ok,
                "lost" => ClaimReply::Lost,
                "duplicate" => ClaimReply::Duplicate,
                "record" => ClaimReply::Record,
                _ => return None,
            })
        };
        text(&value)
            .and_then(|text| text.split_ascii_whitespace().map(word).collect())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))
    }
}
