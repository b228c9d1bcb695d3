//! The reads an operator's lists, counts and charts page through: ranges of a queue's
//! streams and sorted sets, the group's pending entries with the entries themselves, and
//! fields of job records. Each is one call (or one pipeline), so a caller bounds its cost
//! by the page size it asks for.

use redis::aio::ConnectionLike;

use crate::{
    CONSUMER_GROUP, Keys, LAST_POSSIBLE_ID, Status, StreamEntry, range_completions, range_entries,
};

/// Up to `count` entries of `stream` (a key) between `first` and `second` (stream range
/// bounds, `(` for exclusive), newest first when `reverse` (then `first` is the newer).
pub async fn stream_range<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    first: &str,
    second: &str,
    count: usize,
    reverse: bool,
) -> redis::RedisResult<Vec<StreamEntry>> {
    let reply = range_reply(conn, stream, first, second, count, reverse).await?;
    Ok(reply.map(range_entries).unwrap_or_default())
}

/// As [`stream_range`] over a `done` stream: its completions (several to an entry that
/// holds a worker's batch, each under that entry's id), and how many entries held them,
/// which is what a caller compares with `count` to know whether more may follow.
pub async fn completions_range<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    first: &str,
    second: &str,
    count: usize,
    reverse: bool,
) -> redis::RedisResult<(Vec<StreamEntry>, usize)> {
    let reply = range_reply(conn, stream, first, second, count, reverse).await?;
    Ok(reply.map(range_completions).unwrap_or_default())
}

/// The raw XRANGE (or XREVRANGE) reply; `None` for a range past the last possible id.
async fn range_reply<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    first: &str,
    second: &str,
    count: usize,
    reverse: bool,
) -> redis::RedisResult<Option<redis::Value>> {
    // Nothing lies past the last possible id (one entry added there by hand), and Redis
    // refuses a range that starts after it.
    let past_the_end = format!("({LAST_POSSIBLE_ID}");
    if first == past_the_end || second == past_the_end {
        return Ok(None);
    }
    let reply: redis::Value = redis::cmd(if reverse { "XREVRANGE" } else { "XRANGE" })
        .arg(stream)
        .arg(first)
        .arg(second)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(Some(reply))
}

/// One entry of the group's pending-entries list, and the entry itself when the stream
/// still holds it (a cancelled job's entry is deleted while pending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The stream entry id it is pending for.
    pub entry_id: String,
    /// The consumer (worker instance) that holds it.
    pub consumer: String,
    /// How many times the group has delivered it.
    pub deliveries: u64,
    /// The entry, or `None` when the stream no longer holds it.
    pub entry: Option<StreamEntry>,
}

/// Up to `count` pending entries of `queue` from `start` (a range bound) on, oldest
/// first, each with its entry: two round trips. None when no worker made the group yet.
pub async fn pending_entries<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    start: &str,
    count: usize,
) -> redis::RedisResult<Vec<PendingEntry>> {
    let stream = keys.stream(queue);
    let pending: Vec<(String, String, u64, u64)> = match redis::cmd("XPENDING")
        .arg(&stream)
        .arg(CONSUMER_GROUP)
        .arg(start)
        .arg("+")
        .arg(count)
        .query_async(conn)
        .await
    {
        Ok(pending) => pending,
        Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (entry_id, ..) in &pending {
        pipe.cmd("XRANGE").arg(&stream).arg(entry_id).arg(entry_id);
    }
    let ranges: Vec<redis::Value> = pipe.query_async(conn).await?;
    Ok(pending
        .into_iter()
        .zip(ranges)
        .map(
            |((entry_id, consumer, _idle, deliveries), range)| PendingEntry {
                entry: range_entries(range).pop(),
                entry_id,
                consumer,
                deliveries,
            },
        )
        .collect())
}

/// The id of the last entry the group has read from `queue`, if the group exists.
pub async fn last_delivered<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<Option<String>> {
    let groups = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.stream(queue))
        .query_async::<redis::streams::StreamInfoGroupsReply>(conn)
        .await;
    Ok(groups.ok().and_then(|reply| {
        reply
            .groups
            .into_iter()
            .find(|g| g.name == CONSUMER_GROUP)
            .map(|g| g.last_delivered_id)
    }))
}

/// Members of the sorted set `key` with scores between `near` and `far` (score bounds:
/// numbers, `-inf`, `+inf`, `(` for exclusive), `count` of them from `offset`, in score
/// order (descending when `reverse`, then `near` is the higher bound).
pub async fn scored_range<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    near: &str,
    far: &str,
    reverse: bool,
    offset: usize,
    count: usize,
) -> redis::RedisResult<Vec<(String, f64)>> {
    let mut cmd = redis::cmd("ZRANGE");
    cmd.arg(key).arg(near).arg(far).arg("BYSCORE");
    if reverse {
        cmd.arg("REV");
    }
    cmd.arg("LIMIT")
        .arg(offset)
        .arg(count)
        .arg("WITHSCORES")
        .query_async(conn)
        .await
}

/// Members `from`..=`to` (ranks) of the sorted set `key`, lowest score first.
pub async fn ranked_members<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    from: usize,
    to: usize,
) -> redis::RedisResult<Vec<String>> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(from)
        .arg(to)
        .query_async(conn)
        .await
}

/// How many ids of `status` in `queue`'s index are scored before `before_ms`.
pub async fn indexed_before<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    status: Status,
    before_ms: i64,
) -> redis::RedisResult<u64> {
    redis::cmd("ZCOUNT")
        .arg(keys.index(queue, status))
        .arg("-inf")
        .arg(format!("({before_ms}"))
        .query_async(conn)
        .await
}

/// The named fields of the records of jobs `ids` of `queue`, one pipeline: for each id,
/// each field's value (`None` when the record or the field is missing).
pub async fn record_fields<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    ids: &[String],
    fields: &[&str],
) -> redis::RedisResult<Vec<Vec<Option<String>>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET").arg(keys.job(queue, id)).arg(fields);
    }
    pipe.query_async(conn).await
}
