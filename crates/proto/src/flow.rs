//! Flow limits of a queue, fleet-wide: a rate (jobs started per interval, with a burst)
//! and a concurrency cap (jobs running at once), and the same two per group (jobs of one
//! group let through to run per interval and at once). This module is their written form, the
//! `limits` hash they live in (one field per queue, so an operator sets one at runtime
//! and every worker reads it within a promote interval), and what a queue's slots hold.
//!
//! How workers keep to them is `admit.lua` and `holds.lua` (see `scripts::Admit`): a
//! rate is a GCRA (one "theoretical arrival time" per queue), a cap a hash of how many
//! slots each worker holds plus a sorted set of when each holder's lease ends.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::Keys;

/// The most jobs a rate may allow per interval, and the largest burst or cap.
pub const MAX_FLOW_COUNT: u32 = 1_000_000;
/// The shortest and longest interval a rate may count over.
pub const MIN_RATE_INTERVAL: Duration = Duration::from_millis(1);
/// See [`MIN_RATE_INTERVAL`].
pub const MAX_RATE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// What a rate must look like, for error messages.
pub const RATE_RULE: &str = "N/UNIT or N/<number><unit>: N from 1 to 1000000 jobs per ms, s, m or h (e.g. 100/s, 5/m, 20/10s), over 1 ms to 24 h";
/// What a burst or a cap must be, for error messages.
pub const FLOW_COUNT_RULE: &str = "a whole number from 1 to 1000000";

/// How many jobs a rate lets start per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Jobs per interval.
    pub count: u32,
    /// The interval.
    pub per: Duration,
}

impl Rate {
    /// The time one job's start uses up: the interval over the count, in µs, rounded up
    /// (at least 1), so a rate is never allowed faster than it was set.
    pub fn spacing_us(&self) -> u64 {
        (self.per.as_micros() as u64)
            .div_ceil(u64::from(self.count.max(1)))
            .max(1)
    }

    /// The burst a rate gets when none is given: a tenth of a second's worth of jobs, at
    /// least one, so a worker fetching in batches is not held to one job per call.
    pub fn default_burst(&self) -> u32 {
        let per_tenth = u64::from(self.count) * 100_000 / (self.per.as_micros() as u64).max(1);
        per_tenth.clamp(1, u64::from(MAX_FLOW_COUNT)) as u32
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.per.as_millis();
        let (amount, unit) = match ms {
            ms if ms % 3_600_000 == 0 => (ms / 3_600_000, "h"),
            ms if ms % 60_000 == 0 => (ms / 60_000, "m"),
            ms if ms % 1000 == 0 => (ms / 1000, "s"),
            ms => (ms, "ms"),
        };
        if amount == 1 {
            write!(f, "{}/{unit}", self.count)
        } else {
            write!(f, "{}/{amount}{unit}", self.count)
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = FlowError;

    /// `100/s`, `5/m`, `20/10s`, `1/250ms`.
    fn from_str(text: &str) -> Result<Self, FlowError> {
        let bad = || FlowError::Rate(text.to_owned());
        let (count, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        let digits = per.bytes().take_while(u8::is_ascii_digit).count();
        let (amount, unit) = per.split_at(digits);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| bad())?
        };
        let unit_ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let per = Duration::from_millis(amount.checked_mul(unit_ms).ok_or_else(bad)?);
        if !(1..=MAX_FLOW_COUNT).contains(&count)
            || !(MIN_RATE_INTERVAL..=MAX_RATE_INTERVAL).contains(&per)
        {
            return Err(bad());
        }
        Ok(Rate { count, per })
    }
}

/// A queue's flow limits; a field left `None` does not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLimit {
    /// Jobs started per interval, fleet-wide.
    pub rate: Option<Rate>,
    /// Jobs the rate lets start at once after a quiet spell (its default when `None`:
    /// [`Rate::default_burst`]).
    pub burst: Option<u32>,
    /// Jobs running at once, fleet-wide.
    pub concurrency: Option<u32>,
    /// Jobs of one group let through to run at once (protocol 2.17): the others wait
    /// their group's turn, outside the stream.
    pub group_concurrency: Option<u32>,
    /// Jobs of one group let through to run per interval (protocol 2.18): the others wait
    /// their group's next turn, outside the stream.
    pub group_rate: Option<Rate>,
    /// Jobs of one group the group rate lets through at once after a quiet spell (its
    /// default when `None`: [`Rate::default_burst`]).
    pub group_burst: Option<u32>,
}

impl QueueLimit {
    /// Whether it limits anything.
    pub fn is_empty(&self) -> bool {
        !self.limits_starts() && !self.limits_groups()
    }

    /// Whether it limits the jobs of each group (a window or a rate per group), which is
    /// kept where jobs of groups are enqueued and let through to the stream.
    pub fn limits_groups(&self) -> bool {
        self.group_concurrency.is_some() || self.group_rate.is_some()
    }

    /// Whether a worker asks it before starting a job (it has a rate or a cap); a limit on
    /// groups is kept where jobs are enqueued and let through.
    pub fn limits_starts(&self) -> bool {
        self.rate.is_some() || self.concurrency.is_some()
    }

    /// The burst in force: the one given, else the rate's default; 0 without a rate.
    pub fn burst_in_force(&self) -> u32 {
        match (self.rate, self.burst) {
            (None, _) => 0,
            (Some(_), Some(burst)) => burst,
            (Some(rate), None) => rate.default_burst(),
        }
    }

    /// The group burst in force: the one given, else the group rate's default; 0 without
    /// a group rate.
    pub fn group_burst_in_force(&self) -> u32 {
        match (self.group_rate, self.group_burst) {
            (None, _) => 0,
            (Some(_), Some(burst)) => burst,
            (Some(rate), None) => rate.default_burst(),
        }
    }

    /// Checks the parts against their bounds; the error names the part.
    pub fn check(&self) -> Result<(), FlowError> {
        if self.burst.is_some() && self.rate.is_none() {
            return Err(FlowError::BurstWithoutRate);
        }
        if self.group_burst.is_some() && self.group_rate.is_none() {
            return Err(FlowError::GroupBurstWithoutRate);
        }
        if self.is_empty() {
            return Err(FlowError::Empty);
        }
        for (part, value) in [
            ("burst", self.burst),
            ("concurrency", self.concurrency),
            ("group concurrency", self.group_concurrency),
            ("group burst", self.group_burst),
        ] {
            if let Some(value) = value
                && !(1..=MAX_FLOW_COUNT).contains(&value)
            {
                return Err(FlowError::Count { part, value });
            }
        }
        Ok(())
    }

    /// The stored form: `rate=100/s burst=20 concurrency=5`, the parts it has.
    pub fn encode(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rate) = self.rate {
            parts.push(format!("rate={rate}"));
        }
        if let Some(burst) = self.burst {
            parts.push(format!("burst={burst}"));
        }
        if let Some(concurrency) = self.concurrency {
            parts.push(format!("concurrency={concurrency}"));
        }
        if let Some(per_group) = self.group_concurrency {
            parts.push(format!("group_concurrency={per_group}"));
        }
        if let Some(rate) = self.group_rate {
            parts.push(format!("group_rate={rate}"));
        }
        if let Some(burst) = self.group_burst {
            parts.push(format!("group_burst={burst}"));
        }
        parts.join(" ")
    }

    /// Reads the stored form; a part this version does not know is an error, so a limit
    /// is never half obeyed.
    pub fn decode(text: &str) -> Result<Self, FlowError> {
        let mut limit = QueueLimit::default();
        for part in text.split_whitespace() {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| FlowError::Stored(text.to_owned()))?;
            let count = || {
                value
                    .parse::<u32>()
                    .map_err(|_| FlowError::Stored(text.to_owned()))
            };
            match name {
                "rate" => limit.rate = Some(value.parse()?),
                "burst" => limit.burst = Some(count()?),
                "concurrency" => limit.concurrency = Some(count()?),
                "group_concurrency" => limit.group_concurrency = Some(count()?),
                "group_rate" => limit.group_rate = Some(value.parse()?),
                "group_burst" => limit.group_burst = Some(count()?),
                _ => return Err(FlowError::Stored(text.to_owned())),
            }
        }
        limit.check()?;
        Ok(limit)
    }
}

impl fmt::Display for QueueLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(rate) = self.rate {
            parts.push(format!("rate {rate} (burst {})", self.burst_in_force()));
        }
        if let Some(concurrency) = self.concurrency {
            parts.push(format!("concurrency {concurrency}"));
        }
        if let Some(per_group) = self.group_concurrency {
            parts.push(format!("concurrency {per_group} per group"));
        }
        if let Some(rate) = self.group_rate {
            parts.push(format!(
                "rate {rate} per group (burst {})",
                self.group_burst_in_force()
            ));
        }
        f.write_str(&parts.join(", "))
    }
}

/// A limit that cannot be read or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// A rate not in the written form.
    #[error("rate {0:?}: expected {RATE_RULE}")]
    Rate(String),
    /// A burst or cap out of bounds.
    #[error("{part} {value}: expected {FLOW_COUNT_RULE}")]
    Count {
        /// `burst`, `concurrency`, `group concurrency` or `group burst`.
        part: &'static str,
        /// What was given.
        value: u32,
    },
    /// A burst given without a rate.
    #[error("a burst needs a rate")]
    BurstWithoutRate,
    /// A group burst given without a group rate.
    #[error("a group burst needs a group rate")]
    GroupBurstWithoutRate,
    /// Nothing to limit.
    #[error("a limit needs a rate or a concurrency, for the queue or per group")]
    Empty,
    /// A stored limit this version cannot read.
    #[error(
        "stored limit {0:?}: expected parts rate=N/UNIT, burst=N, concurrency=N, group_concurrency=N, group_rate=N/UNIT and group_burst=N"
    )]
    Stored(String),
}

/// Every queue's limit, as stored. A stored form this version cannot read is left out
/// and returned beside, so the caller can say so rather than obey half of it.
pub async fn read_limits<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<(HashMap<String, QueueLimit>, Vec<(String, FlowError)>)> {
    let stored: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.limits())
        .query_async(conn)
        .await?;
    let mut limits = HashMap::new();
    let mut unreadable = Vec::new();
    for (queue, text) in stored {
        match QueueLimit::decode(&text) {
            Ok(limit) => {
                limits.insert(queue, limit);
            }
            Err(e) => unreadable.push((queue, e)),
        }
    }
    Ok((limits, unreadable))
}

/// Sets `queue`'s limit (checked first), replacing any; with `only_if_unset`, leaves one
/// already there alone (how settings seed a limit an operator may have changed since).
/// Returns whether it was written.
pub async fn set_limit<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    limit: &QueueLimit,
    only_if_unset: bool,
) -> Result<bool, SetLimitError> {
    limit.check()?;
    let written: bool = redis::cmd(if only_if_unset { "HSETNX" } else { "HSET" })
        .arg(keys.limits())
        .arg(queue)
        .arg(limit.encode())
        .query_async(conn)
        .await?;
    if written || !only_if_unset {
        set_group_limit(conn, keys, queue, Some(limit)).await?;
    }
    Ok(written || !only_if_unset)
}

/// How many groups of `queue` have jobs waiting their turn, over every partition.
pub async fn groups_waiting<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u64> {
    let count = crate::partition::read_partition_count(conn, keys, queue).await?;
    let mut pipe = redis::pipe();
    for index in 0..count {
        pipe.zcard(keys.groups(&crate::partition::partition_name(queue, index)));
    }
    let counts: Vec<u64> = pipe.query_async(conn).await?;
    Ok(counts.into_iter().sum())
}

/// Writes `queue`'s stored group limit to every partition it has now: after its
/// partition count rose, the new partitions' scripts see it too.
pub async fn sync_group_limit<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<()> {
    let stored: Option<String> = redis::cmd("HGET")
        .arg(keys.limits())
        .arg(queue)
        .query_async(conn)
        .await?;
    let limit = stored.and_then(|text| QueueLimit::decode(&text).ok());
    match limit {
        Some(limit) if limit.limits_groups() => {
            set_group_limit(conn, keys, queue, Some(&limit)).await
        }
        _ => Ok(()),
    }
}

/// How many of a partition's waiting groups [`busiest_groups`] looks at: the ones that
/// have waited longest for a look.
pub const GROUPS_EXAMINED: usize = 100;

/// One group waiting its turn, and its use of its limits now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupUse {
    /// The group's name.
    pub group: String,
    /// Its jobs waiting their turn.
    pub waiting: u64,
    /// Its jobs let through and not known to have ended (those that ended without giving
    /// their place back are dropped at the next look).
    pub let_through: u64,
}

/// The `most` groups of `queue` with the most jobs waiting their turn, most first, among
/// the [`GROUPS_EXAMINED`] of each partition due for a look soonest: one `ZRANGE`, then
/// one `LLEN` and one `SCARD` per group, a pipeline per partition.
pub async fn busiest_groups<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    most: usize,
) -> redis::RedisResult<Vec<GroupUse>> {
    let count = crate::partition::read_partition_count(conn, keys, queue).await?;
    let mut uses = Vec::new();
    for index in 0..count {
        let partition = crate::partition::partition_name(queue, index);
        let groups: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.groups(&partition))
            .arg(0)
            .arg(GROUPS_EXAMINED - 1)
            .query_async(conn)
            .await?;
        if groups.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for group in &groups {
            pipe.llen(keys.group_line(&partition, group))
                .scard(keys.group_flight(&partition, group));
        }
        let counts: Vec<u64> = pipe.query_async(conn).await?;
        for (group, pair) in groups.into_iter().zip(counts.chunks(2)) {
            if let [waiting, let_through] = pair {
                uses.push(GroupUse {
                    group,
                    waiting: *waiting,
                    let_through: *let_through,
                });
            }
        }
    }
    uses.sort_by(|a, b| {
        b.waiting
            .cmp(&a.waiting)
            .then_with(|| a.group.cmp(&b.group))
    });
    uses.truncate(most);
    Ok(uses)
}

/// Writes every queue's stored group limit to every partition it has now (what the
/// scheduler's leader does every few seconds: a worker that raised a queue's partition
/// count from its own settings may not write them).
pub async fn sync_group_limits<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<()> {
    let (limits, _) = read_limits(conn, keys).await?;
    for (queue, limit) in &limits {
        if limit.limits_groups() {
            set_group_limit(conn, keys, queue, Some(limit)).await?;
        }
    }
    Ok(())
}

/// The fields of a partition's `group_limit` hash, where its scripts read the limits per
/// group: the window, and the group rate as a GCRA's spacing (µs) and burst.
const GROUP_LIMIT_FIELDS: [&str; 3] = ["concurrency", "rate_spacing_us", "rate_burst"];

/// Writes (or, with `None`, removes) the limits per group where the queue's scripts read
/// them: each partition's `group_limit` (the scripts of one partition see only its hash
/// tag).
async fn set_group_limit<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    limit: Option<&QueueLimit>,
) -> redis::RedisResult<()> {
    let count = crate::partition::read_partition_count(conn, keys, queue).await?;
    let mut fields: Vec<(&str, u64)> = Vec::new();
    if let Some(limit) = limit {
        if let Some(window) = limit.group_concurrency {
            fields.push(("concurrency", u64::from(window)));
        }
        if let Some(rate) = limit.group_rate {
            fields.push(("rate_spacing_us", rate.spacing_us()));
            fields.push(("rate_burst", u64::from(limit.group_burst_in_force())));
        }
    }
    // The parts kept are overwritten and only the others removed, so that a script never
    // sees a limit missing between two writes.
    let gone: Vec<&str> = GROUP_LIMIT_FIELDS
        .into_iter()
        .filter(|name| fields.iter().all(|(kept, _)| kept != name))
        .collect();
    let mut pipe = redis::pipe();
    for index in 0..count {
        let key = keys.group_limit(&crate::partition::partition_name(queue, index));
        if !fields.is_empty() {
            // HSET with pairs (HMSET is deprecated, and left out of the roles' rules).
            pipe.cmd("HSET").arg(&key).arg(&fields).ignore();
        }
        if !gone.is_empty() {
            pipe.hdel(&key, &gone).ignore();
        }
    }
    pipe.query_async(conn).await
}

/// Removes `queue`'s limit; returns whether there was one. What its slots and rate still
/// hold expires on its own (a lease, a burst's worth of time).
pub async fn clear_limit<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<bool> {
    let had: bool = redis::cmd("HDEL")
        .arg(keys.limits())
        .arg(queue)
        .query_async(conn)
        .await?;
    set_group_limit(conn, keys, queue, None).await?;
    Ok(had)
}

/// Why a limit was not set.
#[derive(Debug, thiserror::Error)]
pub enum SetLimitError {
    /// The limit is out of bounds.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// Redis refused or was away.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// How many of a queue's concurrency slots are held now, by live holders (a holder whose
/// lease ended holds nothing, though the next admission is what removes it): one TIME,
/// one ZRANGE and one HMGET.
pub async fn slots_held<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u64> {
    let now = crate::server_time_ms(conn).await?;
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.holders(queue))
        .arg(now)
        .arg("+inf")
        .arg("BYSCORE")
        .query_async(conn)
        .await?;
    if live.is_empty() {
        return Ok(0);
    }
    let counts: Vec<Option<u64>> = redis::cmd("HMGET")
        .arg(keys.holds(queue))
        .arg(&live)
        .query_async(conn)
        .await?;
    Ok(counts.into_iter().flatten().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_write_in_one_form() {
        for (text, count, ms, shown) in [
            ("100/s", 100, 1000, "100/s"),
            ("5/m", 5, 60_000, "5/m"),
            ("20/10s", 20, 10_000, "20/10s"),
            ("1/250ms", 1, 250, "1/250ms"),
            ("3/2h", 3, 7_200_000, "3/2h"),
        ] {
            let rate: Rate = text.parse().expect(text);
            assert_eq!(rate.count, count, "{text}");
            assert_eq!(rate.per, Duration::from_millis(ms), "{text}");
            assert_eq!(rate.to_string(), shown);
        }
        for bad in [
            "", "100", "0/s", "100/", "100/d", "100/0s", "1/25h", "x/s", "5/-1s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_rate_spaces_its_jobs_and_bursts_a_tenth_of_a_second() {
        let rate: Rate = "100/s".parse().expect("a rate");
        assert_eq!(rate.spacing_us(), 10_000);
        assert_eq!(rate.default_burst(), 10);
        let slow: Rate = "5/m".parse().expect("a rate");
        assert_eq!(slow.default_burst(), 1);
    }

    #[test]
    fn a_stored_limit_reads_back_and_refuses_what_it_does_not_know() {
        let limit = QueueLimit {
            rate: Some("100/s".parse().expect("a rate")),
            burst: Some(20),
            concurrency: Some(5),
            ..QueueLimit::default()
        };
        assert_eq!(limit.encode(), "rate=100/s burst=20 concurrency=5");
        let per_group = QueueLimit::decode("group_concurrency=1").expect("reads");
        assert_eq!(per_group.group_concurrency, Some(1));
        assert!(
            !per_group.limits_starts(),
            "kept where jobs are let through"
        );
        assert_eq!(per_group.encode(), "group_concurrency=1");
        assert_eq!(QueueLimit::decode(&limit.encode()), Ok(limit));
        assert!(QueueLimit::decode("rate=100/s colour=red").is_err());
        assert!(QueueLimit::decode("").is_err());
        assert_eq!(
            QueueLimit::decode("burst=3"),
            Err(FlowError::BurstWithoutRate)
        );
        assert!(QueueLimit::decode("concurrency=0").is_err());
        let group_rate = QueueLimit::decode("group_rate=10/s group_burst=3").expect("reads");
        assert_eq!(group_rate.group_rate, Some("10/s".parse().expect("a rate")));
        assert_eq!(group_rate.group_burst_in_force(), 3);
        assert!(group_rate.limits_groups() && !group_rate.limits_starts());
        assert_eq!(group_rate.encode(), "group_rate=10/s group_burst=3");
        assert_eq!(
            QueueLimit::decode("group_burst=3"),
            Err(FlowError::GroupBurstWithoutRate)
        );
        assert!(QueueLimit::decode("group_rate=10/s group_burst=0").is_err());
    }
}
