//! Worker processes for a benchmark run: real `flotilla worker` children of this binary
//! (or, for latency runs, its pickup-recording worker), pinned when asked, with their CPU
//! time and peak memory read from /proc.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use flotilla_harness::{Launch, Process, Signal};
use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;

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
    /// The `flotilla` binary whose roles the processes run.
    pub exe: &'a Path,
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
    processes: Vec<Process>,
}

impl WorkerFleet {
    /// Starts the processes and waits until each has registered, so what follows is
    /// timed against workers that are up.
    pub async fn start(spec: &FleetSpec<'_>, conn: &mut SharedConnection) -> anyhow::Result<Self> {
        let pin = (spec.pin && can_pin()).then_some(WORKER_CPU);
        let mut processes = Vec::with_capacity(spec.processes);
        for _ in 0..spec.processes {
            let launch = match spec.role {
                WorkerRole::Serve => {
                    Launch::new(spec.exe).args(["worker", "--queues", spec.queues])
                }
                WorkerRole::RecordPickups => Launch::new(spec.exe)
                    .args(["bench-pickup-worker", "--queue", spec.queues])
                    .keep_stdout(),
            };
            let process = launch
                .pin(pin)
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
                .spawn()
                .context("cannot start a worker process")?;
            processes.push(process);
        }
        let fleet = Self { processes };
        flotilla_admin::Admin::new(conn.clone(), spec.keys.clone())
            .wait_for_workers(fleet.processes.len(), Duration::from_secs(20))
            .await?;
        Ok(fleet)
    }

    /// CPU time the processes have used so far, user + system, in µs; `None` where /proc
    /// cannot tell.
    pub fn cpu_usec(&self) -> Option<f64> {
        self.processes.iter().map(Process::cpu_usec).sum()
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
        self.processes
            .iter()
            .filter_map(Process::peak_rss_mb)
            .reduce(f64::max)
    }

    /// Stops the processes as an orchestrator would (SIGTERM, then they drain and exit),
    /// and returns what each printed on stdout (nothing for [`WorkerRole::Serve`]).
    pub async fn stop(mut self) -> anyhow::Result<Vec<String>> {
        for process in &mut self.processes {
            process.signal(Signal::Term);
        }
        let mut printed = Vec::with_capacity(self.processes.len());
        for process in &mut self.processes {
            // A process that outlasts the wait is killed when the fleet drops.
            let status = process
                .exit_within(Duration::from_secs(30))
                .await
                .context("a worker process did not stop within 30 s of SIGTERM")?;
            if !status.success() {
                bail!("a worker process ended with {status}");
            }
            printed.push(process.printed());
        }
        Ok(printed)
    }
}

/// Whether processes can be pinned: `taskset` runs and there is a CPU besides Redis's.
pub fn can_pin() -> bool {
    flotilla_harness::can_pin(WORKER_CPU)
}
