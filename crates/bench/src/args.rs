//! `flotilla bench`'s arguments, its scenarios and rates, and its pickup worker role's.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// What `flotilla bench` runs and where it writes its reports.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "enqueue,drain,latency,mixed,floor"
    )]
    pub scenarios: Vec<BenchScenario>,

    /// Jobs per enqueue, drain and mixed run.
    #[arg(long, default_value_t = 50_000)]
    pub jobs: usize,

    /// Worker concurrencies to drain with (each is one run).
    #[arg(long, value_delimiter = ',', default_value = "10,50,200")]
    pub concurrency: Vec<usize>,

    /// Worker process counts to drain with (each is one run per concurrency).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub workers: Vec<usize>,

    /// Give every job of the enqueue, drain, mixed, backlog and delayed scenarios an id of
    /// its own, as producers that want idempotent enqueues do; the rows' variants end in
    /// `+ids`.
    #[arg(long)]
    pub ids: bool,

    /// Give each queue of the drain, mixed, backlog and delayed scenarios a flow limit far
    /// above the load (a rate of 1000000/s with a burst of 100000, and a concurrency cap of
    /// 100000), so that what keeping to limits costs shows; the rows' variants end in
    /// `+limited`.
    #[arg(long)]
    pub limited: bool,

    /// Put the jobs of the enqueue, drain, mixed, backlog and delayed scenarios in this
    /// many groups (in turn), and let each queue's groups through a window far above the
    /// load (100000 jobs of a group at once), so that what keeping groups costs shows; the
    /// rows' variants end in `+groupsN`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub groups: Option<u32>,

    /// Padding in each job's payload: `{"pad": "xxx…"}` with this many `x`.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,

    /// How long each drain and backlog job's handler runs, in ms (0: a no-op). Handlers
    /// that take a while show how throughput scales with worker processes before any
    /// one core is busy.
    #[arg(long, default_value_t = 0)]
    pub job_ms: u64,

    /// Rates for the latency scenario, in jobs/s; `half` is half the best drain rate
    /// measured in this run (or 1000 when none was).
    #[arg(long, value_delimiter = ',', default_value = "1000,half")]
    pub rate: Vec<BenchRate>,

    /// How long each latency run sends jobs.
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,

    /// Backlog sizes for the backlog scenario.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub backlog: Vec<usize>,

    /// Partitions of each queue the drain, mixed, backlog and latency scenarios use: more
    /// than one spreads a queue over the primaries of a Redis Cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub partitions: u16,

    /// Pin the bench's own redis-server to CPU 0 and the worker processes to CPU 1 (with
    /// `taskset`, when there are two CPUs or more).
    #[arg(long)]
    pub pin: bool,

    /// Where to write the JSON report.
    #[arg(long, default_value = "flotilla-bench/report.json")]
    pub json: PathBuf,

    /// Where to write the Markdown report.
    #[arg(long, default_value = "flotilla-bench/report.md")]
    pub markdown: PathBuf,

    /// Give up on any one run after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
    pub timeout: Duration,
}

/// What the latency scenario's worker process serves.
#[derive(Debug, Args)]
pub struct PickupWorkerArgs {
    /// The queue to serve.
    #[arg(long)]
    pub queue: String,

    /// Jobs run at once.
    #[arg(long)]
    pub concurrency: usize,
}

/// One `flotilla bench` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchScenario {
    /// Single, pipelined and bulk enqueue.
    Enqueue,
    /// Worker processes × concurrency over a pre-filled backlog of no-op jobs.
    Drain,
    /// Pickup latency at fixed rates.
    Latency,
    /// Three priorities, 10 % of jobs failing once and retried.
    Mixed,
    /// Drain rate and memory per job as the backlog grows.
    Backlog,
    /// Worker concurrencies over jobs each due one second after its enqueue: promotion
    /// and drain together.
    Delayed,
    /// Bare stream commands: the floor any stream queue pays.
    Floor,
    /// A fan-in of `--jobs` parents into one child and a batch of `--jobs` jobs with a
    /// callback, against plain jobs of the same count.
    Workflows,
}

/// A latency-scenario rate: jobs/s, or half the best drain rate measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BenchRate {
    /// This many jobs a second.
    PerSecond(u32),
    /// Half the best drain rate of one worker process measured in this run.
    HalfOfMax,
}

impl std::str::FromStr for BenchRate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "half" {
            return Ok(Self::HalfOfMax);
        }
        match s.parse::<u32>() {
            Ok(rate) if rate > 0 => Ok(Self::PerSecond(rate)),
            _ => Err(format!(
                "{s:?} is not a rate: give jobs/s (e.g. 1000) or `half`"
            )),
        }
    }
}
