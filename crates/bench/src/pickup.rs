//! The latency scenario's worker role (`flotilla bench-pickup-worker`, hidden, with the
//! `harness` feature): a worker whose handler notes how long after its enqueue call each
//! job started, and which prints those pickup times' percentiles as one JSON line when
//! SIGTERM stops it.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use flotilla_worker::{JobContext, Registry};
use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::report::Latency;

/// The job type whose handler records pickup times.
pub const PICKUP: &str = "bench-pickup";

/// A pickup job's payload, as the latency producer writes it.
#[derive(Deserialize)]
struct PickupArgs {
    /// When the enqueue call was made, in µs since the Unix epoch.
    sent_us: u64,
}

/// The pickup times a worker's [`PICKUP`] handler has seen.
#[derive(Debug, Clone)]
pub struct PickupRecorder {
    pickups: Arc<Mutex<Histogram<u64>>>,
}

impl PickupRecorder {
    /// An empty record of pickup times, up to ten minutes each.
    pub fn new() -> anyhow::Result<Self> {
        let histogram =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?;
        Ok(Self {
            pickups: Arc::new(Mutex::new(histogram)),
        })
    }

    /// Registers the [`PICKUP`] handler, which records each job's pickup time here.
    pub fn register(&self, registry: &mut Registry) {
        let recorded = Arc::clone(&self.pickups);
        registry.register_fn(PICKUP, move |args: PickupArgs, _ctx: JobContext| {
            let waited = now_us().saturating_sub(args.sent_us).max(1);
            let mut histogram = recorded.lock().unwrap_or_else(|p| p.into_inner());
            // A pickup beyond the histogram's ten minutes is clamped, not lost.
            histogram.saturating_record(waited);
            async { Ok::<_, std::convert::Infallible>(()) }
        });
    }

    /// The percentiles recorded so far, as the one JSON line the bench reads from the
    /// worker process's stdout.
    pub fn summary_json(&self) -> anyhow::Result<String> {
        let histogram = self.pickups.lock().unwrap_or_else(|p| p.into_inner());
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        let latency = Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: histogram.max() as f64 / 1000.0,
        };
        Ok(serde_json::to_string(&latency)?)
    }
}

/// Now, in µs since the Unix epoch: the clock producer and handler share.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
