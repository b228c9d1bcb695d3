//! A private `redis-server` for the demo, the benchmark and the chaos drill: the harness's,
//! on its own port, with no persistence (or, for the drill, an append-only file it can be
//! restarted from), killed on drop; its readiness awaited without blocking the runtime.

use std::time::{Duration, Instant};

use anyhow::bail;
use flotilla_harness::{RedisOptions, RedisServer};

/// A redis-server child process.
#[derive(Debug)]
pub struct LocalRedis {
    server: RedisServer,
    pub url: String,
}

impl LocalRedis {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on_cpu(None).await
    }

    /// Starts the server, pinned to one CPU with `taskset` when `cpu` is given.
    pub async fn start_on_cpu(cpu: Option<usize>) -> anyhow::Result<Self> {
        Self::start_with(cpu, false).await
    }

    /// Starts a server that keeps an append-only file (`appendfsync everysec`), so that
    /// after [`LocalRedis::crash`] a [`LocalRedis::restart`] loads what it had.
    pub async fn start_durable() -> anyhow::Result<Self> {
        Self::start_with(None, true).await
    }

    async fn start_with(cpu: Option<usize>, durable: bool) -> anyhow::Result<Self> {
        let server = RedisServer::launch(RedisOptions {
            tcp: true,
            cpu,
            durable,
            ..RedisOptions::default()
        })?;
        let server = Self {
            url: server.url(),
            server,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would.
    pub fn crash(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same port and directory; a durable one loads its
    /// append-only file first.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.server.relaunch()?;
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let deadline = Instant::now() + flotilla_harness::STARTUP;
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && flotilla_proto::ping(&mut conn).await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server did not answer PING on {} within 10 s",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
