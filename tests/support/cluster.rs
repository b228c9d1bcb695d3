//! A local Redis Cluster of three primaries and three replicas, made from
//! `redis-server --cluster-enabled yes` processes and `redis-cli --cluster create`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::redis_server::query_port;
use crate::{RedisServer, free_local_addr};

/// Six cluster nodes on loopback; killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(String, Option<RedisServer>)>,
}

impl RedisCluster {
    /// Starts six nodes, joins them as three primaries with a replica each, and waits
    /// until every node says the cluster is ok.
    pub fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_local_addr()
                .rsplit(':')
                .next()
                .expect("an address has a port")
                .to_owned();
            let server = RedisServer::start_with(&[
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                // Replicas sync at once rather than after the default 5 s wait for others.
                "--repl-diskless-sync-delay",
                "0",
            ]);
            nodes.push((port, Some(server)));
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// `redis+cluster://` naming every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(port, server)| {
                server.is_some()
                    && ask(port, &["ROLE"]).is_some_and(|role| role.starts_with("master"))
            })
            .map(|(port, _)| port.clone())
            .collect()
    }

    /// The port of the node serving `key`'s slot as primary.
    pub fn primary_for(&self, key: &str) -> String {
        let slot = ask(&self.nodes[0].0, &["CLUSTER", "KEYSLOT", key]).expect("a slot");
        let slot: u16 = slot.parse().expect("a slot number");
        self.primaries()
            .into_iter()
            .find(|port| owns_slot(port, slot))
            .expect("a primary owns every slot")
    }

    /// Runs `args` on every live node and gives each node's reply; panics naming the node
    /// that refused it.
    pub fn on_every_node(&self, args: &[&str]) -> Vec<redis::Value> {
        self.nodes
            .iter()
            .filter(|(_, server)| server.is_some())
            .map(|(port, _)| {
                query_port(port, args)
                    .unwrap_or_else(|| panic!("node {port} refused {}", args.join(" ")))
            })
            .collect()
    }

    /// How many clients of the node on `port` wait in a blocking XREADGROUP now.
    pub fn blocked_reads(&self, port: &str) -> usize {
        ask(port, &["CLIENT", "LIST"]).map_or(0, |clients| {
            clients
                .lines()
                .filter(|client| {
                    let field = |name: &str| {
                        client
                            .split(' ')
                            .find_map(|pair| pair.strip_prefix(name))
                            .unwrap_or_default()
                    };
                    field("cmd=") == "xreadgroup" && field("flags=").contains('b')
                })
                .count()
        })
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill(&mut self, port: &str) {
        for (p, server) in &mut self.nodes {
            if p == port
                && let Some(mut server) = server.take()
            {
                server.kill();
            }
        }
    }

    /// Waits until every live node reports `cluster_state:ok` and every replica has
    /// synced with its primary: a replica that never synced refuses to fail over.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .nodes
                .iter()
                .filter(|(_, server)| server.is_some())
                .all(|(port, _)| {
                    ask(port, &["CLUSTER", "INFO"])
                        .is_some_and(|info| info.contains("cluster_state:ok"))
                });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster was not ok within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether the node on `port` serves `slot` (from its own CLUSTER SLOTS view, as primary).
fn owns_slot(port: &str, slot: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection() else {
        return false;
    };
    let Ok(ranges) = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<redis::Value>>(&mut conn)
    else {
        return false;
    };
    ranges.into_iter().any(|range| {
        let redis::Value::Array(parts) = range else {
            return false;
        };
        let number = |v: Option<&redis::Value>| match v {
            Some(redis::Value::Int(n)) => Some(*n),
            _ => None,
        };
        let port_of_primary = match parts.get(2) {
            Some(redis::Value::Array(node)) => number(node.get(1)),
            _ => None,
        };
        matches!(
            (number(parts.first()), number(parts.get(1)), port_of_primary),
            (Some(start), Some(end), Some(p))
                if (start..=end).contains(&i64::from(slot)) && p.to_string() == port
        )
    })
}

/// One command to the node on `port`, its reply as text (`None` when it does not answer).
fn ask(port: &str, args: &[&str]) -> Option<String> {
    match query_port(port, args)? {
        redis::Value::Int(n) => Some(n.to_string()),
        redis::Value::Array(items) => items
            .into_iter()
            .next()
            .and_then(|first| redis::from_redis_value::<String>(first).ok()),
        other => redis::from_redis_value::<String>(other).ok(),
    }
}
