//! The latency scenario's worker process (`flotilla bench-pickup-worker`, hidden): a
//! worker whose handler notes how long after its enqueue call each job started, and which
//! prints those pickup times' percentiles as one JSON line when SIGTERM stops it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use flotilla_worker::{JobContext, QueueWeight, Registry, Shutdown, Worker};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::report::Latency;
use crate::cli::PickupWorkerArgs;
use crate::settings::Settings;

/// The job type whose handler records pickup times.
pub const PICKUP: &str = "bench-pickup";

/// A pickup job's payload, as the latency producer writes it.
#[derive(Deserialize)]
struct PickupArgs {
    /// When the enqueue call was made, in µs since the Unix epoch.
    sent_us: u64,
}

/// Serves `args.queue` until SIGTERM, then prints the pickup percentiles on stdout.
pub async fn serve(config_file: Option<&Path>, args: PickupWorkerArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let pickups = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?,
    ));
    let mut registry = Registry::with_builtins();
    let recorded = Arc::clone(&pickups);
    registry.register_fn(PICKUP, move |args: PickupArgs, _ctx: JobContext| {
        let waited = now_us().saturating_sub(args.sent_us).max(1);
        let mut histogram = recorded.lock().unwrap_or_else(|p| p.into_inner());
        // A pickup beyond the histogram's ten minutes is clamped, not lost.
        histogram.saturating_record(waited);
        async { Ok::<_, std::convert::Infallible>(()) }
    });
    let mut config = settings.worker_config();
    config.queues = vec![QueueWeight::new(&args.queue, 1)];
    config.concurrency = args.concurrency;
    let worker = Worker::connect(&settings.redis_target()?, config, registry).await?;
    worker.run(Shutdown::on_signals()).await?;

    let histogram = pickups.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let latency = Latency {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: histogram.max() as f64 / 1000.0,
    };
    println!("{}", serde_json::to_string(&latency)?);
    Ok(())
}

/// Now, in µs since the Unix epoch: the clock producer and handler share.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
