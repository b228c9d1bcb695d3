//! A Redis primary with one replica, watched by three sentinels, all on loopback: enough
//! for Sentinel to agree that the primary is gone and promote the replica.

use std::time::{Duration, Instant};

use flotilla_harness::{Launch, Process};

use crate::redis_server::query_port;
use crate::{RedisServer, free_local_addr};

/// The name the sentinels know the primary by.
pub const SERVICE: &str = "jobs";

/// A primary, its replica and three sentinels; every process is killed on drop.
#[derive(Debug)]
pub struct SentinelGroup {
    primary: Option<RedisServer>,
    /// Kept for its process; it becomes the primary after a failover.
    _replica: RedisServer,
    replica_port: String,
    /// The sentinels, each a harness process killed when dropped.
    _sentinels: Vec<Process>,
    sentinel_ports: Vec<String>,
    dir: tempfile::TempDir,
}

fn free_port() -> String {
    free_local_addr()
        .rsplit(':')
        .next()
        .expect("an address has a port")
        .to_owned()
}

impl SentinelGroup {
    /// Starts the servers and the sentinels, and waits until the sentinels know the
    /// replica and each other, so that a failover can happen.
    pub fn start() -> Self {
        let primary_port = free_port();
        let primary = RedisServer::start_with(&["--port", &primary_port, "--bind", "127.0.0.1"]);
        let replica_port = free_port();
        let replica = RedisServer::start_with(&[
            "--port",
            &replica_port,
            "--bind",
            "127.0.0.1",
            "--replicaof",
            "127.0.0.1",
            &primary_port,
        ]);
        let dir = tempfile::tempdir().expect("temp dir for sentinels");
        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 5000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    dir = dir.path().display()
                ),
            )
            .expect("sentinel config");
            let child = Launch::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .spawn()
                .expect("redis-server runs as a sentinel");
            sentinels.push(child);
            sentinel_ports.push(port);
        }
        let group = Self {
            primary: Some(primary),
            _replica: replica,
            replica_port,
            _sentinels: sentinels,
            sentinel_ports,
            dir,
        };
        group.wait_until_ready();
        group
    }

    /// `redis+sentinel://` naming all three sentinels.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}", hosts.join(","))
    }

    /// Where the replica listens: the primary after a failover.
    pub fn replica_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.replica_port)
    }

    /// Kills the primary (SIGKILL), as a machine failure would.
    pub fn kill_primary(&mut self) {
        if let Some(mut primary) = self.primary.take() {
            primary.kill();
        }
    }

    /// Waits until every sentinel names the replica as the primary.
    pub fn wait_for_failover(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let promoted = self.sentinel_ports.iter().all(|port| {
                self.ask(port, &["SENTINEL", "get-master-addr-by-name", SERVICE])
                    .is_some_and(|reply| reply.contains(&self.replica_port))
            });
            if promoted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not promote the replica within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = self
                .ask(&self.replica_port, &["INFO", "replication"])
                .is_some_and(|info| info.contains("master_link_status:up"));
            let ready = synced
                && self.sentinel_ports.iter().all(|port| {
                    let knows_replica = self
                        .ask(port, &["SENTINEL", "replicas", SERVICE])
                        .is_some_and(|reply| reply.contains(&self.replica_port));
                    let knows_peers = self
                        .ask(port, &["SENTINEL", "sentinels", SERVICE])
                        .is_some_and(|reply| reply.matches("runid").count() >= 2);
                    knows_replica && knows_peers
                });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not sync, or the sentinels did not find it and each other, within 30 s (configs in {})",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One command to one server or sentinel, its reply flattened to its strings, space-separated.
    fn ask(&self, port: &str, args: &[&str]) -> Option<String> {
        let mut words = Vec::new();
        flatten(query_port(port, args)?, &mut words);
        Some(words.join(" "))
    }
}

fn flatten(value: redis::Value, into: &mut Vec<String>) {
    match value {
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                flatten(item, into);
            }
        }
        redis::Value::Map(pairs) => {
            for (key, value) in pairs {
                flatten(key, into);
                flatten(value, into);
            }
        }
        other => {
            if let Ok(text) = redis::from_redis_value::<String>(other) {
                into.push(text);
            }
        }
    }
}
