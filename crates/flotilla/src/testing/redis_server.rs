//! A private `redis-server` for one test (the harness's: a unix socket in a temporary
//! directory, no persistence, killed when dropped), or a Redis of the user's.

use std::time::{Duration, Instant};

use flotilla_proto::{RedisTarget, SharedConnection};

use super::TestError;

/// A Redis for tests: a `redis-server` this process started, or the one
/// `FLOTILLA_TEST_REDIS_URL` names.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    /// The server this process started, held so that dropping this kills it; `None` for
    /// a Redis of the user's.
    _server: Option<flotilla_harness::RedisServer>,
}

impl TestRedis {
    /// Starts a `redis-server` (or takes `FLOTILLA_TEST_REDIS_URL`) and waits until it
    /// answers.
    pub async fn start() -> Result<Self, TestError> {
        if let Ok(url) = std::env::var("FLOTILLA_TEST_REDIS_URL") {
            let redis = Self { url, _server: None };
            redis.answers().await?;
            return Ok(redis);
        }
        let server = flotilla_harness::RedisServer::launch(Default::default())
            .map_err(|e| TestError::RedisServer(e.to_string()))?;
        let redis = Self {
            url: server.unix_url(),
            _server: Some(server),
        };
        redis.answers().await?;
        Ok(redis)
    }

    /// Where it listens, as a URL every Flotilla part takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to it.
    pub async fn connect(&self) -> Result<SharedConnection, TestError> {
        let target = RedisTarget::parse(&self.url)
            .map_err(|e| TestError::RedisServer(format!("{}: {e}", self.url)))?;
        SharedConnection::connect(&target, Default::default())
            .await
            .map_err(|e| TestError::RedisServer(format!("{}: {e}", self.url)))
    }

    /// Waits until the server takes a connection.
    async fn answers(&self) -> Result<(), TestError> {
        let deadline = Instant::now() + flotilla_harness::STARTUP;
        loop {
            match self.connect().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
