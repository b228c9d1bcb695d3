//! Redis connections: dedicated connections for blocking reads, whose response timeout
//! outlasts BLOCK (a shared multiplexed connection would stall behind them), and the
//! shared connection for everything else.

use std::time::Duration;

use flotilla_proto::{RedisTarget, SharedConnection};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

/// bb8 manager for connections that may sit in `XREADGROUP … BLOCK`.
#[derive(Debug, Clone)]
pub(crate) struct BlockingConnections {
    target: RedisTarget,
    response_timeout: Duration,
}

/// A blocking connection, and whether a call on it showed that it should not be reused.
#[derive(Debug)]
pub(crate) struct BlockingConnection {
    conn: MultiplexedConnection,
    /// Set when the server is gone or answers as a replica (a primary after a failover
    /// that came back): a PING would still pass, so the pool must be told.
    broken: bool,
}

impl BlockingConnections {
    pub(crate) fn new(target: RedisTarget, block_time: Duration) -> Self {
        Self {
            target,
            // Headroom over BLOCK for a slow network; a dead server still errors promptly.
            response_timeout: block_time + Duration::from_secs(5),
        }
    }
}

impl bb8::ManageConnection for BlockingConnections {
    type Connection = BlockingConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(self.response_timeout));
        // Behind Sentinel, this asks where the primary is now.
        let client = self.target.client().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(BlockingConnection {
            conn,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        flotilla_proto::ping(&mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken
    }
}

pub(crate) type BlockingPool = bb8::Pool<BlockingConnections>;

/// Where blocking reads go: a pool of dedicated connections to the one server (or to the
/// primary Sentinel names), or on a Redis Cluster a cluster connection of their own,
/// which routes each read to the node of its stream.
#[derive(Debug, Clone)]
pub(crate) enum BlockingReads {
    Pool(BlockingPool),
    Cluster(SharedConnection),
}

impl BlockingReads {
    /// Blocking reads for `target`, whose replies may take `block_time`.
    pub(crate) fn new(target: RedisTarget, block_time: Duration) -> Result<Self, RedisError> {
        if target.is_cluster() {
            // Two reads may queue on one node's connection (after slots moved, before the
            // worker read the new map), so the second reply may take two BLOCKs.
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(block_time * 2 + Duration::from_secs(5)));
            return Ok(Self::Cluster(SharedConnection::lazy(&target, config)?));
        }
        Ok(Self::Pool(blocking_pool(target, block_time, 2)))
    }

    /// Whether each blocking read must name streams of one slot only.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// The fetch loop's blocking connection, checked out once and kept while it works: the
/// pool tests a connection with a PING at checkout, which would otherwise cost a round
/// trip before every blocking read. After an error it goes back to the pool, whose next
/// checkout finds out whether it is broken.
#[derive(Debug)]
pub(crate) struct HeldConnection {
    reads: BlockingReads,
    held: Option<bb8::PooledConnection<'static, BlockingConnections>>,
}

impl HeldConnection {
    pub(crate) fn new(reads: BlockingReads) -> Self {
        Self { reads, held: None }
    }

    /// Whether each blocking read must name streams of one slot only.
    pub(crate) fn is_cluster(&self) -> bool {
        self.reads.is_cluster()
    }

    /// Runs `cmd` on the held connection, checked out first if none is held; a failed
    /// call gives the connection back to the pool.
    pub(crate) async fn query(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<redis::Value, HeldConnectionError> {
        let pool = match &self.reads {
            BlockingReads::Pool(pool) => pool,
            BlockingReads::Cluster(conn) => return Ok(cmd.query_async(&mut conn.clone()).await?),
        };
        let held = match self.held.take() {
            Some(held) => held,
            None => pool
                .get_owned()
                .await
                .map_err(|e| HeldConnectionError::Checkout(e.to_string()))?,
        };
        let held = self.held.insert(held);
        let reply = cmd.query_async(&mut held.conn).await;
        if let Err(error) = &reply {
            held.broken = error.is_unrecoverable_error() || error.code() == Some("READONLY");
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
fn blocking_pool(target: RedisTarget, block_time: Duration, size: u32) -> BlockingPool {
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(true)
        .build_unchecked(BlockingConnections::new(target, block_time))
}

/// The shared connection for everything that does not block. It reconnects by itself.
pub(crate) fn shared_connection(target: &RedisTarget) -> Result<SharedConnection, RedisError> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    SharedConnection::lazy(target, config)
}
