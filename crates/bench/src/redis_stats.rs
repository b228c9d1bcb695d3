//! What Redis spent on one timed run (server CPU, command and script calls, time by
//! command), read from INFO before and after; and the memory it holds. On a Redis
//! Cluster, INFO goes to every primary, and the figures are their sums.

use std::collections::HashMap;

use flotilla_proto::SharedConnection;

/// Commands the benchmark itself sends to watch a run; they are not the system's cost.
const OWN_COMMANDS: [&str; 8] = [
    "info", "config", "zcard", "xinfo", "client", "ping", "hello", "select",
];

/// The CPU reading taken when a run starts; [`Meter::finish`] turns them into [`RedisCost`].
#[derive(Debug)]
pub struct Meter {
    cpu_usec: f64,
}

/// What Redis spent between [`Meter::start`] and [`Meter::finish`].
#[derive(Debug, Clone, Default)]
pub struct RedisCost {
    /// Server CPU time, user + system, in µs.
    pub cpu_usec: f64,
    /// Every command call, scripts' inner calls included, except the benchmark's own.
    pub calls: u64,
    /// EVALSHA, EVAL and FCALL calls.
    pub script_calls: u64,
    /// Command name → µs spent in it (a script's time includes what it ran).
    pub usec_by_command: HashMap<String, f64>,
}

impl Meter {
    /// Resets the command statistics and reads CPU and memory.
    pub async fn start(conn: &mut SharedConnection) -> anyhow::Result<Self> {
        flotilla_proto::reset_stats(conn).await?;
        Ok(Self {
            cpu_usec: cpu_usec(conn).await?,
        })
    }

    /// What Redis spent since [`Meter::start`].
    pub async fn finish(&self, conn: &mut SharedConnection) -> anyhow::Result<RedisCost> {
        let mut cost = RedisCost {
            cpu_usec: cpu_usec(conn).await? - self.cpu_usec,
            ..RedisCost::default()
        };
        for info in info_of_each_primary(conn, "commandstats").await? {
            for (name, fields) in info.lines().filter_map(command_line) {
                if OWN_COMMANDS.contains(&name) {
                    continue;
                }
                let calls = info_number(fields, "calls=", ',') as u64;
                cost.calls += calls;
                if matches!(name, "evalsha" | "eval" | "fcall") {
                    cost.script_calls += calls;
                }
                *cost.usec_by_command.entry(name.to_owned()).or_default() +=
                    info_number(fields, "usec=", ',');
            }
        }
        Ok(cost)
    }
}

impl RedisCost {
    /// The costliest commands, most first, as `(name, µs per job)`.
    pub fn top_commands(&self, jobs: usize, n: usize) -> Vec<(String, f64)> {
        let mut by_cmd: Vec<(String, f64)> = self
            .usec_by_command
            .iter()
            .map(|(name, usec)| (name.clone(), usec / jobs.max(1) as f64))
            .collect();
        by_cmd.sort_by(|a, b| b.1.total_cmp(&a.1));
        by_cmd.truncate(n);
        by_cmd
    }
}

/// `cmdstat_xadd:calls=3,usec=…` → `("xadd", "calls=3,usec=…")`.
fn command_line(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix("cmdstat_")?.split_once(':')
}

/// The number after `key` in an INFO section, up to `separator`; 0 when absent.
fn info_number(text: &str, key: &str, separator: char) -> f64 {
    text.split(separator)
        .find_map(|part| part.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// One INFO section of each server (every primary of a cluster).
async fn info_of_each_primary(
    conn: &mut SharedConnection,
    section: &str,
) -> anyhow::Result<Vec<String>> {
    Ok(flotilla_proto::info_of_each_primary(conn, section).await?)
}

/// The servers' CPU time so far (user + system), in µs.
async fn cpu_usec(conn: &mut SharedConnection) -> anyhow::Result<f64> {
    Ok(info_of_each_primary(conn, "cpu")
        .await?
        .iter()
        .map(|info| {
            (info_number(info, "used_cpu_user:", '\n') + info_number(info, "used_cpu_sys:", '\n'))
                * 1e6
        })
        .sum())
}

/// Bytes the servers hold for data and overhead (`used_memory`).
pub async fn used_memory(conn: &mut SharedConnection) -> anyhow::Result<f64> {
    Ok(info_of_each_primary(conn, "memory")
        .await?
        .iter()
        .map(|info| info_number(info, "used_memory:", '\n'))
        .sum())
}

/// The server's version, from INFO server (the first primary's on a cluster).
pub async fn server_version(conn: &mut SharedConnection) -> anyhow::Result<String> {
    let infos = info_of_each_primary(conn, "server").await?;
    Ok(infos
        .iter()
        .find_map(|info| info.lines().find_map(|l| l.strip_prefix("redis_version:")))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_out_of_info_sections() {
        let line = "cmdstat_xadd:calls=3,usec=12,usec_per_call=4.00";
        let (name, fields) = command_line(line).expect("a command line");
        assert_eq!(name, "xadd");
        assert_eq!(info_number(fields, "calls=", ','), 3.0);
        assert_eq!(info_number(fields, "usec=", ','), 12.0);
        let cpu = "# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n";
        assert_eq!(info_number(cpu, "used_cpu_user:", '\n'), 2.25);
        assert_eq!(info_number(cpu, "missing:", '\n'), 0.0);
    }
}
