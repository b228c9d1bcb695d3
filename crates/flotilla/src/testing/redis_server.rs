//! A private `redis-server` for one test: a unix socket in a temporary directory, no
//! persistence, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_proto::{RedisTarget, SharedConnection};

use super::TestError;

/// How long a new server may take to answer.
const STARTUP: Duration = Duration::from_secs(10);

/// A Redis for tests: a `redis-server` this process started, or the one
/// `FLOTILLA_TEST_REDIS_URL` names.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    /// The server this process started (killed on drop) and its directory; `None` for a
    /// Redis of the user's.
    owned: Option<(Child, tempfile::TempDir)>,
}

impl TestRedis {
    /// Starts a `redis-server` (or takes `FLOTILLA_TEST_REDIS_URL`) and waits until it
    /// answers.
    pub async fn start() -> Result<Self, TestError> {
        if let Ok(url) = std::env::var("FLOTILLA_TEST_REDIS_URL") {
            let redis = Self { url, owned: None };
            redis.answers().await?;
            return Ok(redis);
        }
        let dir = tempfile::tempdir()
            .map_err(|e| TestError::RedisServer(format!("a temporary directory: {e}")))?;
        let socket: PathBuf = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .args(["--unixsocketperm", "700", "--unixsocket"])
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                TestError::RedisServer(format!(
                    "cannot run redis-server ({e}): install it (Debian: apt-get install \
                     redis-server) or set FLOTILLA_TEST_REDIS_URL"
                ))
            })?;
        let redis = Self {
            url: format!("redis+unix://{}", socket.display()),
            owned: Some((child, dir)),
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
        let deadline = Instant::now() + STARTUP;
        loop {
            match self.connect().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some((mut child, _dir)) = self.owned.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
