//! Writes to a schedule's state hash (`{global}:schedule:<name>`) when it is paused or
//! resumed: the fields and their forms are the wire contract's, so they are spelt here.

use redis::aio::ConnectionLike;

use crate::Keys;

/// Marks schedule `name` paused since `now_ms`.
pub async fn mark_schedule_paused<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    now_ms: i64,
) -> redis::RedisResult<()> {
    redis::cmd("HSET")
        .arg(keys.schedule(name))
        .arg("paused_at")
        .arg(now_ms)
        .query_async(conn)
        .await
}

/// Marks schedule `name` resumed: it goes on from `last_tick_ms` (no tick before it is
/// fired), and `pauses` (pairs `from-to`, comma-separated) are the pauses remembered.
pub async fn mark_schedule_resumed<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    last_tick_ms: i64,
    pauses: &str,
) -> redis::RedisResult<()> {
    let key = keys.schedule(name);
    redis::pipe()
        .cmd("HSET")
        .arg(&key)
        .arg("last_tick")
        .arg(last_tick_ms)
        .arg("pauses")
        .arg(pauses)
        .ignore()
        .cmd("HDEL")
        .arg(&key)
        .arg("paused_at")
        .arg("next_tick")
        .ignore()
        .query_async(conn)
        .await
}
