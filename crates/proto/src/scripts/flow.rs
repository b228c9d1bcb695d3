//! The bindings of `admit` and `holds`: how a worker keeps to a queue's flow limits
//! (see `crate::flow`): it asks before starting jobs of a limited queue, gives a
//! capped queue's slots back as its jobs end, and renews its hold with its heartbeat.

use std::time::Duration;

use super::reply::{int, items};
use super::{ADMIT, Call, HOLDS, ScriptCall, ScriptError};
use crate::Keys;
use crate::flow::QueueLimit;

/// Ask to start up to `wanted` jobs of one limited queue now.
#[derive(Debug, Clone)]
pub struct Admit<'a> {
    /// The queue (its name, not a partition's: limits hold for the whole queue).
    pub queue: &'a str,
    /// Its limit, as the worker last read it.
    pub limit: &'a QueueLimit,
    /// The asking worker, which holds the cap's slots it is given.
    pub worker: &'a str,
    /// Jobs it would start.
    pub wanted: usize,
    /// Its lease: a hold not renewed for this long ends, as its entries may be reclaimed.
    pub lease: Duration,
    /// Spare starts of the rate it would take beyond `wanted`, for its next jobs; given
    /// only while twice as many would be left.
    pub spare_starts: usize,
    /// Spare slots of the cap it would take beyond `wanted`, likewise.
    pub spare_slots: usize,
    /// The slots of the cap it believes it holds: with its hold gone from Redis, the
    /// admission answers that the hold ended rather than start a new one beside jobs
    /// still running under the old.
    pub believed: usize,
    /// How many of the `wanted` jobs start in slots it holds already (spares of its own),
    /// so the cap is not asked for them.
    pub covered: usize,
}

/// What an admission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Jobs that may start now (their slots now held by the worker).
    pub admitted: usize,
    /// Spare starts of the rate granted beyond them, the worker's to use for its next
    /// jobs.
    pub spare_starts: usize,
    /// Spare slots of the cap granted beyond them, held by the worker for its next jobs.
    pub spare_slots: usize,
    /// The worker's hold had ended (it stopped beating for a lease, and its slots went to
    /// others): nothing was admitted, and its jobs under that hold run over the cap.
    pub hold_ended: bool,
    /// How many more could start now; `None` when nothing bounds it.
    pub left: Option<usize>,
    /// When the rate has none left: how long until its next start.
    pub next_in: Option<Duration>,
}

impl ScriptCall for Admit<'_> {
    type Reply = Admission;
    const NAME: &'static str = "admit";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let spacing = self.limit.rate.map_or(0, |rate| rate.spacing_us());
        Call::new(&ADMIT)
            .key(keys.rate(q))
            .key(keys.holders(q))
            .key(keys.holds(q))
            .arg(self.worker)
            .arg(self.wanted)
            .arg(spacing)
            .arg(self.limit.burst_in_force())
            .arg(self.limit.concurrency.unwrap_or(0))
            .arg(crate::millis(self.lease))
            .arg(self.spare_starts)
            .arg(self.spare_slots)
            .arg(self.believed)
            .arg(self.covered)
    }

    fn parse(value: redis::Value) -> Result<Admission, ScriptError> {
        let bad = |v: &redis::Value| ScriptError::reply(Self::NAME, v);
        let numbers: Vec<i64> = match items(value.clone()) {
            Some(parts) => parts.iter().map(int).collect::<Option<_>>(),
            None => None,
        }
        .ok_or_else(|| bad(&value))?;
        let [admitted, spare_starts, spare_slots, left, wait_ms, ended] = numbers[..] else {
            return Err(bad(&value));
        };
        let count = |n: i64| usize::try_from(n).map_err(|_| bad(&value));
        Ok(Admission {
            admitted: count(admitted)?,
            spare_starts: count(spare_starts)?,
            spare_slots: count(spare_slots)?,
            hold_ended: ended == 1,
            left: usize::try_from(left).ok(),
            next_in: (wait_ms > 0).then(|| Duration::from_millis(wait_ms.unsigned_abs())),
        })
    }
}

/// Give back some of a worker's slots in a capped queue, and renew the lease of the rest
/// (`given_back` 0: only renew, as the heartbeat does).
#[derive(Debug, Clone)]
pub struct Holds<'a> {
    /// The queue (its name, not a partition's).
    pub queue: &'a str,
    /// The worker that holds them.
    pub worker: &'a str,
    /// Slots given back.
    pub given_back: usize,
    /// Its lease, renewed from now for the slots it keeps.
    pub lease: Duration,
}

/// What the worker holds after settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldsReply {
    /// It holds this many slots still.
    Holding(usize),
    /// Its hold had ended with its lease (it stopped beating for that long): the slots
    /// went to others, and the jobs it runs under them are over the cap.
    Ended,
}

impl ScriptCall for Holds<'_> {
    type Reply = HoldsReply;
    const NAME: &'static str = "holds";

    fn call(&self, keys: &Keys) -> Call {
        Call::new(&HOLDS)
            .key(keys.holders(self.queue))
            .key(keys.holds(self.queue))
            .arg(self.worker)
            .arg(self.given_back)
            .arg(crate::millis(self.lease))
    }

    fn parse(value: redis::Value) -> Result<HoldsReply, ScriptError> {
        match int(&value) {
            Some(-1) => Ok(HoldsReply::Ended),
            Some(n) => usize::try_from(n)
                .map(HoldsReply::Holding)
                .map_err(|_| ScriptError::reply(Self::NAME, &value)),
            None => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
