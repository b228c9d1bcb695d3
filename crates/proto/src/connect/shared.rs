//! The multiplexed connection every part shares for the calls that do not block. For
//! one server it is redis-rs's reconnecting `ConnectionManager`; behind Sentinel it also
//! asks the sentinels again when the server it talks to is gone or has become a replica,
//! and moves to the new primary; on a Redis Cluster it is redis-rs's cluster connection.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::target::RedisTarget;

/// How often a connection behind Sentinel asks where the primary is while calls fail:
/// often enough to move within a second of a failover, rarely enough that a burst of
/// failing calls makes one lookup, not one each.
const LOOKUP_INTERVAL: Duration = Duration::from_millis(250);

/// A cheap-to-clone connection for commands, pipelines and scripts, and the target it was
/// made for (none when made from a bare `ConnectionManager`), from which a connection of
/// its own can be opened for a call that blocks.
#[derive(Clone)]
pub struct SharedConnection(Inner, Option<Arc<RedisTarget>>);

#[derive(Clone)]
enum Inner {
    Fixed(ConnectionManager),
    Following(Arc<Following>),
    /// redis-rs's cluster connection: it routes each command by its key's slot and
    /// follows MOVED, ASK and failovers; pipelines are split by slot on the way.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Fixed(_) => f.write_str("SharedConnection(server)"),
            Inner::Cluster(_) => f.write_str("SharedConnection(cluster)"),
            Inner::Following(following) => f
                .debug_tuple("SharedConnection")
                .field(&following.target)
                .finish(),
        }
    }
}

impl From<ConnectionManager> for SharedConnection {
    fn from(manager: ConnectionManager) -> Self {
        Self(Inner::Fixed(manager), None)
    }
}

impl SharedConnection {
    /// A connection to `target` that connects on first use, so that a process can start
    /// before Redis does.
    pub fn lazy(target: &RedisTarget, config: ConnectionManagerConfig) -> RedisResult<Self> {
        if let Some(client) = target.cluster_client() {
            let mut cluster_config = ClusterConfig::new();
            if let Some(timeout) = config.connection_timeout() {
                cluster_config = cluster_config.set_connection_timeout(timeout);
            }
            if let Some(timeout) = config.response_timeout() {
                cluster_config = cluster_config.set_response_timeout(timeout);
            }
            let conn = client.get_pending_async_connection_with_config(cluster_config);
            return Ok(Self(Inner::Cluster(conn), Some(Arc::new(target.clone()))));
        }
        if target.follows_primary() {
            return Ok(Self(
                Inner::Following(Arc::new(Following {
                    target: target.clone(),
                    config,
                    current: RwLock::new(None),
                    lookup: tokio::sync::Mutex::new(None),
                })),
                Some(Arc::new(target.clone())),
            ));
        }
        let client = target.server_client().ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a Sentinel target has no fixed server",
            ))
        })?;
        Ok(Self(
            Inner::Fixed(ConnectionManager::new_lazy_with_config(client, config)?),
            Some(Arc::new(target.clone())),
        ))
    }

    /// A connection to `target`, made now: the error says why Redis cannot be reached.
    pub async fn connect(
        target: &RedisTarget,
        config: ConnectionManagerConfig,
    ) -> RedisResult<Self> {
        let mut conn = Self::lazy(target, config)?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(conn)
    }

    /// A connection to `target`, made now, whose calls may take up to `response_timeout`
    /// (redis-rs's default is 500 ms): for a bulk pipeline or a WAIT for replicas. A
    /// server that is gone still fails a call through its connection.
    pub async fn connect_waiting(
        target: &RedisTarget,
        response_timeout: Duration,
    ) -> RedisResult<Self> {
        let config = ConnectionManagerConfig::new().set_response_timeout(Some(response_timeout));
        Self::connect(target, config).await
    }

    /// Whether this reaches a Redis Cluster, where a SCAN covers one node only.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }

    /// A connection of its own to the same Redis (the same server, the primary Sentinel
    /// names, or the cluster), for a call that blocks up to `block`: a blocking read on
    /// this shared connection would hold up every call behind it. `None` when this
    /// connection was made from a bare `ConnectionManager` and knows no target.
    pub fn dedicated(&self, block: Duration) -> Option<RedisResult<Self>> {
        let target = self.1.as_ref()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(block * 2 + Duration::from_secs(5)));
        Some(Self::lazy(target, config))
    }
}

/// Why the sentinels are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Nothing is connected yet.
    FirstUse,
    /// A call failed in a way that a failover explains.
    AfterError,
}

/// The state of a connection that follows a primary named by Sentinel.
struct Following {
    target: RedisTarget,
    config: ConnectionManagerConfig,
    /// The manager for the primary last found, and where that was.
    current: RwLock<Option<(ConnectionManager, ConnectionAddr)>>,
    /// Held while asking the sentinels; holds when they were last asked.
    lookup: tokio::sync::Mutex<Option<Instant>>,
}

impl Following {
    fn current(&self) -> Option<ConnectionManager> {
        match self.current.read() {
            Ok(current) => current.as_ref().map(|(manager, _)| manager.clone()),
            Err(poisoned) => poisoned.into_inner().as_ref().map(|(m, _)| m.clone()),
        }
    }

    /// The manager to use now: the current one, or one for the primary found first.
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        match self.current() {
            Some(manager) => Ok(manager),
            None => self.relocate(Lookup::FirstUse).await,
        }
    }

    /// Asks the sentinels where the primary is and moves there if it moved.
    async fn relocate(&self, why: Lookup) -> RedisResult<ConnectionManager> {
        let mut last = self.lookup.lock().await;
        let asked_recently = last.is_some_and(|at| at.elapsed() < LOOKUP_INTERVAL);
        // Another caller may have found the primary while this one waited for the lock.
        if let Some(manager) = self.current()
            && (why == Lookup::FirstUse || asked_recently)
        {
            return Ok(manager);
        }
        *last = Some(Instant::now());
        let client = self.target.client().await?;
        let addr = client.get_connection_info().addr().clone();
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((manager, at)) = current.as_ref()
            && *at == addr
        {
            return Ok(manager.clone());
        }
        tracing::info!(primary = %addr, target = %self.target.shown(), "following the primary Sentinel names");
        let manager = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        *current = Some((manager.clone(), addr));
        Ok(manager)
    }

    async fn after(&self, error: &RedisError) {
        if primary_may_have_moved(error) {
            // The call's own error is what the caller sees; a failed lookup only means
            // the sentinels do not know yet, and the next failing call asks again.
            if let Err(lookup) = self.relocate(Lookup::AfterError).await {
                tracing::debug!(error = %lookup, "asking Sentinel for the primary failed");
            }
        }
    }
}

/// Errors after which the server may no longer be the primary: it is unreachable, or it
/// answers as a replica (a failed primary that came back).
fn primary_may_have_moved(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || matches!(error.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Fixed(manager) => manager.req_packed_command(cmd),
            Inner::Cluster(conn) => match super::cluster::scan_routing(cmd) {
                Some(routing) => Box::pin(conn.route_command(cmd.clone(), routing)),
                None => conn.req_packed_command(cmd),
            },
            Inner::Following(following) => Box::pin(async move {
                let mut manager = following.manager().await?;
                let reply = manager.req_packed_command(cmd).await;
                if let Err(error) = &reply {
                    following.after(error).await;
                }
                reply
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Fixed(manager) => manager.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(conn) => {
                Box::pin(super::cluster::send_pipeline(conn, pipeline, offset, count))
            }
            Inner::Following(following) => Box::pin(async move {
                let mut manager = following.manager().await?;
                let reply = manager.req_packed_commands(pipeline, offset, count).await;
                if let Err(error) = &reply {
                    following.after(error).await;
                }
                reply
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Fixed(manager) => manager.get_db(),
            Inner::Cluster(_) => 0,
            Inner::Following(following) => following.target.db(),
        }
    }
}
