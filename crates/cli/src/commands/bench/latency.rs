//! The latency scenario: jobs sent at a fixed rate to a waiting worker, each handler
//! noting how long after its enqueue call it started, kept in an HDR histogram.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use flotilla_producer::NewJob;
use flotilla_worker::{JobContext, QueueWeight, Registry, Shutdown, Worker, WorkerConfig};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::Bench;
use super::redis_stats::Meter;
use super::report::{Latency, Row};
use crate::cli::BenchRate;

/// The worker's concurrency: enough that a slot is always free at the rates measured.
const CONCURRENCY: usize = 50;
/// The rate `half` stands for when no drain ran first.
const FALLBACK_RATE: u32 = 1000;
/// The job type whose handler records pickup times.
const PICKUP: &str = "bench-pickup";

#[derive(Deserialize)]
struct PickupArgs {
    /// When the enqueue call was made, in µs since the Unix epoch.
    sent_us: u64,
}

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
    let pickups = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?,
    ));
    let shutdown = Shutdown::new();
    let worker_task = start_worker(bench, &keys, total, Arc::clone(&pickups), &shutdown).await?;
    // Let the worker make its consumer group and begin its first read, so that start-up
    // is not counted as pickup time.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let producer = bench.producer(&keys);
    let pad = "x".repeat(bench.args.payload_bytes);
    let meter = Meter::start(&mut bench.conn).await?;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(per_second));
    let mut sends = tokio::task::JoinSet::new();
    let mut sent = 0;
    while sent < total {
        // Job i is due at `started + i × interval`, whatever happened to the jobs before
        // it: each wake sends every job due by then (one timer per wake, not per job,
        // whose cost would show as pickup time at high rates).
        let due =
            ((started.elapsed().as_secs_f64() * f64::from(per_second)) as usize + 1).min(total);
        for _ in sent..due {
            let job = NewJob::new(
                PICKUP,
                &serde_json::json!({ "sent_us": now_us(), "pad": pad }),
            )?;
            let producer = producer.clone();
            sends.spawn(async move { producer.enqueue(job).await });
        }
        sent = sent.max(due);
        if sent < total {
            tokio::time::sleep_until((started + interval * sent as u32).into()).await;
        }
    }
    while let Some(sent) = sends.join_next().await {
        sent.context("enqueue task")??;
    }
    bench
        .wait_completed(&keys, &["default"], total, "latency")
        .await?;
    let elapsed = started.elapsed();
    let cost = meter.finish(&mut bench.conn).await?;
    shutdown.trigger();
    worker_task.await.context("worker task")??;
    bench.clear(&keys).await?;

    let histogram = pickups.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let mut row = Row::new("latency", variant, total, elapsed.as_secs_f64(), &cost);
    row.latency_ms = Some(Latency {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: histogram.max() as f64 / 1000.0,
    });
    Ok(row)
}

/// A worker in this process whose `bench-pickup` handler records pickup times.
async fn start_worker(
    bench: &Bench,
    keys: &flotilla_proto::Keys,
    jobs: usize,
    pickups: Arc<Mutex<Histogram<u64>>>,
    shutdown: &Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<Result<(), flotilla_worker::WorkerError>>> {
    let mut registry = Registry::with_builtins();
    registry.register_fn(PICKUP, move |args: PickupArgs, _ctx: JobContext| {
        let waited = now_us().saturating_sub(args.sent_us).max(1);
        let mut histogram = pickups.lock().unwrap_or_else(|p| p.into_inner());
        // A pickup beyond the histogram's ten minutes is clamped, not lost.
        histogram.saturating_record(waited);
        async { Ok::<_, std::convert::Infallible>(()) }
    });
    let mut config = WorkerConfig {
        namespace: keys.namespace().to_owned(),
        concurrency: CONCURRENCY,
        queues: vec![QueueWeight::new("default", 1)],
        ..WorkerConfig::default()
    };
    config.jobs.retention.completed_max_len = super::completed_max_len(jobs);
    let worker = Worker::connect(&bench.url, config, registry).await?;
    Ok(tokio::spawn(worker.run(shutdown.clone())))
}

/// Now, in µs since the Unix epoch: the clock producer and handler share.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
