//! One queue's state as a few cheap reads show it: what waits on its stream, what runs,
//! what waits for a time, what is dead, and how old the oldest waiting entry is. The
//! leader's metrics sampler and the operator's `queues stats` read it the same way.

use redis::aio::ConnectionLike;
use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};
use serde::Serialize;

use crate::{CONSUMER_GROUP, Keys};

/// The last id a stream can hold: after an entry there, Redis adds no more.
pub const LAST_POSSIBLE_ID: &str = "18446744073709551615-18446744073709551615";

/// One queue's counts, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueState {
    /// Jobs ready to run and not yet read: entries on the stream no worker has read (the
    /// stream's length less the entries read and unfinished, exact because finished
    /// entries are deleted), and jobs waiting their group's turn.
    pub pending: i64,
    /// The consumer group's lag as Redis itself reports it (what an autoscaler reading
    /// `XINFO GROUPS` sees); the unread entries where Redis cannot tell, after deletions
    /// past the group's last read.
    pub lag: i64,
    /// Entries read by a worker and not yet finished.
    pub running: i64,
    /// Jobs waiting for their time: delayed, and failed ones waiting to retry.
    pub scheduled: i64,
    /// Jobs waiting for their parents to end (protocol 2.19), on no stream yet.
    pub waiting: i64,
    /// Entries in the dead-letter stream.
    pub dead: i64,
    /// How long the oldest unread entry has waited, in seconds; 0 when none.
    pub oldest_pending_age: f64,
}

impl QueueState {
    /// Adds another partition's state to this one: counts add up, and the oldest waiting
    /// entry is the older of the two.
    pub fn absorb(&mut self, other: &QueueState) {
        self.pending += other.pending;
        self.lag += other.lag;
        self.running += other.running;
        self.scheduled += other.scheduled;
        self.waiting += other.waiting;
        self.dead += other.dead;
        self.oldest_pending_age = self.oldest_pending_age.max(other.oldest_pending_age);
    }
}

/// Reads `queue`'s state; `now_ms` is the server's clock, which entry ids follow.
pub async fn read_queue_state<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    now_ms: i64,
) -> redis::RedisResult<QueueState> {
    let stream = keys.stream(queue);
    let (length, delayed, later, dead, grouped, waiting): (i64, i64, i64, i64, Option<i64>, i64) =
        redis::pipe()
            .cmd("XLEN")
            .arg(&stream)
            .cmd("ZCARD")
            .arg(keys.delayed(queue))
            .cmd("ZCARD")
            .arg(keys.later(queue))
            .cmd("XLEN")
            .arg(keys.dead(queue))
            .cmd("GET")
            .arg(keys.grouped(queue))
            .cmd("ZCARD")
            .arg(keys.waiting(queue))
            .query_async(conn)
            .await?;
    let group = workers_group(conn, &stream).await;
    let (running, last_read, redis_lag) = match &group {
        Some(group) => (
            i64::try_from(group.pending).unwrap_or(i64::MAX),
            Some(group.last_delivered_id.as_str()),
            group.lag.and_then(|lag| i64::try_from(lag).ok()),
        ),
        None => (0, None, None),
    };
    let oldest_pending_age = first_unread_ms(conn, &stream, last_read)
        .await?
        .map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
    let on_stream = (length - running).max(0);
    Ok(QueueState {
        // A job waiting its group's turn is pending: ready, outside the stream.
        pending: on_stream + grouped.unwrap_or(0).max(0),
        lag: redis_lag.unwrap_or(on_stream),
        running,
        scheduled: delayed + later,
        waiting,
        dead,
        oldest_pending_age,
    })
}

/// Lists `queues` in the namespace's set of known queues, where operators' tools and the
/// scheduler find them (a queue is served whether or not it is listed).
pub async fn list_queues<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queues: &[&str],
) -> redis::RedisResult<()> {
    let _: i64 = redis::cmd("SADD")
        .arg(keys.queues())
        .arg(queues)
        .query_async(conn)
        .await?;
    Ok(())
}

/// The names of the namespace's known queues (each partition by its own name).
pub async fn known_queues<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<Vec<String>> {
    redis::cmd("SMEMBERS")
        .arg(keys.queues())
        .query_async(conn)
        .await
}

/// When the oldest entry of `queue` that no worker has read yet was added (ms on the
/// server's clock, from its entry id); `None` when every entry was read.
pub async fn oldest_unread_ms<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<Option<i64>> {
    let stream = keys.stream(queue);
    let group = workers_group(conn, &stream).await;
    let last_read = group.as_ref().map(|g| g.last_delivered_id.as_str());
    first_unread_ms(conn, &stream, last_read).await
}

/// The workers' consumer group of `stream`; `None` when there is no stream or group yet
/// (nothing has been read, so every entry is waiting).
async fn workers_group<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
) -> Option<redis::streams::StreamInfoGroup> {
    redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async::<StreamInfoGroupsReply>(conn)
        .await
        .ok()
        .and_then(|reply| reply.groups.into_iter().find(|g| g.name == CONSUMER_GROUP))
}

/// The time (ms) of the first entry of `stream` after `last_read` (the group's last
/// delivered id; `None`: from the start).
async fn first_unread_ms<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    last_read: Option<&str>,
) -> redis::RedisResult<Option<i64>> {
    // Past the last id a stream can hold nothing can follow, and Redis refuses the
    // range: one entry added at that id (by hand) must not blind every reader of queues.
    if last_read == Some(LAST_POSSIBLE_ID) {
        return Ok(None);
    }
    let start = last_read.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
    let oldest: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(oldest
        .ids
        .first()
        .and_then(|entry| crate::entry_id_ms(&entry.id)))
}

/// How many completions `queue`'s `done` stream has ever taken, however it is trimmed:
/// its `entries-added`, plus the completions beyond one an entry held (`done_count`'s
/// `extra`: protocol 2.11 writes a batch as one entry, a worker before it one entry per
/// completion); 0 before the first.
pub async fn completions_ever<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u64> {
    let extra: Option<u64> = redis::cmd("HGET")
        .arg(keys.done_count(queue))
        .arg("extra")
        .query_async(conn)
        .await?;
    Ok(entries_ever(conn, keys, queue).await? + extra.unwrap_or(0))
}

/// The `done` stream's `entries-added`: every entry ever appended, trimmed or not.
async fn entries_ever<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u64> {
    let info: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys.done(queue))
        .query_async(conn)
        .await;
    let info = match info {
        Ok(info) => info,
        // No completion yet: the stream does not exist.
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) => {
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    Ok(entries_added(&info).unwrap_or(0))
}

/// The `entries-added` field of an XINFO STREAM reply.
fn entries_added(info: &redis::Value) -> Option<u64> {
    let pairs: Vec<(&redis::Value, &redis::Value)> = match info {
        redis::Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    pairs.into_iter().find_map(|(k, v)| {
        let name: String = redis::from_redis_value_ref(k).ok()?;
        (name == "entries-added")
            .then(|| redis::from_redis_value_ref::<u64>(v).ok())
            .flatten()
    })
}
