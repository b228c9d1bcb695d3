//! The scenarios that drain a laid-down backlog with worker processes: `drain` (W × C over
//! no-op jobs), `mixed` (three priorities, 10 % failing once) and `backlog` (the same
//! drain as the backlog grows); and `delayed`, whose jobs are due a second after their
//! enqueue, so that promotion is timed with the drain.

use std::time::{Duration, Instant};

use anyhow::bail;
use flotilla_producer::NewJob;
use flotilla_proto::flow::{QueueLimit, Rate, set_limit};
use flotilla_proto::partition::raise_partition_count;
use flotilla_proto::{Backoff, Keys, browse, partition_names};

use super::Bench;
use super::fleet::{FleetSpec, WorkerFleet, WorkerRole};
use super::redis_stats::{Meter, used_memory};
use super::report::Row;

/// The flow limit `--limited` gives each queue: far above any load this machine makes,
/// so the run measures what keeping to a limit costs, never the limit itself.
const FAR_ABOVE_THE_LOAD: QueueLimit = QueueLimit {
    rate: Some(Rate {
        count: 1_000_000,
        per: Duration::from_secs(1),
    }),
    burst: Some(100_000),
    concurrency: Some(100_000),
    group_concurrency: None,
    group_rate: None,
    group_burst: None,
};

/// The window per group `--groups` gives each queue: far above the load, as above.
const GROUP_WINDOW_FAR_ABOVE_THE_LOAD: u32 = 100_000;

/// The limit a run gives each queue: far above the load with `--limited`, and a window
/// per group far above it with `--groups`; `None` for neither.
fn limit_of(bench: &Bench) -> Option<QueueLimit> {
    let mut limit = if bench.args.limited {
        FAR_ABOVE_THE_LOAD
    } else {
        QueueLimit::default()
    };
    if bench.args.groups.is_some() {
        limit.group_concurrency = Some(GROUP_WINDOW_FAR_ABOVE_THE_LOAD);
    }
    (!limit.is_empty()).then_some(limit)
}

/// Concurrency of the one worker process in `mixed` and `backlog`.
pub(super) const SINGLE_WORKER_CONCURRENCY: usize = 50;

pub(super) async fn run_drain(bench: &mut Bench) -> anyhow::Result<()> {
    for processes in bench.args.workers.clone() {
        for concurrency in bench.args.concurrency.clone() {
            let jobs = bench.drain_jobs(bench.args.jobs)?;
            let run = DrainRun {
                scenario: "drain",
                variant: bench.variant(format!("W{processes}xC{concurrency}")),
                queues: &["default"],
                processes,
                concurrency,
            };
            let outcome = run.measure(bench, jobs).await?;
            bench.record(outcome.row_with(Memory::Retained));
        }
    }
    Ok(())
}

pub(super) async fn run_mixed(bench: &mut Bench) -> anyhow::Result<()> {
    let jobs = bench.identified(mixed_jobs(bench.args.jobs, &bench.payload())?);
    let run = DrainRun {
        scenario: "mixed",
        variant: bench.variant(format!("W1xC{SINGLE_WORKER_CONCURRENCY}")),
        queues: &["critical", "default", "low"],
        processes: 1,
        concurrency: SINGLE_WORKER_CONCURRENCY,
    };
    let outcome = run.measure(bench, jobs).await?;
    bench.record(outcome.row_with(Memory::Retained));
    Ok(())
}

pub(super) async fn run_backlog(bench: &mut Bench) -> anyhow::Result<()> {
    for size in bench.args.backlog.clone() {
        let jobs = bench.drain_jobs(size)?;
        let run = DrainRun {
            scenario: "backlog",
            variant: bench.variant(size.to_string()),
            queues: &["default"],
            processes: 1,
            concurrency: SINGLE_WORKER_CONCURRENCY,
        };
        let outcome = run.measure(bench, jobs).await?;
        bench.record(outcome.row_with(Memory::Pending));
    }
    Ok(())
}

/// How long after its enqueue each job of the `delayed` scenario is due.
const DELAYED_BY: Duration = Duration::from_secs(1);

pub(super) async fn run_delayed(bench: &mut Bench) -> anyhow::Result<()> {
    for concurrency in bench.args.concurrency.clone() {
        let jobs: Vec<NewJob> = bench
            .drain_jobs(bench.args.jobs)?
            .into_iter()
            .map(|job| job.delay(DELAYED_BY))
            .collect();
        let variant = bench.variant(format!("W1xC{concurrency}"));
        let row = measure_delayed(bench, jobs, concurrency, variant).await?;
        bench.record(row);
    }
    Ok(())
}

/// One timed run of the `delayed` scenario: the worker waits first; the jobs are enqueued
/// with their delay while the meter runs, so Redis's figures hold enqueue, promotion and
/// completion; the clock runs from when the first job is due to the last completion.
async fn measure_delayed(
    bench: &mut Bench,
    jobs: Vec<NewJob>,
    concurrency: usize,
    variant: String,
) -> anyhow::Result<Row> {
    let total = jobs.len();
    let keys = bench.fresh_keys();
    if let Some(limit) = limit_of(bench) {
        set_limit(&mut bench.conn, &keys, "default", &limit, false).await?;
    }
    let spec = FleetSpec {
        exe: &bench.flotilla,
        url: &bench.url,
        keys: &keys,
        role: WorkerRole::Serve,
        queues: "default",
        concurrency,
        processes: 1,
        pin: bench.pinned,
        jobs: total,
    };
    let fleet = WorkerFleet::start(&spec, &mut bench.conn).await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let memory_before = used_memory(&mut bench.conn).await?;
    let meter = Meter::start(&mut bench.conn).await?;
    let worker_cpu_before = fleet.cpu_usec();
    let first_due = Instant::now() + DELAYED_BY;
    bench.prefill(&keys, jobs).await?;
    bench
        .wait_completed(&keys, &["default"], total, "delayed")
        .await?;
    let elapsed = first_due.elapsed();
    let cost = meter.finish(&mut bench.conn).await?;
    let workers = fleet.figures(worker_cpu_before, total);
    fleet.stop().await?;
    let memory_after = used_memory(&mut bench.conn).await?;
    bench.clear(&keys).await?;
    let mut row =
        Row::new("delayed", variant, total, elapsed.as_secs_f64(), &cost).with_workers(workers);
    row.redis_bytes_per_job = Some((memory_after - memory_before) / total as f64);
    Ok(row)
}

/// Jobs over three priorities (critical 10 %, default 60 %, low 30 %, interleaved); one
/// in ten fails its first attempt and is retried after 10 ms. The same jobs as
/// `bench/peers`' BullMQ side: priorities repeat every ten jobs, and the failing slot moves
/// through the ten each round so failures fall on every priority.
fn mixed_jobs(n: usize, payload: &serde_json::Value) -> anyhow::Result<Vec<NewJob>> {
    let mut failing = payload.clone();
    failing["times"] = serde_json::json!(1);
    (0..n)
        .map(|i| {
            let slot = i % 10;
            let queue = match slot {
                0 => "critical",
                3 | 6 | 9 => "low",
                _ => "default",
            };
            let job = if slot == (i / 10) % 10 {
                NewJob::new("fail", &failing)?
            } else {
                NewJob::new("noop", payload)?
            };
            Ok(job
                .queue(queue)
                .max_attempts(3)
                .backoff(Backoff::Fixed(Duration::from_millis(10))))
        })
        .collect()
}

/// One timed drain: the backlog is laid down while the queues are paused and the worker
/// processes wait, and the clock runs from the first delivery to the last completion.
pub(super) struct DrainRun<'a> {
    pub(super) scenario: &'static str,
    pub(super) variant: String,
    pub(super) queues: &'a [&'a str],
    pub(super) processes: usize,
    pub(super) concurrency: usize,
}

pub(super) struct DrainOutcome {
    row: Row,
    /// Memory the backlog took, per job, before any ran.
    pending_bytes_per_job: f64,
    /// Memory left after every job completed, per job: what retention keeps.
    retained_bytes_per_job: f64,
}

/// Which memory figure a row reports as bytes per job.
pub(super) enum Memory {
    Pending,
    Retained,
}

impl DrainOutcome {
    pub(super) fn row_with(self, memory: Memory) -> Row {
        let mut row = self.row;
        row.redis_bytes_per_job = Some(match memory {
            Memory::Pending => self.pending_bytes_per_job,
            Memory::Retained => self.retained_bytes_per_job,
        });
        row
    }
}

/// What a drain lays down before the clock starts.
pub(super) enum Backlog {
    /// Jobs enqueued in bulk.
    Jobs(Vec<NewJob>),
    /// One flow, created in one call; `total` jobs in all.
    Flow(flotilla_producer::Flow, usize),
    /// One batch (its callback counted in `total`).
    Batch(flotilla_producer::Batch, usize),
}

impl Backlog {
    fn total(&self) -> usize {
        match self {
            Backlog::Jobs(jobs) => jobs.len(),
            Backlog::Flow(_, total) | Backlog::Batch(_, total) => *total,
        }
    }
}

impl DrainRun<'_> {
    async fn measure(&self, bench: &mut Bench, jobs: Vec<NewJob>) -> anyhow::Result<DrainOutcome> {
        self.measure_backlog(bench, Backlog::Jobs(jobs)).await
    }

    pub(super) async fn measure_backlog(
        &self,
        bench: &mut Bench,
        backlog: Backlog,
    ) -> anyhow::Result<DrainOutcome> {
        let total = backlog.total();
        let keys = bench.fresh_keys();
        let partitions = bench.args.partitions;
        let mut streams = Vec::new();
        for queue in self.queues {
            raise_partition_count(&mut bench.conn, &keys, queue, partitions).await?;
            streams.extend(partition_names(queue, partitions));
            if let Some(limit) = limit_of(bench) {
                set_limit(&mut bench.conn, &keys, queue, &limit, false).await?;
            }
        }
        let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
        let queue_spec = match self.queues {
            [one] => (*one).to_owned(),
            _ => "critical=6,default=3,low=1".to_owned(),
        };
        set_paused(bench, &keys, self.queues, true).await?;
        let spec = FleetSpec {
            exe: &bench.flotilla,
            url: &bench.url,
            keys: &keys,
            role: WorkerRole::Serve,
            queues: &queue_spec,
            concurrency: self.concurrency,
            processes: self.processes,
            pin: bench.pinned,
            jobs: total,
        };
        let fleet = WorkerFleet::start(&spec, &mut bench.conn).await?;
        // Let every worker see the pause (its first look at the paused set, and the end of
        // any blocking read it began before) so that none takes a job of the backlog early.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let memory_before = used_memory(&mut bench.conn).await?;
        match backlog {
            Backlog::Jobs(jobs) => bench.prefill(&keys, jobs).await?,
            Backlog::Flow(flow, _) => {
                bench.producer(&keys).enqueue_flow(flow).await?;
            }
            Backlog::Batch(batch, _) => {
                bench.producer(&keys).enqueue_batch(batch).await?;
            }
        }
        let memory_pending = used_memory(&mut bench.conn).await?;

        let meter = Meter::start(&mut bench.conn).await?;
        let worker_cpu_before = fleet.cpu_usec();
        set_paused(bench, &keys, self.queues, false).await?;
        let started = first_delivery(bench, &keys, &streams).await?;
        bench
            .wait_completed(&keys, &streams, total, self.scenario)
            .await?;
        let elapsed = started.elapsed();
        let cost = meter.finish(&mut bench.conn).await?;
        let workers = fleet.figures(worker_cpu_before, total);
        fleet.stop().await?;
        let memory_after = used_memory(&mut bench.conn).await?;
        bench.clear(&keys).await?;

        let row = Row::new(
            self.scenario,
            self.variant.clone(),
            total,
            elapsed.as_secs_f64(),
            &cost,
        )
        .with_workers(workers);
        Ok(DrainOutcome {
            row,
            pending_bytes_per_job: (memory_pending - memory_before) / total as f64,
            retained_bytes_per_job: (memory_after - memory_before) / total as f64,
        })
    }
}

/// Pauses or resumes `queues` for the run's workers.
async fn set_paused(
    bench: &mut Bench,
    keys: &Keys,
    queues: &[&str],
    paused: bool,
) -> anyhow::Result<()> {
    for queue in queues {
        flotilla_proto::consume::set_paused(&mut bench.conn, keys, queue, paused).await?;
    }
    Ok(())
}

/// Waits until a worker has taken the first entry of `streams`; that instant starts the
/// clock, so worker start-up and the resume poll are not timed.
async fn first_delivery(
    bench: &mut Bench,
    keys: &Keys,
    streams: &[&str],
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for queue in streams {
            let read = browse::last_delivered(&mut bench.conn, keys, queue).await?;
            if read.is_some_and(|id| id != "0-0") {
                return Ok(Instant::now());
            }
        }
        if Instant::now() > deadline {
            bail!("no worker took a job within 10 s of resuming the queues");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_fails_one_job_in_ten_on_every_slot_as_the_peer_bench_does() {
        let jobs = mixed_jobs(1000, &serde_json::json!({})).expect("jobs");
        let failing: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].job_type() == "fail")
            .collect();
        assert_eq!(failing.len(), 100);
        let mut slots: Vec<usize> = failing.iter().map(|i| i % 10).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots, (0..10).collect::<Vec<_>>());
    }
}
