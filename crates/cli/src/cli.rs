//! Command-line arguments: every subcommand and flag, documented for `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use flotilla_proto::Status;

// The bench's and the drill's arguments live beside them.
pub use crate::commands::bench::args::{BenchArgs, BenchRate, BenchScenario, PickupWorkerArgs};
pub use crate::commands::chaos::args::{ChaosArgs, ChaosWorkerArgs};

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
    Bench(BenchArgs),
    /// The latency scenario's worker process, started by `flotilla bench`.
    #[command(hide = true)]
    BenchPickupWorker(PickupWorkerArgs),
    /// The pod-killing drill: a local fleet of real processes, a monkey that kills,
    /// freezes and restarts them while producers enqueue, and a verdict on what was
    /// lost, run twice or missed.
    Chaos(ChaosArgs),
    /// A `flotilla chaos` worker: `flotilla worker` plus the drill's `chaos` handler,
    /// which records every execution in a ledger file.
    #[command(hide = true)]
    ChaosWorker(ChaosWorkerArgs),
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to serve, with optional weights: `critical=6,default=3,low=1` or `emails`.
    /// Overrides the settings file.
    #[arg(long, value_delimiter = ',', value_name = "QUEUE[=WEIGHT]")]
    pub queues: Option<Vec<String>>,

    /// Jobs run at once. Overrides the settings file.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Serve queues strictly by weight instead of by weighted lottery.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub http: HttpArgs,
}

/// The probe and metrics listener of a long-running process.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address, e.g. `0.0.0.0:9090`.
    /// Off when not given.
    #[arg(long, env = "FLOTILLA_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Job type: the handler name workers dispatch on.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: String,

    /// Arguments as JSON.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub payload: String,

    /// Queue to put the job on: one the fleet knows (listed under [queues], or used
    /// before), unless --create-queue.
    #[arg(long, default_value = "default")]
    pub queue: String,

    /// Put the job on a queue the fleet does not know yet, starting it.
    #[arg(long)]
    pub create_queue: bool,

    /// Run after this delay, e.g. `30s`, `5m`, `1h 30m`.
    #[arg(long = "in", value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "at")]
    pub delay: Option<Duration>,

    /// Run at this RFC 3339 instant, e.g. `2026-12-01T09:00:00Z`.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,

    /// Attempts before the job goes to the dead-letter queue.
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Time one attempt may run, e.g. `30s`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,

    /// Retry backoff: `fixed:MS`, `exponential:BASE_MS:CAP_MS` or `list:MS,MS,…`.
    #[arg(long, value_name = "POLICY")]
    pub backoff: Option<String>,

    /// Unique key: while a job holds it, enqueueing another prints the first job's id.
    #[arg(long, value_name = "KEY")]
    pub unique: Option<String>,

    /// How long the unique key is held at most.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1h")]
    pub unique_for: Duration,

    /// Your own job id (e.g. a UUID): enqueueing the same id twice creates one job.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Per queue: waiting, running, scheduled (delayed or awaiting retry), dead, group
    /// lag, oldest wait, paused, and completed and dead-lettered in the last hour and day.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop workers fetching from a queue within a second; what runs finishes, what
    /// waits stays on the stream.
    Pause { queue: String },
    /// Let workers fetch from a paused queue again.
    Resume { queue: String },
    /// Split a queue into partitions, `<queue>`, `<queue>#1`, …, each with its own hash
    /// tag, so one busy queue spreads over the primaries of a Redis Cluster. Producers
    /// and workers take the new count up within ten seconds. A count can only grow.
    Partition {
        queue: String,
        /// How many partitions: 1 to 1024.
        count: u16,
    },
    /// Remove a queue the fleet no longer uses (a name enqueued by mistake, say): its
    /// finished and dead jobs go with it. Refused while any job waits, runs or is
    /// scheduled on it, or a live worker serves it.
    Remove {
        queue: String,
        /// Confirm: its dead and finished jobs are deleted too.
        #[arg(long)]
        yes: bool,
    },
    /// Wait, with a progress bar, until nothing is waiting, scheduled or running on a
    /// queue. Workers must keep serving it: a paused queue's waiting jobs are never
    /// fetched, so drain a queue that is not paused (stop its producers instead).
    Drain {
        queue: String,
        /// Give up after this long.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
        timeout: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// The most recent dead jobs, newest first: id, queue, type, attempts, when, error.
    List {
        /// Only this queue's.
        #[arg(long)]
        queue: Option<String>,
        /// Only jobs of this type.
        #[arg(long = "type", value_name = "TYPE")]
        job_type: Option<String>,
        /// Only jobs that died within this long, e.g. `1h`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dead job's whole record, with its error.
    Show(ShowArgs),
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Every registered worker: id, host, pid, version, queues, jobs in flight, last
    /// heartbeat and whether it is alive.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs of one status, a page at a time: oldest first for what waits or runs,
    /// newest first for what has ended.
    List(ListArgs),
    /// Show one job by id or by a prefix that matches only one job.
    Show(ShowArgs),
    /// Put a dead job back on its queue with a fresh set of attempts, or every dead job
    /// (`--dead`, narrowed by `--queue`, `--type` and `--since`).
    Retry(RetryArgs),
    /// Delete completed or dead jobs that ended longer ago than `--older-than`: their
    /// records and their entries in `done` or the dead-letter stream.
    Purge(PurgeArgs),
    /// Cancel a job that has not finished; a running one is stopped through its
    /// cancellation token within a second.
    Cancel {
        /// The job's id, or a prefix that matches only one job.
        id: String,
        /// The queue holding it, when its id is in several (fast-path ids are entry
        /// ids, unique within one queue only).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Delete a job that is not running: its record, its place in its queue or list,
    /// its dead-letter or completion entry, its id key and its unique lock.
    Delete {
        /// The job's id, or a prefix that matches only one job.
        id: String,
        /// The queue holding it, when its id is in several.
        #[arg(long)]
        queue: Option<String>,
        /// Do not ask first (asked only on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pending, running, scheduled, failed (awaiting a retry), completed, dead or
    /// cancelled.
    #[arg(long, default_value = "pending", value_parser = parse_status)]
    pub status: Status,

    /// Only this queue's; every queue's, merged by time, when left out.
    #[arg(long)]
    pub queue: Option<String>,

    /// Only jobs of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: Option<String>,

    /// Only jobs enqueued (pending, running), due (scheduled, failed) or ended
    /// (completed, dead, cancelled) within this long, e.g. `1h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,

    /// Jobs per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,

    /// Go on from an earlier page: the cursor it printed.
    #[arg(long)]
    pub cursor: Option<String>,

    /// Print JSON (`jobs` and `next_cursor`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse::<Status>().map_err(|_| {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["completed", "dead"]))]
pub struct PurgeArgs {
    /// Purge completed jobs.
    #[arg(long)]
    pub completed: bool,

    /// Purge dead jobs.
    #[arg(long)]
    pub dead: bool,

    /// Only jobs that ended longer ago than this, e.g. `30d` or `12h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub older_than: Duration,

    /// Only this queue's.
    #[arg(long)]
    pub queue: Option<String>,

    /// Count what would go, delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask first (asked only on a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The dead job's id, or a prefix that matches only one job.
    #[arg(required_unless_present = "dead", conflicts_with = "dead")]
    pub id: Option<String>,

    /// Retry every dead job that matches the filters.
    #[arg(long)]
    pub dead: bool,

    /// Only this queue's dead jobs; with an id, the queue holding it.
    #[arg(long)]
    pub queue: Option<String>,

    /// Only dead jobs of this type.
    #[arg(long = "type", value_name = "TYPE", requires = "dead")]
    pub job_type: Option<String>,

    /// Only jobs that died within this long, e.g. `1h` or `7d`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "dead")]
    pub since: Option<Duration>,

    /// Do not ask before retrying many (asked only on a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The job id, or a unique prefix of it.
    pub id: String,

    /// The queue holding it, when its id is in several (fast-path ids are entry ids,
    /// unique within one queue only).
    #[arg(long)]
    pub queue: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address to serve on. Loopback unless told otherwise: put a reverse proxy with TLS
    /// in front before exposing it.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// What needs the token: `changes` (anyone who reaches the dashboard reads jobs,
    /// payloads and results) or `read` (every page and API call). The default is
    /// `changes` on a loopback address and `read` on any other.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub auth: Option<AuthScope>,
    /// A host name the dashboard is reached by (the name a reverse proxy or DNS gives
    /// it), besides `localhost` and IP addresses; repeat for several. Requests naming
    /// any other host are refused.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// How long a request's headers may take to arrive; an idle kept-alive connection is
    /// closed after as long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub header_read_timeout: Duration,
}

/// What the dashboard's token guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScope {
    /// Changes only; reads are open.
    Changes,
    /// Reads and changes.
    Read,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Workers to start.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Give up waiting for the jobs after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// Where the demo's dashboard listens; another free port when this one is taken.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub dashboard: std::net::SocketAddr,

    /// Keep the fleet and the dashboard running after the narrative, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Which scheduler leads, its fencing epoch and the lease left.
    Status,
    /// Every schedule with its last and next tick.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule, or replace the one with this name.
    Add(Box<ScheduleArgs>),
    /// Stop firing a schedule (ticks while paused are not caught up).
    Pause { name: String },
    /// Fire a paused schedule again.
    Resume { name: String },
    /// Delete a schedule.
    Remove { name: String },
    /// Enqueue the schedule's job once, now, outside its timing.
    Trigger { name: String },
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Schedule name: letters, digits, '-', '_' or '.'.
    pub name: String,

    /// Cron expression (5 or 6 fields, seconds first; L, W, # and @hourly-style aliases).
    #[arg(long, group = "timing")]
    pub cron: Option<String>,

    /// Interval, e.g. `30m`; ticks fall on multiples of it since the Unix epoch.
    #[arg(long, group = "timing")]
    pub every: Option<String>,

    /// One RFC 3339 instant.
    #[arg(long, group = "timing")]
    pub at: Option<String>,

    /// IANA time zone for cron, e.g. `America/New_York` (default UTC).
    #[arg(long)]
    pub tz: Option<String>,

    /// Job type to enqueue on each tick.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: String,

    /// Queue to enqueue on.
    #[arg(long, default_value = "default")]
    pub queue: String,

    /// Job arguments as JSON.
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,

    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Attempt timeout, e.g. `10m`.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Ticks missed while no scheduler led: skip, latest or all.
    #[arg(long, default_value = "latest", value_parser = ["skip", "latest", "all"])]
    pub catch_up: String,

    /// With `--catch-up all`: at most this many missed ticks are fired.
    #[arg(long, default_value_t = 100)]
    pub catch_up_limit: u32,
}
