//! Worker processes for a benchmark run: real `flotilla worker` children of this binary
//! (or, for latency runs, its pickup-recording worker), pinned when asked, with their CPU
//! time and peak memory read from /proc.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

/// The CPU worker processes are pinned to, with `--pin`; Redis gets CPU 0.
pub const WORKER_CPU: usize = 1;

/// What the worker processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerRole {
    /// `flotilla worker`, as users run it.
    Serve,
    /// `flotilla bench-pickup-worker`, which records pickup times and prints them on
    /// stdout when it stops; serves one queue.
    RecordPickups,
}

/// What the worker processes are started with.
#[derive(Debug, Clone)]
pub struct FleetSpec<'a> {
    pub url: &'a str,
    pub keys: &'a Keys,
    pub role: WorkerRole,
    /// `--queues` as the worker takes it, e.g. `critical=6,default=3,low=1`; one queue's
    /// name for [`WorkerRole::RecordPickups`].
    pub queues: &'a str,
    pub concurrency: usize,
    pub processes: usize,
    pub pin: bool,
    /// The run's job count: completed records are kept for at least this many, so that
    /// the completed index counts every job of the run.
    pub jobs: usize,
}

/// The workers' share of a timed run.
#[derive(Debug, Clone, Copy)]
pub struct WorkerFigures {
    pub cpu_us_per_job: Option<f64>,
    pub rss_mb: Option<f64>,
}

/// Running worker processes; dropping the fleet kills any still running.
#[derive(Debug)]
pub struct WorkerFleet {
    children: Vec<Child>,
}

impl WorkerFleet {
    /// Starts the processes and waits until each has registered, so what follows is
    /// timed against workers that are up.
    pub async fn start(spec: &FleetSpec<'_>, conn: &mut SharedConnection) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the flotilla binary")?;
        let pin = spec.pin && can_pin();
        let mut children = Vec::with_capacity(spec.processes);
        for _ in 0..spec.processes {
            let mut command = if pin {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(WORKER_CPU.to_string()).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            match spec.role {
                WorkerRole::Serve => command.args(["worker", "--queues", spec.queues]),
                WorkerRole::RecordPickups => {
                    command.args(["bench-pickup-worker", "--queue", spec.queues])
                }
            };
            let stdout = match spec.role {
                WorkerRole::Serve => Stdio::null(),
                WorkerRole::RecordPickups => Stdio::piped(),
            };
            command
                .arg("--concurrency")
                .arg(spec.concurrency.to_string())
                .env_remove("FLOTILLA_CONFIG")
                .env("FLOTILLA_REDIS_URL", spec.url)
                .env("FLOTILLA_NAMESPACE", spec.keys.namespace())
                // Paused and idle workers look again this often; it costs nothing while
                // jobs flow, and lets every worker start together when the queue resumes.
                .env("FLOTILLA_WORKER__BLOCK_TIME", "50ms")
                .env("FLOTILLA_WORKER__PROMOTE_INTERVAL", "50ms")
                .env(
                    "FLOTILLA_RETENTION__COMPLETED_MAX_LEN",
                    super::completed_max_len(spec.jobs).to_string(),
                )
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(stdout)
                .kill_on_drop(true);
            children.push(command.spawn().context("cannot start a worker process")?);
        }
        let fleet = Self { children };
        crate::commands::wait_for_workers(conn, spec.keys, fleet.children.len()).await?;
        Ok(fleet)
    }

    /// CPU time the processes have used so far, user + system, in µs; `None` where /proc
    /// cannot tell.
    pub fn cpu_usec(&self) -> Option<f64> {
        let ticks_per_s = rustix::param::clock_ticks_per_second() as f64;
        let mut total = 0.0;
        for child in &self.children {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()?)).ok()?;
            // Fields after the `(command)`, which may hold spaces: state is the 1st, so
            // utime (14th of the line) is the 12th and stime the 13th.
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            total += (utime + stime) / ticks_per_s * 1e6;
        }
        Some(total)
    }

    /// What a row reports of the workers since `cpu_before` (a [`WorkerFleet::cpu_usec`]
    /// taken when the clock started): their CPU µs per job and their peak RSS in MB.
    pub fn figures(&self, cpu_before: Option<f64>, jobs: usize) -> WorkerFigures {
        WorkerFigures {
            cpu_us_per_job: self
                .cpu_usec()
                .zip(cpu_before)
                .map(|(after, before)| (after - before) / jobs.max(1) as f64),
            rss_mb: self.peak_rss_mb(),
        }
    }

    /// The largest peak resident set of the processes, in MB (VmHWM).
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.children
            .iter()
            .filter_map(|child| {
                let status =
                    std::fs::read_to_string(format!("/proc/{}/status", child.id()?)).ok()?;
                let kb: f64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(kb / 1024.0)
            })
            .reduce(f64::max)
    }

    /// Stops the processes as an orchestrator would (SIGTERM, then they drain and exit),
    /// and returns what each printed on stdout (nothing for [`WorkerRole::Serve`]).
    pub async fn stop(self) -> anyhow::Result<Vec<String>> {
        for child in &self.children {
            if let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) {
                let _ = kill_process(pid, Signal::TERM);
            }
        }
        let mut printed = Vec::with_capacity(self.children.len());
        for child in self.children {
            // A child that outlasts the timeout is dropped, which kills it.
            let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
                .await
                .context("a worker process did not stop within 30 s of SIGTERM")?
                .context("worker process")?;
            if !output.status.success() {
                bail!("a worker process ended with {}", output.status);
            }
            printed.push(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        Ok(printed)
    }
}

/// Whether processes can be pinned: `taskset` runs and there is a CPU besides Redis's.
pub fn can_pin() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus > WORKER_CPU
        && std::process::Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}
