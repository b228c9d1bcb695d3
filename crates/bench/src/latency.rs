//! The latency scenario: jobs sent at a fixed rate to a waiting worker process, whose
//! handler notes how long after its enqueue call each job started.

use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_producer::{NewJob, ProducerError};
use flotilla_proto::partition::raise_partition_count;
use flotilla_proto::partition_names;

use super::Bench;
use super::fleet::{FleetSpec, WorkerFleet, WorkerRole};
use super::pickup::{PICKUP, now_us};
use super::redis_stats::Meter;
use super::report::{Latency, Row};
use crate::args::BenchRate;

/// The worker's concurrency: enough that a slot is always free at the rates measured.
const CONCURRENCY: usize = 50;
/// The rate `half` stands for when no drain ran first.
const FALLBACK_RATE: u32 = 1000;

pub(super) async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for rate in bench.args.rate.clone() {
        let (per_second, variant) = match rate {
            BenchRate::PerSecond(r) => (r, format!("rate{r}")),
            // Named alike on every system, whatever rate each reached.
            BenchRate::HalfOfMax => (
                bench
                    .best_single_worker_rate()
                    .map_or(FALLBACK_RATE, |best| (best / 2.0).max(1.0) as u32),
                "half-max".to_owned(),
            ),
        };
        let row = measure(bench, per_second, variant).await?;
        bench.record(row);
    }
    Ok(())
}

async fn measure(bench: &mut Bench, per_second: u32, variant: String) -> anyhow::Result<Row> {
    let keys = bench.fresh_keys();
    let total = (u64::from(per_second) * bench.args.latency_secs).max(1) as usize;
    // Jobs to run now go to each partition in turn, so the worker waits on all of them.
    raise_partition_count(&mut bench.conn, &keys, "default", bench.args.partitions).await?;
    // The worker is a process of its own, pinned like the drain's, so that the producer
    // here does not take its CPU.
    let spec = FleetSpec {
        exe: &bench.flotilla,
        url: &bench.url,
        keys: &keys,
        role: WorkerRole::RecordPickups,
        queues: "default",
        concurrency: CONCURRENCY,
        processes: 1,
        pin: bench.pinned,
        jobs: total,
    };
    let fleet = WorkerFleet::start(&spec, &mut bench.conn).await?;
    // Let the worker make its consumer group and begin its first read, so that start-up
    // is not counted as pickup time.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let producer = bench.producer(&keys);
    let pad = "x".repeat(bench.args.payload_bytes);
    let meter = Meter::start(&mut bench.conn).await?;
    let worker_cpu_before = fleet.cpu_usec();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(per_second));
    let mut sends = tokio::task::JoinSet::new();
    let mut sent = 0;
    while sent < total {
        // Job i is due at `started + i × interval`, whatever happened to the jobs before
        // it: each wake sends every job due by then in one pipeline, as a client library
        // writes the calls made in one turn of its event loop together (one timer and one
        // task per wake, not per job, whose cost would show as pickup time at high rates).
        let due =
            ((started.elapsed().as_secs_f64() * f64::from(per_second)) as usize + 1).min(total);
        let jobs = (sent..due)
            .map(|_| {
                NewJob::new(
                    PICKUP,
                    &serde_json::json!({ "sent_us": now_us(), "pad": pad }),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !jobs.is_empty() {
            let producer = producer.clone();
            sends.spawn(async move { producer.enqueue_bulk(jobs).await });
        }
        // Collect the finished sends as they go, so that none waits in memory till the end.
        while let Some(done) = sends.try_join_next() {
            check_sent(done)?;
        }
        sent = sent.max(due);
        if sent < total {
            tokio::time::sleep_until((started + interval * sent as u32).into()).await;
        }
    }
    while let Some(done) = sends.join_next().await {
        check_sent(done)?;
    }
    let partitions = partition_names("default", bench.args.partitions);
    let streams: Vec<&str> = partitions.iter().map(String::as_str).collect();
    bench
        .wait_completed(&keys, &streams, total, "latency")
        .await?;
    let elapsed = started.elapsed();
    let cost = meter.finish(&mut bench.conn).await?;
    let workers = fleet.figures(worker_cpu_before, total);
    let printed = fleet.stop().await?;
    bench.clear(&keys).await?;

    let pickups = printed.first().map(|out| out.trim()).unwrap_or_default();
    let latency: Latency = serde_json::from_str(pickups)
        .with_context(|| format!("the pickup worker printed {pickups:?}, not its pickup times"))?;
    let mut row =
        Row::new("latency", variant, total, elapsed.as_secs_f64(), &cost).with_workers(workers);
    row.latency_ms = Some(latency);
    Ok(row)
}

/// What one send task returns: the bulk call's result, one result per job inside.
type Sent = Result<Vec<Result<flotilla_producer::Enqueued, ProducerError>>, ProducerError>;

/// A finished send: the task ran, the pipeline was written, and every job in it enqueued.
fn check_sent(done: Result<Sent, tokio::task::JoinError>) -> anyhow::Result<()> {
    for enqueued in done.context("enqueue task")?? {
        enqueued?;
    }
    Ok(())
}
