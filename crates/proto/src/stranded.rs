//! Job records whose job is not where their status says: a `running` job whose entry is
//! no longer pending, a `pending` job whose entry is gone, a `scheduled` or retrying job
//! missing from `delayed`. Reconciliation finds them and puts them back.

use redis::aio::ConnectionLike;

use crate::{CONSUMER_GROUP, Keys, field};

/// Where a record says its job is, and it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPlace {
    /// Running, but its entry is not pending.
    Running,
    /// Pending, but its entry is not on the stream.
    Pending,
    /// Waiting for a time (scheduled, or failed and to be retried), but not in `delayed`.
    Waiting,
}

/// The records among `records` (keys of job records of `queue`) whose job is not where
/// their status says: one read of their states, then one of their places.
pub async fn stranded_records<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    records: &[String],
) -> redis::RedisResult<Vec<(String, RecordPlace)>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for key in records {
        pipe.cmd("HMGET")
            .arg(key)
            .arg(&[field::STATUS, field::ENTRY, field::ID][..]);
    }
    let fields: Vec<(Option<String>, Option<String>, Option<String>)> =
        pipe.query_async(conn).await?;
    let delayed = keys.delayed(queue);
    let stream = keys.stream(queue);
    let mut checks = Vec::new();
    let mut pipe = redis::pipe();
    for (key, (status, entry, id)) in records.iter().zip(fields) {
        let entry = entry.unwrap_or_default();
        match status.as_deref() {
            Some("scheduled" | "failed") if id.is_some() => {
                // ZMSCORE answers an array (of one nil when missing), as the checks
                // below expect of their replies.
                pipe.cmd("ZMSCORE")
                    .arg(&delayed)
                    .arg(id.unwrap_or_default());
                checks.push((key.clone(), RecordPlace::Waiting));
            }
            Some("running") if !entry.is_empty() => {
                pipe.cmd("XPENDING")
                    .arg(&stream)
                    .arg(CONSUMER_GROUP)
                    .arg(&entry)
                    .arg(&entry)
                    .arg(1);
                checks.push((key.clone(), RecordPlace::Running));
            }
            Some("pending") if !entry.is_empty() => {
                pipe.cmd("XRANGE").arg(&stream).arg(&entry).arg(&entry);
                checks.push((key.clone(), RecordPlace::Pending));
            }
            _ => {}
        }
    }
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    // An empty reply: no pending entry, or no entry at all; a nil score: not delayed.
    Ok(checks
        .into_iter()
        .zip(replies)
        .filter(|(_, reply)| match reply {
            redis::Value::Array(items) => {
                items.is_empty() || items.iter().all(|i| matches!(i, redis::Value::Nil))
            }
            _ => false,
        })
        .map(|(check, _)| check)
        .collect())
}
