//! The one clock every deadline is judged on: the Redis server's. Workers, schedulers and
//! operators' tools run on machines whose clocks disagree; the heartbeats, leases, due
//! times and retention they compare are all stamped by the server.

use redis::aio::ConnectionLike;

/// The server's clock in milliseconds since the Unix epoch.
pub async fn server_time_ms<C: ConnectionLike + Send>(conn: &mut C) -> redis::RedisResult<i64> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs * 1000 + micros / 1000)
}
