//! `flotilla chaos`'s arguments, and its helper worker role's.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// How long and how hard `flotilla chaos` drills, or the fleet it watches.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// How long the monkey acts; producers enqueue through about 80 % of it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub duration: Duration,

    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,

    /// Scheduler replicas.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=3))]
    pub schedulers: u16,

    /// Jobs to enqueue over the run, half by raw XADD and half by the Rust producer.
    #[arg(long, default_value_t = 2000)]
    pub jobs: usize,

    /// Time between the monkey's actions.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub kill_every: Duration,

    /// Longest a job's handler runs, in ms; each job draws from 0 to this.
    #[arg(long, default_value_t = 200)]
    pub job_ms: u64,

    /// Also kill -9 redis-server once, mid-run, and restart it from its append-only file.
    #[arg(long)]
    pub redis_fault: bool,

    /// Cap every queue of the drill at this many jobs running at once, fleet-wide (a flow
    /// limit, as `flotilla queues limit <queue> --concurrency N` sets): nothing may be lost
    /// or run twice under a cap either, and its slots must come back from the workers the
    /// monkey kills and freezes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub cap: Option<u32>,

    /// Put the jobs in groups (`--groups` of them; the raw XADDs' too, which the workers
    /// put through their groups' gates) and let at most this many of each group run at once (a window per group, as `flotilla queues
    /// limit <queue> --group-concurrency N` sets): the ledger must show no group over it,
    /// and no job may be left waiting its group's turn.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub group_cap: Option<u32>,

    /// How many groups the jobs are spread over, with `--group-cap`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub groups: u32,

    /// Also create this many flows of ten jobs each (a → b, c → d → six more, over the
    /// three queues) while the monkey acts: no job may begin before its parents finished,
    /// and none may be left waiting.
    #[arg(long, default_value_t = 0)]
    pub flows: usize,

    /// Also create this many batches (`--batch-size` jobs each, with a `complete`
    /// callback) while the monkey acts: each callback must run once, after its batch's
    /// last job finished.
    #[arg(long, default_value_t = 0)]
    pub batches: usize,

    /// Jobs in each batch, with `--batches`.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    pub batch_size: u64,

    /// Seed for the monkey's and the producers' choices, to repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,

    /// After the run, how long the fleet may take to finish every job.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "90s")]
    pub settle: Duration,

    /// Drill an existing Redis and fleet at this URL instead: only enqueue `sleep` jobs,
    /// watch and report; nothing is started or killed.
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,

    /// With --against: the fleet's namespace.
    #[arg(long, default_value = "flotilla")]
    pub namespace: String,

    /// Also write the verdict as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `flotilla chaos-worker` (hidden, with the `harness` feature): a worker from the
/// settings that also serves the drill's `chaos` jobs, noting each in its ledger.
#[derive(Debug, Args)]
pub struct ChaosWorkerArgs {
    /// Directory of the ledger: each worker process appends to its own file there.
    #[arg(long)]
    pub ledger: PathBuf,
}
