//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod enqueue;
pub mod jobs;
pub mod reconcile;
pub mod scheduler;
pub mod schedules;
pub mod worker;

use anyhow::Context;
use redis::aio::ConnectionManager;

/// Connects to the Redis the settings name: one connection for a one-shot command.
pub async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)
        .with_context(|| format!("redis_url {url:?} is not a valid Redis URL"))?;
    ConnectionManager::new(client)
        .await
        .with_context(|| format!("cannot connect to Redis at {url}"))
}
