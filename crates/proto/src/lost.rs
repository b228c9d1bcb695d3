//! The record of lost jobs: stream entries deleted while still pending, written by whoever
//! finds them (a worker's reclaim, the reconciler's repair) and read by alerting.

use crate::Keys;

/// Lost-job reports kept (approximately, oldest dropped first).
const KEPT: u64 = 10_000;

/// The command that records `entry_ids` of `queue` as lost.
pub fn record_lost(keys: &Keys, queue: &str, entry_ids: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.lost())
        .arg("MAXLEN")
        .arg("~")
        .arg(KEPT)
        .arg("*")
        .arg("queue")
        .arg(queue)
        .arg("entries")
        .arg(entry_ids.join(","));
    cmd
}

/// The entry ids reported lost since `since_ms`, by queue.
pub async fn lost_since<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    since_ms: i64,
) -> redis::RedisResult<std::collections::BTreeMap<String, Vec<String>>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.lost())
        .arg(since_ms)
        .arg("+")
        .query_async(conn)
        .await?;
    let mut by_queue: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in reply.ids {
        let queue: String = entry.get("queue").unwrap_or_default();
        let ids: String = entry.get("entries").unwrap_or_default();
        by_queue
            .entry(queue)
            .or_default()
            .extend(ids.split(',').map(str::to_owned));
    }
    Ok(by_queue)
}
