//! Alerts in Redis: the active ones as JSON by `<kind>:<subject>` in `{global}:alerts:active`,
//! and every raise and resolve in the `{global}:alerts` stream. What an alert means, and
//! when one holds, is the scheduler's; the fields and keys are spelt here.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::streams::StreamRangeReply;

use crate::{Keys, Status};

/// Alert events kept in the history stream (approximately, oldest dropped first).
pub const ALERT_HISTORY_KEPT: u64 = 10_000;

/// One raise or resolve, as the history stream holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlertEvent {
    /// When it happened, ms since the Unix epoch (the entry's id).
    pub at: i64,
    /// `raised` or `resolved`.
    pub event: String,
    /// What kind of alert it is, e.g. `dlq_growing`.
    pub kind: String,
    /// What it is raised for: a queue, a schedule or a worker, by name.
    pub subject: String,
    /// The text shown to an operator.
    pub message: String,
}

/// The active alerts: JSON by `<kind>:<subject>`.
pub async fn active_alerts<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<HashMap<String, String>> {
    redis::cmd("HGETALL")
        .arg(keys.active_alerts())
        .query_async(conn)
        .await
}

/// Marks the alert `field` (`<kind>:<subject>`) active with `json`, and records the raise.
pub async fn raise_alert<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    field: &str,
    json: &str,
    event: &StoredAlertEvent,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("HSET")
        .arg(keys.active_alerts())
        .arg(field)
        .arg(json)
        .ignore()
        .add_command(history_entry(keys, event))
        .ignore()
        .query_async(conn)
        .await
}

/// Ends the alert `field` (`<kind>:<subject>`), and records the resolve.
pub async fn resolve_alert<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    field: &str,
    event: &StoredAlertEvent,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("HDEL")
        .arg(keys.active_alerts())
        .arg(field)
        .ignore()
        .add_command(history_entry(keys, event))
        .ignore()
        .query_async(conn)
        .await
}

/// The history stream's entry for `event` (its time is the entry's id).
fn history_entry(keys: &Keys, event: &StoredAlertEvent) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.alerts())
        .arg("MAXLEN")
        .arg("~")
        .arg(ALERT_HISTORY_KEPT)
        .arg("*")
        .arg("event")
        .arg(&event.event)
        .arg("kind")
        .arg(&event.kind)
        .arg("subject")
        .arg(&event.subject)
        .arg("message")
        .arg(&event.message);
    cmd
}

/// The `recent` most recent raises and resolves, newest first.
pub async fn alert_history<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    recent: usize,
) -> redis::RedisResult<Vec<StoredAlertEvent>> {
    let reply: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(keys.alerts())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(recent)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|e| StoredAlertEvent {
            at: e
                .id
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
            event: e.get("event").unwrap_or_default(),
            kind: e.get("kind").unwrap_or_default(),
            subject: e.get("subject").unwrap_or_default(),
            message: e.get("message").unwrap_or_default(),
        })
        .collect())
}

/// How many jobs of `queue` went dead since `since_ms` (its index of dead ids).
pub async fn dead_since<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    since_ms: i64,
) -> redis::RedisResult<u64> {
    ended_since(conn, keys, queue, Status::Dead, since_ms).await
}

/// How many jobs of `queue` ended in `status` since `since_ms`, as its index of that
/// status still holds them (dead, cancelled and expired jobs, and completed ones that
/// have records).
pub async fn ended_since<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    status: Status,
    since_ms: i64,
) -> redis::RedisResult<u64> {
    redis::cmd("ZCOUNT")
        .arg(keys.index(queue, status))
        .arg(since_ms)
        .arg("+inf")
        .query_async(conn)
        .await
}
