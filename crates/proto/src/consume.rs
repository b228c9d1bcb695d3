//! The consumer group as workers and reconciliation use it outside the scripts: new
//! entries (at once, or blocking on a connection of its own), entries reclaimed from gone
//! owners with their delivery counts, who owns pending entries and how many, the groups a
//! worker sets up, the paused set, the cancels counters, and a worker's leaving the
//! registry.

use std::collections::{HashMap, HashSet};

use redis::aio::ConnectionLike;
use redis::streams::StreamAutoClaimReply;

use crate::{CONSUMER_GROUP, Keys, StreamEntry, read_reply_entries};

/// One entry read from a queue's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEntry {
    /// The queue (or partition) whose stream it was read from.
    pub queue: String,
    /// The entry as read.
    pub entry: StreamEntry,
}

/// Up to `count` new entries of `queue` for `consumer`, without waiting.
pub async fn read_new<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    consumer: &str,
    count: usize,
) -> redis::RedisResult<Vec<QueuedEntry>> {
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(keys.stream(queue))
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(queued_entries(reply, keys, &[queue]))
}

/// The read of up to `count` new entries from each of `queues` for `consumer`, waiting up
/// to `block_ms` for the first: a command for a connection of its own (a blocking read
/// holds its connection), whose reply [`queued_entries`] reads.
pub fn read_new_blocking(
    keys: &Keys,
    queues: &[&str],
    consumer: &str,
    count: usize,
    block_ms: u64,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS");
    for queue in queues {
        cmd.arg(keys.stream(queue));
    }
    for _ in queues {
        cmd.arg(">");
    }
    cmd
}

/// The entries of an XREADGROUP reply over `queues`, each named by its queue.
pub fn queued_entries(reply: redis::Value, keys: &Keys, queues: &[&str]) -> Vec<QueuedEntry> {
    read_reply_entries(reply)
        .into_iter()
        .flat_map(|(stream, entries)| {
            let queue = queues
                .iter()
                .find(|q| keys.stream(q) == stream)
                .map_or_else(String::new, |q| (*q).to_owned());
            entries.into_iter().map(move |entry| QueuedEntry {
                queue: queue.clone(),
                entry,
            })
        })
        .collect()
}

/// What a reclaim took: entries now this consumer's, and the ids of entries deleted from
/// the stream while pending (lost jobs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// The entries now pending under this consumer.
    pub entries: Vec<StreamEntry>,
    /// Ids of entries that were pending but are gone from the stream; the group forgets
    /// them.
    pub deleted: Vec<String>,
}

/// Takes up to `count` entries of `queue` idle for `min_idle_ms` or more for `consumer`
/// (XAUTOCLAIM, following its cursor to the end of the pending list).
pub async fn reclaim_idle<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    consumer: &str,
    min_idle_ms: u64,
    count: usize,
) -> redis::RedisResult<Reclaimed> {
    let stream = keys.stream(queue);
    let mut found = Reclaimed::default();
    let mut cursor = "0-0".to_owned();
    loop {
        let want = count - found.entries.len();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(want)
            .query_async(conn)
            .await?;
        found.deleted.extend(reply.deleted_ids);
        found
            .entries
            .extend(reply.claimed.iter().map(StreamEntry::from_stream_id));
        cursor = reply.next_stream_id;
        if cursor == "0-0" || found.entries.len() >= count {
            return Ok(found);
        }
    }
}

/// The delivery counts of `entries` of `queue` pending under `consumer`, in one XPENDING
/// over their range; an entry missing from the answer is no longer this consumer's.
pub async fn delivery_counts<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    consumer: &str,
    entries: &[&str],
) -> redis::RedisResult<HashMap<String, u64>> {
    let (Some(low), Some(high)) = (
        entries.iter().min_by_key(|id| entry_order(id)),
        entries.iter().max_by_key(|id| entry_order(id)),
    ) else {
        return Ok(HashMap::new());
    };
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(keys.stream(queue))
        .arg(CONSUMER_GROUP)
        .arg(low)
        .arg(high)
        .arg(entries.len() + 10_000)
        .arg(consumer)
        .query_async(conn)
        .await?;
    Ok(pending
        .into_iter()
        .map(|(id, _, _, count)| (id, count))
        .collect())
}

/// The consumers that own pending entries of `queue` (XPENDING's summary).
pub async fn pending_owners<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<Vec<String>> {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(keys.stream(queue))
        .arg(CONSUMER_GROUP)
        .query_async(conn)
        .await?;
    Ok(owners_of_summary(&summary))
}

/// One consumer of a queue's group, as `XINFO CONSUMERS` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConsumer {
    /// Its consumer name (a worker's instance id).
    pub name: String,
    /// Entries delivered to it and not yet acknowledged.
    pub pending: u64,
    /// How long since it last read or claimed, in ms.
    pub idle_ms: u64,
}

/// The consumers of `queue`'s group; `None` when there is no stream or group yet.
pub async fn group_consumers<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> Option<Vec<GroupConsumer>> {
    let reply: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(keys.stream(queue))
        .arg(CONSUMER_GROUP)
        .query_async(conn)
        .await
        .ok()?;
    Some(
        reply
            .consumers
            .into_iter()
            .map(|c| GroupConsumer {
                name: c.name,
                pending: c.pending as u64,
                idle_ms: c.idle as u64,
            })
            .collect(),
    )
}

/// Up to `count` ids of entries of `queue` pending under `consumer`, oldest first.
pub async fn pending_of<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    consumer: &str,
    count: usize,
) -> redis::RedisResult<Vec<String>> {
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(keys.stream(queue))
        .arg(CONSUMER_GROUP)
        .arg("-")
        .arg("+")
        .arg(count)
        .arg(consumer)
        .query_async(conn)
        .await?;
    Ok(pending.into_iter().map(|(entry, ..)| entry).collect())
}

/// Entry `entry_id` of `queue`'s stream, if it is still there.
pub async fn read_entry<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    entry_id: &str,
) -> redis::RedisResult<Option<StreamEntry>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.stream(queue))
        .arg(entry_id)
        .arg(entry_id)
        .query_async(conn)
        .await?;
    Ok(reply.ids.first().map(StreamEntry::from_stream_id))
}

/// One step of a SCAN over the keys matching `pattern`: the next cursor and the keys.
pub async fn scan_step<C: ConnectionLike + Send>(
    conn: &mut C,
    cursor: u64,
    pattern: &str,
    count: usize,
) -> redis::RedisResult<(u64, Vec<String>)> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
}

/// Consumer names from an `XPENDING key group` summary reply.
fn owners_of_summary(summary: &redis::Value) -> Vec<String> {
    let redis::Value::Array(parts) = summary else {
        return Vec::new();
    };
    let Some(redis::Value::Array(consumers)) = parts.get(3) else {
        return Vec::new();
    };
    consumers
        .iter()
        .filter_map(|c| match c {
            redis::Value::Array(pair) => pair
                .first()
                .and_then(|name| redis::from_redis_value_ref::<String>(name).ok()),
            _ => None,
        })
        .collect()
}

/// Creates each queue's stream and consumer group if missing, and lists the queues where
/// operators' tools find them.
pub async fn ensure_groups<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queues: &[&str],
) -> redis::RedisResult<()> {
    for queue in queues {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.stream(queue))
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
    }
    crate::list_queues(conn, keys, queues).await
}

/// The paused queues.
pub async fn paused_queues<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<HashSet<String>> {
    redis::cmd("SMEMBERS")
        .arg(keys.paused())
        .query_async(conn)
        .await
}

/// Marks `queue` paused (workers stop fetching from it) or, with `paused` false, not.
pub async fn set_paused<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    paused: bool,
) -> redis::RedisResult<()> {
    redis::cmd(if paused { "SADD" } else { "SREM" })
        .arg(keys.paused())
        .arg(queue)
        .query_async(conn)
        .await
}

/// Takes worker `id` out of the registry (it leaves cleanly: no one need judge it gone).
pub async fn leave_registry<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    id: &str,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("ZREM")
        .arg(keys.workers())
        .arg(id)
        .ignore()
        .cmd("DEL")
        .arg(keys.worker(id))
        .ignore()
        .query_async(conn)
        .await
}

/// A stream entry id as numbers, for ordering (a malformed one sorts as 0).
fn entry_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// The cancels counters of `queues` ([`Keys::cancels`]), in one round trip (0 where a
/// queue has none yet).
pub async fn cancel_counts<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queues: &[String],
) -> redis::RedisResult<Vec<u64>> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for queue in queues {
        pipe.cmd("GET").arg(keys.cancels(queue));
    }
    let counts: Vec<Option<u64>> = pipe.query_async(conn).await?;
    Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_come_from_the_fourth_part_of_the_summary() {
        let pair = |name: &str, n: &str| {
            redis::Value::Array(vec![
                redis::Value::BulkString(name.as_bytes().to_vec()),
                redis::Value::BulkString(n.as_bytes().to_vec()),
            ])
        };
        let summary = redis::Value::Array(vec![
            redis::Value::Int(3),
            redis::Value::BulkString(b"1-0".to_vec()),
            redis::Value::BulkString(b"3-0".to_vec()),
            redis::Value::Array(vec![pair("w1", "2"), pair("w2", "1")]),
        ]);
        assert_eq!(owners_of_summary(&summary), ["w1", "w2"]);
        assert!(owners_of_summary(&redis::Value::Nil).is_empty());
    }

    #[test]
    fn entry_ids_order_as_numbers() {
        assert!(entry_order("9-9") < entry_order("10-0"));
        assert!(entry_order("10-2") < entry_order("10-10"));
    }
}
