//! A private `redis-server` child: a unix socket in a temporary directory (and a local
//! TCP port when asked), nothing saved unless asked, killed on drop. Its readiness is
//! checked with a bare `PING` over the socket, so this crate needs no Redis client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{Launch, Process, Signal, send_signal};

/// How long a server may take to answer once started.
pub const STARTUP: Duration = Duration::from_secs(10);

/// What to do when `program` is missing, for the programs a newcomer may lack.
fn install_hint(program: &str) -> &'static str {
    match program {
        "redis-server" => REDIS_INSTALL_HINT,
        "taskset" => "; it comes with util-linux (Debian, Ubuntu: apt-get install util-linux)",
        _ => "",
    }
}

const REDIS_INSTALL_HINT: &str = "; install it (Debian, Ubuntu: apt-get install redis-server; macOS: \
brew install redis) or point the URL setting at a running Redis";

/// Why a server could not be started or steered.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `redis-server` (or `taskset`, or `kill`) could not be run.
    #[error("cannot run {program}: {reason}{}", install_hint(program))]
    Spawn {
        /// The program that would not start.
        program: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The server did not answer within [`STARTUP`].
    #[error("redis-server did not answer PING on {0} within 10 s")]
    NotReady(String),
    /// A temporary directory or a free port could not be had.
    #[error("cannot set up redis-server: {0}")]
    Setup(String),
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// Listen on a free port of 127.0.0.1 too (the unix socket is always there).
    pub tcp: bool,
    /// Pin the server to this CPU with `taskset`.
    pub cpu: Option<usize>,
    /// Keep an append-only file, fsynced every second, which a restart loads.
    pub durable: bool,
    /// More `redis-server` arguments, given last (so they win), e.g. `--requirepass pw`.
    pub extra_args: Vec<String>,
}

/// One private `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Process>,
    dir: tempfile::TempDir,
    port: Option<u16>,
    options: RedisOptions,
}

impl RedisServer {
    /// Starts a server on a unix socket alone, with nothing saved, and waits until it
    /// answers.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a server as `options` say and waits until it answers (a server that wants
    /// a password counts as answering).
    pub fn start_with(options: RedisOptions) -> Result<Self, HarnessError> {
        let server = Self::launch(options)?;
        server.wait_ready(STARTUP)?;
        Ok(server)
    }

    /// Starts a server without waiting for it: a caller on an async runtime waits its own
    /// way (or calls [`RedisServer::wait_ready`] off the runtime).
    pub fn launch(options: RedisOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Setup(e.to_string()))?;
        let port = if options.tcp {
            Some(free_local_port()?)
        } else {
            None
        };
        let mut server = Self {
            child: None,
            dir,
            port,
            options,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The unix socket it listens on (for `redis-cli -s`).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Its unix socket as a URL every Redis client here takes.
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Its TCP port, when started with `tcp`.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Its TCP URL when it has a port, else its unix socket's.
    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("redis://127.0.0.1:{port}"),
            None => self.unix_url(),
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Process::pid)
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would: what it held is
    /// gone unless it is durable.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts the server again with the same socket, port, directory and options (a
    /// durable one loads its append-only file), without waiting for it.
    pub fn relaunch(&mut self) -> Result<(), HarnessError> {
        self.kill();
        self.spawn()
    }

    /// Starts the server again and waits until it answers.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.relaunch()?;
        self.wait_ready(STARTUP)
    }

    /// Sends a signal by name: `STOP` freezes the server like a network partition
    /// (connections hang, nothing is lost), `CONT` ends the freeze.
    pub fn signal(&self, name: &str) -> Result<(), HarnessError> {
        let signal = Signal::named(name)
            .ok_or_else(|| HarnessError::Setup(format!("no signal named {name}")))?;
        match self.pid() {
            Some(pid) => {
                send_signal(pid, signal);
                Ok(())
            }
            None => Err(HarnessError::Setup("the server is not running".into())),
        }
    }

    /// Waits up to `timeout` until the server answers `PING` on its socket (or asks for
    /// a password).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if answers(&self.socket()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(HarnessError::NotReady(self.url()))
    }

    /// Waits up to `timeout` until the server answers, without blocking an async runtime.
    #[cfg(feature = "tokio")]
    pub async fn ready(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if answers(&self.socket()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(HarnessError::NotReady(self.url()))
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let port = self.port.unwrap_or(0).to_string();
        let persistence: &[&str] = if self.options.durable {
            &["--appendonly", "yes", "--appendfsync", "everysec"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Launch::new("redis-server")
            .pin(self.options.cpu)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .args(["--unixsocketperm", "700", "--unixsocket"])
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.options.extra_args)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port of 127.0.0.1 free now.
fn free_local_port() -> Result<u16, HarnessError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| HarnessError::Setup(format!("no free local port: {e}")))
}

/// Whether a server on `socket` answers a bare `PING` (`+PONG`), or refuses it for want of
/// a password (`-NOAUTH`): either way it is up.
fn answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0_u8; 16];
    match stream.read(&mut reply) {
        Ok(n) => {
            let reply = &reply[..n];
            reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH")
        }
        Err(_) => false,
    }
}
