//! A private `redis-server` for the demo and the benchmark: own port, no persistence,
//! killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A redis-server child process.
#[derive(Debug)]
pub struct LocalRedis {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

const INSTALL_HINT: &str = "install it with `sudo apt-get install redis-server` (Debian, Ubuntu) \
or `brew install redis` (macOS), or point FLOTILLA_REDIS_URL at a running Redis";

impl LocalRedis {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on_cpu(None).await
    }

    /// Starts the server, pinned to one CPU with `taskset` when `cpu` is given.
    pub async fn start_on_cpu(cpu: Option<usize>) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free local port")?
            .port();
        let dir = tempfile::tempdir().context("cannot create a directory for redis-server")?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg("redis-server");
                c
            }
            None => Command::new("redis-server"),
        };
        let child = command
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run redis-server: {INSTALL_HINT}"))?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
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

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
