//! Schedules in Redis: each definition as JSON under its name in `{global}:schedules`,
//! and each one's state (last and next tick, last job, pauses) in its hash
//! `{global}:schedule:<name>`. The fields and their forms are the wire contract's, so they
//! are spelt here; what a definition means is the scheduler's.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::Keys;

/// A schedule's state as its hash holds it; a field never written is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredScheduleState {
    pub last_tick: Option<i64>,
    pub next_tick: Option<i64>,
    pub last_job: Option<String>,
    pub last_fired_at: Option<i64>,
    pub since: Option<i64>,
    pub paused_at: Option<i64>,
    /// Remembered pauses: pairs `from-to`, comma-separated.
    pub pauses: Option<String>,
}

/// Every stored schedule definition (JSON), by name.
pub async fn schedule_definitions<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<HashMap<String, String>> {
    redis::cmd("HGETALL")
        .arg(keys.schedules())
        .query_async(conn)
        .await
}

/// The stored definition (JSON) of schedule `name`, if there is one.
pub async fn schedule_definition<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("HGET")
        .arg(keys.schedules())
        .arg(name)
        .query_async(conn)
        .await
}

/// Stores the definition (JSON) of schedule `name`, replacing any.
pub async fn put_schedule_definition<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    json: &str,
) -> redis::RedisResult<()> {
    let _: i64 = redis::cmd("HSET")
        .arg(keys.schedules())
        .arg(name)
        .arg(json)
        .query_async(conn)
        .await?;
    Ok(())
}

/// Starts schedule `name`'s state afresh at `now_ms`: `since` and `last_tick` both now,
/// so nothing before it is fired or expected.
pub async fn restart_schedule<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
    now_ms: i64,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(keys.schedule(name))
        .ignore()
        .cmd("HSET")
        .arg(keys.schedule(name))
        .arg("since")
        .arg(now_ms)
        .arg("last_tick")
        .arg(now_ms)
        .ignore()
        .query_async(conn)
        .await
}

/// Removes schedule `name` and its state; false when there was no such schedule.
pub async fn remove_schedule<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<bool> {
    let (removed, _): (i64, i64) = redis::pipe()
        .cmd("HDEL")
        .arg(keys.schedules())
        .arg(name)
        .cmd("DEL")
        .arg(keys.schedule(name))
        .query_async(conn)
        .await?;
    Ok(removed > 0)
}

/// Schedule `name`'s state.
pub async fn read_schedule_state<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    name: &str,
) -> redis::RedisResult<StoredScheduleState> {
    let hash: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.schedule(name))
        .query_async(conn)
        .await?;
    let number = |field: &str| hash.get(field).and_then(|v| v.parse::<i64>().ok());
    Ok(StoredScheduleState {
        last_tick: number("last_tick"),
        next_tick: number("next_tick"),
        last_job: hash.get("last_job").cloned(),
        last_fired_at: number("last_fired_at"),
        since: number("since"),
        paused_at: number("paused_at"),
        pauses: hash.get("pauses").cloned(),
    })
}

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
