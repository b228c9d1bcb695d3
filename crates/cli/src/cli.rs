//! Command-line arguments: the top-level flags and the list of subcommands, documented
//! for `--help`; each command's own flags live beside it, in its module.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

// Each command's arguments, from beside it.
pub use crate::commands::dashboard::DashboardArgs;
pub use crate::commands::dead::DeadCommand;
pub use crate::commands::enqueue::EnqueueArgs;
pub use crate::commands::jobs::JobsCommand;
pub use crate::commands::queues::QueuesCommand;
pub use crate::commands::scheduler::SchedulerArgs;
pub use crate::commands::schedules::SchedulesCommand;
pub use crate::commands::worker::WorkerArgs;
pub use crate::commands::workers::WorkersCommand;
pub use crate::commands::workflows::{BatchesCommand, FlowsCommand};
#[cfg(feature = "harness")]
pub use flotilla_bench::{BenchArgs, PickupWorkerArgs};
#[cfg(feature = "harness")]
pub use flotilla_chaos::{ChaosArgs, ChaosWorkerArgs};
pub use flotilla_demo::DemoArgs;

/// Flotilla: a distributed background-job fleet on Redis Streams.
///
/// Settings come from a TOML file (--config or FLOTILLA_CONFIG) with FLOTILLA_* environment
/// overrides, e.g. FLOTILLA_REDIS_URL, FLOTILLA_NAMESPACE, FLOTILLA_WORKER__CONCURRENCY.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, propagate_version = true)]
pub struct Cli {
    /// TOML settings file; without one, built-in defaults and FLOTILLA_* variables apply.
    #[arg(long, global = true, env = "FLOTILLA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr; the level comes from RUST_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FLOTILLA_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker: serve jobs until SIGTERM or SIGINT, then drain gracefully.
    Worker(WorkerArgs),
    /// Enqueue one job and print its id.
    Enqueue(EnqueueArgs),
    /// Inspect jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Run a scheduler replica: join the leader election; while leading, fire schedules and
    /// promote delayed jobs. Run two or three for failover.
    Scheduler(SchedulerArgs),
    /// Inspect and change schedules; see who leads.
    Schedules {
        #[command(subcommand)]
        command: SchedulesCommand,
    },
    /// Compare what should have happened with what did: missed or late schedule ticks,
    /// stranded jobs, consumers of dead workers. Examines every job record.
    Reconcile {
        /// Also fix what can be fixed: requeue stranded jobs, forget dead consumers.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Flows of jobs that wait for other jobs: create one from JSON, show one.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Batches of jobs with callbacks: show one's counts and callbacks.
    Batches {
        #[command(subcommand)]
        command: BatchesCommand,
    },
    /// Per-queue counts; pause and resume queues.
    Queues {
        #[command(subcommand)]
        command: QueuesCommand,
    },
    /// The dead-letter queues: what died, and why.
    Dead {
        #[command(subcommand)]
        command: DeadCommand,
    },
    /// The workers in the registry.
    Workers {
        #[command(subcommand)]
        command: WorkersCommand,
    },
    /// Active alerts and recent alert history.
    Alerts {
        /// History entries to show.
        #[arg(long, default_value_t = 20)]
        recent: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the web dashboard and its JSON API. Changes need FLOTILLA_DASHBOARD_TOKEN;
    /// without it the dashboard is read-only.
    Dashboard(DashboardArgs),
    /// Run a demo of the whole fleet on a private redis-server (or FLOTILLA_REDIS_URL).
    Demo(DemoArgs),
    /// Measure jobs/s and Redis time per job on a private redis-server (or FLOTILLA_REDIS_URL).
    #[cfg(feature = "harness")]
    Bench(BenchArgs),
    /// The latency scenario's worker process, started by `flotilla bench`.
    #[cfg(feature = "harness")]
    #[command(hide = true)]
    BenchPickupWorker(PickupWorkerArgs),
    /// The pod-killing drill: a local fleet of real processes, a monkey that kills,
    /// freezes and restarts them while producers enqueue, and a verdict on what was
    /// lost, run twice or missed.
    #[cfg(feature = "harness")]
    Chaos(ChaosArgs),
    /// A `flotilla chaos` worker: `flotilla worker` plus the drill's `chaos` handler,
    /// which records every execution in a ledger file.
    #[cfg(feature = "harness")]
    #[command(hide = true)]
    ChaosWorker(ChaosWorkerArgs),
}
