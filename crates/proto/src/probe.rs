//! The question readiness probes ask of a process: does its Redis answer, and quickly?

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
