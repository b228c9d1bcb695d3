//! The questions a process asks of its Redis server itself: does it answer, and quickly
//! (readiness probes), and what do its statistics say (the bench).

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionLike;

/// How long a readiness check waits for Redis.
pub const READY_WITHIN: Duration = Duration::from_secs(1);

/// Runs `ping` (a PING, and whatever connecting it needs) for at most [`READY_WITHIN`]:
/// `Ok` when Redis answered, else why not, in a sentence for the probe's body.
pub async fn redis_answers<T>(
    ping: impl Future<Output = redis::RedisResult<T>>,
) -> Result<(), String> {
    match tokio::time::timeout(READY_WITHIN, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("redis unreachable: {e}")),
        Err(_) => Err(format!(
            "redis did not answer a PING within {READY_WITHIN:?}"
        )),
    }
}

/// A PING: whether the server answers at all.
pub async fn ping<C: ConnectionLike + Send>(conn: &mut C) -> redis::RedisResult<()> {
    redis::cmd("PING").query_async(conn).await
}

/// One INFO section of each server: the one server's, or every primary's of a cluster
/// (whose client answers with a map of node address to section).
pub async fn info_of_each_primary<C: ConnectionLike + Send>(
    conn: &mut C,
    section: &str,
) -> redis::RedisResult<Vec<String>> {
    let reply: redis::Value = redis::cmd("INFO").arg(section).query_async(conn).await?;
    match reply {
        redis::Value::Map(by_node) => by_node
            .into_iter()
            .map(|(_, info)| redis::from_redis_value::<String>(info).map_err(Into::into))
            .collect(),
        one => Ok(vec![redis::from_redis_value::<String>(one)?]),
    }
}

/// Resets the server's command statistics (`CONFIG RESETSTAT`), so what a measurement
/// reads after counts from now.
pub async fn reset_stats<C: ConnectionLike + Send>(conn: &mut C) -> redis::RedisResult<()> {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
}
