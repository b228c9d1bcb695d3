//! Tallies of what happens to a queue's jobs without leaving a trace of its own (a start
//! held back by a flow limit, a snooze), by the minute and the hour, so operators can read
//! "how often, lately" from Redis: one hash per queue and hour, kept for a day.

use redis::aio::ConnectionLike;

use crate::Keys;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
/// How long an hour's tally outlives the hour: a day's worth can always be read.
const KEPT_MS: u64 = 25 * HOUR_MS;

/// What is tallied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// A job's start held back by its queue's flow limit (counted once per fetch).
    Throttled,
    /// A handler's snooze ("not yet") accepted.
    Snoozed,
}

impl Tally {
    /// Its field name in an hour's hash.
    pub fn as_str(self) -> &'static str {
        match self {
            Tally::Throttled => "throttled",
            Tally::Snoozed => "snoozed",
        }
    }
}

/// One kind's counts over the last hour and the last day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recent {
    /// In the last 60 whole minutes and the current one.
    pub last_hour: u64,
    /// In the last 24 whole hours and the current one.
    pub last_day: u64,
}

/// Adds `n` to `queue`'s tally of `kind` at `now_ms` (this process's clock): one pipeline
/// of two `HINCRBY` (the minute, the hour) and a `PEXPIRE`.
pub async fn add<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    kind: Tally,
    n: u64,
    now_ms: u64,
) -> redis::RedisResult<()> {
    let hour = now_ms / HOUR_MS;
    let minute = (now_ms % HOUR_MS) / MINUTE_MS;
    let key = keys.tally(queue, hour);
    let left_ms = (hour + 1) * HOUR_MS - now_ms + KEPT_MS;
    redis::pipe()
        .hincr(&key, kind.as_str(), n)
        .ignore()
        .hincr(&key, format!("{}:{minute}", kind.as_str()), n)
        .ignore()
        .pexpire(&key, i64::try_from(left_ms).unwrap_or(i64::MAX))
        .ignore()
        .query_async(conn)
        .await
}

/// `queue`'s counts of `kind` over the last hour and day at `now_ms`: one pipeline of an
/// `HMGET` per hour of the day, and the previous hour's minutes.
pub async fn recent<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    kind: Tally,
    now_ms: u64,
) -> redis::RedisResult<Recent> {
    let hour = now_ms / HOUR_MS;
    let minute = (now_ms % HOUR_MS) / MINUTE_MS;
    let mut pipe = redis::pipe();
    for h in (hour.saturating_sub(24)..=hour).rev() {
        pipe.hget(keys.tally(queue, h), kind.as_str());
    }
    // The last hour reaches into the previous one by the minutes this one has not had.
    let earlier: Vec<String> = (minute..60)
        .map(|m| format!("{}:{m}", kind.as_str()))
        .collect();
    pipe.cmd("HMGET")
        .arg(keys.tally(queue, hour.saturating_sub(1)))
        .arg(&earlier);
    // A count that does not read as one (written by hand) counts as none.
    let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let minutes: Vec<Option<u64>> = replies
        .pop()
        .and_then(|v| redis::from_redis_value(v).ok())
        .unwrap_or_default();
    let hours: Vec<Option<u64>> = replies
        .into_iter()
        .map(|v| redis::from_redis_value::<Option<u64>>(v).ok().flatten())
        .collect();
    let this_hour = hours.first().copied().flatten().unwrap_or(0);
    Ok(Recent {
        last_hour: this_hour + minutes.into_iter().flatten().sum::<u64>(),
        last_day: hours.into_iter().flatten().sum(),
    })
}
