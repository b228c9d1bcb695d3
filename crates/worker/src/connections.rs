//! Redis connections: a pool of dedicated connections for blocking reads, whose response
//! timeout outlasts BLOCK (a shared multiplexed connection would stall behind them).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

/// bb8 manager for connections that may sit in `XREADGROUP … BLOCK`.
#[derive(Debug, Clone)]
pub(crate) struct BlockingConnections {
    client: Client,
    response_timeout: Duration,
}

impl BlockingConnections {
    pub(crate) fn new(client: Client, block_time: Duration) -> Self {
        Self {
            client,
            // Headroom over BLOCK for a slow network; a dead server still errors promptly.
            response_timeout: block_time + Duration::from_secs(5),
        }
    }
}

impl bb8::ManageConnection for BlockingConnections {
    type Connection = MultiplexedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(self.response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        redis::cmd("PING").query_async::<()>(conn).await
    }

    fn has_broken(&self, _conn: &mut Self::Connection) -> bool {
        false
    }
}

pub(crate) type BlockingPool = bb8::Pool<BlockingConnections>;

/// The fetch loop's blocking connection, checked out once and kept while it works: the
/// pool tests a connection with a PING at checkout, which would otherwise cost a round
/// trip before every blocking read. After an error it goes back to the pool, whose next
/// checkout finds out whether it is broken.
#[derive(Debug)]
pub(crate) struct HeldConnection {
    pool: BlockingPool,
    held: Option<bb8::PooledConnection<'static, BlockingConnections>>,
}

impl HeldConnection {
    pub(crate) fn new(pool: BlockingPool) -> Self {
        Self { pool, held: None }
    }

    /// Runs `cmd` on the held connection, checked out first if none is held; a failed
    /// call gives the connection back to the pool.
    pub(crate) async fn query(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<redis::Value, HeldConnectionError> {
        let held = match self.held.take() {
            Some(held) => held,
            None => self
                .pool
                .get_owned()
                .await
                .map_err(|e| HeldConnectionError::Checkout(e.to_string()))?,
        };
        let conn = self.held.insert(held);
        let reply = cmd.query_async(&mut **conn).await;
        if reply.is_err() {
            self.held = None;
        }
        Ok(reply?)
    }
}

/// Why a call on the [`HeldConnection`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeldConnectionError {
    #[error("no connection for blocking reads: {0}")]
    Checkout(String),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// A pool of at most `size` blocking connections; it connects lazily, so a worker can
/// start before Redis is up.
pub(crate) fn blocking_pool(client: Client, block_time: Duration, size: u32) -> BlockingPool {
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(true)
        .build_unchecked(BlockingConnections::new(client, block_time))
}

/// The shared connection for everything that does not block. It reconnects by itself.
pub(crate) fn shared_connection(
    client: Client,
) -> Result<redis::aio::ConnectionManager, RedisError> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
}
