//! A private `redis-server` for the demo, the benchmark and the chaos drill: own port,
//! no persistence (or, for the drill, an append-only file it can be restarted from),
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
    port: u16,
    cpu: Option<usize>,
    /// Keep an append-only file, fsynced every second, to restart from.
    durable: bool,
    dir: tempfile::TempDir,
}

const INSTALL_HINT: &str = "install it with `sudo apt-get install redis-server` (Debian, Ubuntu) \
or `brew install redis` (macOS), or point FLOTILLA_REDIS_URL at a running Redis";

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
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free local port")?
            .port();
        let dir = tempfile::tempdir().context("cannot create a directory for redis-server")?;
        let child = spawn(port, cpu, durable, dir.path())?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
            cpu,
            durable,
            dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and directory; a durable one loads its
    /// append-only file first.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child = spawn(self.port, self.cpu, self.durable, self.dir.path())?;
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
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

/// Runs redis-server on `port` with its files in `dir`.
fn spawn(
    port: u16,
    cpu: Option<usize>,
    durable: bool,
    dir: &std::path::Path,
) -> anyhow::Result<Child> {
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg("redis-server");
            c
        }
        None => Command::new("redis-server"),
    };
    let persistence: &[&str] = if durable {
        &["--appendonly", "yes", "--appendfsync", "everysec"]
    } else {
        &["--appendonly", "no"]
    };
    command
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run redis-server: {INSTALL_HINT}"))
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
