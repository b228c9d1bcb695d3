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
    /// Entries on the stream no worker has read yet: the stream's length less the
    /// entries read and unfinished, exact because finished entries are deleted.
    pub pending: i64,
    /// The consumer group's lag as Redis itself reports it (what an autoscaler reading
    /// `XINFO GROUPS` sees); `pending` where Redis cannot tell, after deletions past the
    /// group's last read.
    pub lag: i64,
    /// Entries read by a worker and not yet finished.
    pub running: i64,
    /// Jobs waiting for their time: delayed, and failed ones waiting to retry.
    pub scheduled: i64,
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
    let (length, delayed, later, dead): (i64, i64, i64, i64) = redis::pipe()
        .cmd("XLEN")
        .arg(&stream)
        .cmd("ZCARD")
        .arg(keys.delayed(queue))
        .cmd("ZCARD")
        .arg(keys.later(queue))
        .cmd("XLEN")
        .arg(keys.dead(queue))
        .query_async(conn)
        .await?;
    // No stream or group yet: nothing has been read, so every entry is waiting.
    let group = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&stream)
        .query_async::<StreamInfoGroupsReply>(conn)
        .await
        .ok()
        .and_then(|reply| reply.groups.into_iter().find(|g| g.name == CONSUMER_GROUP));
    let (running, last_read, redis_lag) = match &group {
        Some(group) => (
            i64::try_from(group.pending).unwrap_or(i64::MAX),
            format!("({}", group.last_delivered_id),
            group.lag.and_then(|lag| i64::try_from(lag).ok()),
        ),
        None => (0, "-".to_owned(), None),
    };
    // Past the last id a stream can hold nothing can follow, and Redis refuses the
    // range: one entry added at that id (by hand) must not blind every reader of queues.
    let oldest = if last_read == format!("({LAST_POSSIBLE_ID}") {
        StreamRangeReply::default()
    } else {
        redis::cmd("XRANGE")
            .arg(&stream)
            .arg(&last_read)
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?
    };
    let oldest_pending_age = oldest
        .ids
        .first()
        .and_then(|entry| crate::entry_id_ms(&entry.id))
        .map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
    let pending = (length - running).max(0);
    Ok(QueueState {
        pending,
        lag: redis_lag.unwrap_or(pending),
        running,
        scheduled: delayed + later,
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
