//! A `redis-server` child on its own unix socket (the harness's, killed on drop), which a
//! test can kill, freeze and restart on the same socket, and connections to it.

use std::path::PathBuf;

/// One private Redis: the harness's server, with the tests' own connections beside it.
#[derive(Debug)]
pub struct RedisServer(flotilla_harness::RedisServer);

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments, e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra_args: &[&str]) -> Self {
        let options = flotilla_harness::RedisOptions {
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        };
        Self(
            flotilla_harness::RedisServer::start_with(options)
                .expect("redis-server must be installed (apt-get install redis-server)"),
        )
    }

    /// The unix socket the server listens on (for `redis-cli -s`).
    pub fn socket(&self) -> PathBuf {
        self.0.socket()
    }

    /// A URL every redis client here understands.
    pub fn url(&self) -> String {
        self.0.unix_url()
    }

    /// Kills the server (SIGKILL): everything in it is gone, as after a crash without
    /// persistence.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Sends a signal by name to the server: STOP freezes it like a network partition
    /// (connections hang, nothing is lost), CONT ends the freeze.
    pub fn signal(&self, name: &str) {
        self.0
            .signal(name)
            .expect("the signal reaches redis-server");
    }

    /// Starts a fresh server on the same socket.
    pub fn restart(&mut self) {
        self.0.restart().expect("redis-server restarts");
    }

    /// A plain (blocking) connection for assertions.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connection to the test redis-server")
    }

    /// An async connection for producers and assertions.
    pub async fn manager(&self) -> flotilla_proto::SharedConnection {
        let client = redis::Client::open(self.url()).expect("valid url");
        redis::aio::ConnectionManager::new(client)
            .await
            .expect("connection to the test redis-server")
            .into()
    }
}

/// One command to the server listening on `port` of 127.0.0.1; `None` when it does not
/// answer (yet).
pub fn query_port(port: &str, args: &[&str]) -> Option<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client.get_connection().ok()?;
    let mut cmd = redis::cmd(args.first()?);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut conn).ok()
}
