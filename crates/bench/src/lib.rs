//! `flotilla bench`: the scenarios users compare job systems by (enqueue, drain, latency,
//! mixed priorities with retries, growing backlog, and the bare-stream floor), each with
//! what it cost Redis and the worker, written as a JSON and a Markdown report.

#![warn(missing_docs)]

pub mod args;
mod drain;
mod enqueue;
mod fleet;
mod floor;
mod latency;
mod pickup;
mod redis_stats;
mod report;
mod workflows;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flotilla_harness::{RedisOptions, RedisServer, STARTUP};
use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{JobPolicy, Keys};
use flotilla_proto::{RedisTarget, SharedConnection};
use indicatif::{ProgressBar, ProgressStyle};

use report::{Params, Report, Row};

pub use args::{BenchArgs, BenchRate, BenchScenario, PickupWorkerArgs};
pub use pickup::{PICKUP, PickupRecorder};

/// Runs the scenarios `args` names and writes the reports. `flotilla` is the binary whose
/// `worker` and `bench-pickup-worker` roles the worker processes run.
pub async fn run(args: BenchArgs, flotilla: PathBuf) -> anyhow::Result<()> {
    let mut bench = Bench::set_up(args, flotilla).await?;
    report::print_heading();
    for scenario in bench.args.scenarios.clone() {
        match scenario {
            BenchScenario::Enqueue => enqueue::run(&mut bench).await?,
            BenchScenario::Drain => drain::run_drain(&mut bench).await?,
            BenchScenario::Latency => latency::run(&mut bench).await?,
            BenchScenario::Mixed => drain::run_mixed(&mut bench).await?,
            BenchScenario::Backlog => drain::run_backlog(&mut bench).await?,
            BenchScenario::Delayed => drain::run_delayed(&mut bench).await?,
            BenchScenario::Floor => floor::run(&mut bench).await?,
            BenchScenario::Workflows => workflows::run(&mut bench).await?,
        }
    }
    bench.finish().await
}

/// The Redis the benchmark runs against, what was asked, and the rows so far.
struct Bench {
    args: BenchArgs,
    /// The binary the worker processes run.
    flotilla: PathBuf,
    url: String,
    conn: SharedConnection,
    redis_version: String,
    pinned: bool,
    /// Runs so far; each gets a namespace of its own, removed when it ends.
    runs: usize,
    rows: Vec<Row>,
    /// The private redis-server, if the bench started one; dropping it kills the server.
    _server: Option<RedisServer>,
}

impl Bench {
    /// Connects to FLOTILLA_REDIS_URL or starts a private redis-server (pinned to CPU 0
    /// with `--pin`), and says what is measured.
    async fn set_up(args: BenchArgs, flotilla: PathBuf) -> anyhow::Result<Self> {
        let pinned = args.pin && fleet::can_pin();
        if args.pin && !pinned {
            eprintln!("--pin: taskset is missing or there is only one CPU; running unpinned");
        }
        let (url, server) = match std::env::var("FLOTILLA_REDIS_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let server = RedisServer::launch(RedisOptions {
                    tcp: true,
                    cpu: pinned.then_some(0),
                    ..RedisOptions::default()
                })?;
                server.ready(STARTUP).await?;
                (server.url(), Some(server))
            }
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        let mut conn = SharedConnection::connect(&RedisTarget::parse(&url)?, config)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Redis at {}",
                    flotilla_proto::redact_url(&url)
                )
            })?;
        let redis_version = redis_stats::server_version(&mut conn).await?;
        println!(
            "flotilla bench: {} jobs of {} payload bytes, Redis {} at {}{}",
            args.jobs,
            args.payload_bytes,
            redis_version,
            flotilla_proto::redact_url(&url),
            if pinned {
                ", Redis on CPU 0 (if the bench started it), workers on CPU 1"
            } else {
                ""
            }
        );
        Ok(Self {
            args,
            flotilla,
            url,
            conn,
            redis_version,
            pinned,
            runs: 0,
            rows: Vec::new(),
            _server: server,
        })
    }

    /// A namespace no earlier run used, so no run sees another's keys.
    fn fresh_keys(&mut self) -> Keys {
        self.runs += 1;
        Keys::new(format!(
            "flotilla-bench-{}-{}",
            std::process::id(),
            self.runs
        ))
    }

    /// Deletes every key of a run's namespace, so the next run's memory figures start
    /// from the same place.
    async fn clear(&mut self, keys: &Keys) -> anyhow::Result<()> {
        Ok(flotilla_proto::wipe_namespace(&mut self.conn, keys).await?)
    }

    /// Every job's arguments: `{"pad": "xxx…"}`.
    fn payload(&self) -> serde_json::Value {
        serde_json::json!({ "pad": "x".repeat(self.args.payload_bytes) })
    }

    /// `n` no-op jobs for the default queue.
    fn noop_jobs(&self, n: usize) -> anyhow::Result<Vec<NewJob>> {
        let payload = self.payload();
        let jobs = (0..n)
            .map(|_| NewJob::new("noop", &payload).map_err(Into::into))
            .collect::<anyhow::Result<Vec<NewJob>>>()?;
        Ok(self.identified(jobs))
    }

    /// `jobs`, each with an id of its own when `--ids` asks for them.
    fn identified(&self, jobs: Vec<NewJob>) -> Vec<NewJob> {
        let (ids, groups) = (self.args.ids, self.args.groups);
        if !ids && groups.is_none() {
            return jobs;
        }
        jobs.into_iter()
            .enumerate()
            .map(|(i, job)| {
                let job = if ids {
                    job.id(&format!("bench-{i}"))
                } else {
                    job
                };
                match groups {
                    Some(groups) => job.group(&format!("g{}", i as u64 % u64::from(groups))),
                    None => job,
                }
            })
            .collect()
    }

    /// A row's variant, marked when the jobs carry ids of their own.
    fn variant(&self, variant: impl Into<String>) -> String {
        let mut variant = variant.into();
        if self.args.ids {
            variant.push_str("+ids");
        }
        if self.args.limited {
            variant.push_str("+limited");
        }
        if let Some(groups) = self.args.groups {
            variant.push_str(&format!("+groups{groups}"));
        }
        variant
    }

    /// `n` jobs for the drain and backlog scenarios: no-ops, or `sleep` jobs of
    /// `--job-ms` each.
    fn drain_jobs(&self, n: usize) -> anyhow::Result<Vec<NewJob>> {
        if self.args.job_ms == 0 {
            return self.noop_jobs(n);
        }
        let mut payload = self.payload();
        payload["ms"] = serde_json::json!(self.args.job_ms);
        let jobs = (0..n)
            .map(|_| NewJob::new("sleep", &payload).map_err(Into::into))
            .collect::<anyhow::Result<Vec<NewJob>>>()?;
        Ok(self.identified(jobs))
    }

    /// A producer for a run's namespace, without a queue-length cap: the backlog is the
    /// point of several scenarios.
    fn producer(&self, keys: &Keys) -> Producer {
        let mut policy = JobPolicy::default();
        policy.limits.max_queue_len = 0;
        Producer::new(self.conn.clone(), keys.clone(), policy)
    }

    /// Enqueues `jobs` in bulk calls, untimed, with a progress bar.
    async fn prefill(&self, keys: &Keys, jobs: Vec<NewJob>) -> anyhow::Result<()> {
        let producer = self.producer(keys);
        let bar = progress_bar("backlog", jobs.len());
        enqueue::bulk(&producer, jobs, &bar).await?;
        bar.finish_and_clear();
        Ok(())
    }

    /// Waits until `total` jobs of `queues` have completed, with a progress bar; fails
    /// after `--timeout`.
    async fn wait_completed(
        &mut self,
        keys: &Keys,
        queues: &[&str],
        total: usize,
        label: &str,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let bar = progress_bar(label, total);
        loop {
            let done = completed(&mut self.conn, keys, queues).await?;
            bar.set_position(done as u64);
            if done >= total {
                bar.finish_and_clear();
                return Ok(());
            }
            if started.elapsed() > self.args.timeout {
                bar.abandon();
                bail!(
                    "{label}: only {done} of {total} jobs done after {:?}",
                    self.args.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Prints a finished run's row and keeps it for the report.
    fn record(&mut self, row: Row) {
        report::print_row(&row);
        self.rows.push(row);
    }

    /// The best drain rate of one worker process so far, for `--rate half`.
    fn best_single_worker_rate(&self) -> Option<f64> {
        self.rows
            .iter()
            .filter(|r| r.scenario == "drain" && r.variant.starts_with("W1x"))
            .map(|r| r.jobs_per_s)
            .reduce(f64::max)
    }

    /// Writes the reports and says where.
    async fn finish(self) -> anyhow::Result<()> {
        let report = Report {
            system: "flotilla",
            version: env!("CARGO_PKG_VERSION"),
            machine: report::machine(self.redis_version),
            params: Params {
                jobs: self.args.jobs,
                payload_bytes: self.args.payload_bytes,
                pinned: self.pinned,
            },
            notes: vec![
                "default settings (completed jobs kept for 24 h, at most 100 000 per queue; \
                 more when a run has more jobs, so retained memory covers all of them)"
                    .to_owned(),
                "drain, mixed and backlog: one `flotilla worker` process per W; idle and \
                 paused workers look again every 50 ms so that all start together"
                    .to_owned(),
                "latency: pickup time (enqueue call to handler start); one worker process, \
                 concurrency 50, pinned like the drain's; the producer in the bench process"
                    .to_owned(),
            ]
            .into_iter()
            .chain((self.args.job_ms > 0).then(|| {
                format!(
                    "drain and backlog: each handler runs {} ms (a `sleep` job)",
                    self.args.job_ms
                )
            }))
            .collect(),
            results: self.rows,
        };
        report.write(&self.args.json, &self.args.markdown)?;
        println!(
            "\nreports written to {} and {}",
            self.args.json.display(),
            self.args.markdown.display()
        );
        Ok(())
    }
}

/// The completions the bench's workers keep: the default, or the run's job count when
/// that is more, so a run's retained memory is that of all its jobs.
fn completed_max_len(jobs: usize) -> u64 {
    JobPolicy::default()
        .retention
        .completed_max_len
        .max(jobs as u64)
}

/// Jobs of `queues` completed so far: every completion is appended to its queue's `done`
/// stream, whose `entries-added` counts them however the stream is trimmed.
async fn completed(
    conn: &mut SharedConnection,
    keys: &Keys,
    queues: &[&str],
) -> anyhow::Result<usize> {
    let mut total = 0;
    for queue in queues {
        let ever = flotilla_proto::completions_ever(conn, keys, queue).await?;
        total += usize::try_from(ever).unwrap_or(usize::MAX);
    }
    Ok(total)
}

/// A progress bar on stderr; hidden when stderr is not a terminal.
fn progress_bar(label: &str, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) =
        ProgressStyle::with_template("  {prefix:<10} [{bar:32}] {pos}/{len} {per_sec} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}
