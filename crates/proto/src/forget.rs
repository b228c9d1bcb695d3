//! Forgetting a queue: its name leaves the fleet's list of queues, the paused set, the
//! flow limits and the partition counts, so no tool lists it, no alert watches it and no
//! worker reads it; its rate and slots go too.
//! The caller has deleted its streams first (`remove_queue.lua`).

use redis::aio::ConnectionLike;

use crate::Keys;

/// Forgets `queue` and its `partitions` (the stream names it had, itself included).
pub async fn forget_queue<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    partitions: &[String],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.cmd("SREM")
        .arg(keys.queues())
        .arg(queue)
        .arg(partitions)
        .ignore()
        .cmd("SREM")
        .arg(keys.paused())
        .arg(queue)
        .ignore()
        .cmd("HDEL")
        .arg(keys.partitions())
        .arg(queue)
        .ignore()
        .cmd("HDEL")
        .arg(keys.limits())
        .arg(queue)
        .ignore()
        .cmd("DEL")
        .arg(keys.rate(queue))
        .arg(keys.holders(queue))
        .arg(keys.holds(queue))
        .ignore();
    pipe.query_async(conn).await
}
