//! The enqueue scenario: one job per round trip, many single calls in flight, and bulk
//! calls; each with what a pending job costs Redis in time and memory.

use std::time::Instant;

use anyhow::Context;
use flotilla_producer::{NewJob, Producer};
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;

use super::redis_stats::{Meter, used_memory};
use super::report::Row;
use super::{Bench, progress_bar};

/// Single enqueues wait a round trip each; this many are enough for a stable rate.
const MAX_SINGLE: usize = 10_000;
/// Single enqueue calls in flight at once in the pipelined variant.
const IN_FLIGHT: usize = 1000;
/// Jobs per bulk call.
const BULK_CHUNK: usize = 1000;

#[derive(Debug, Clone, Copy)]
enum Variant {
    Single,
    Pipelined,
    Bulk,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Pipelined => "pipelined",
            Self::Bulk => "bulk",
        }
    }
}

pub(super) async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for variant in [Variant::Single, Variant::Pipelined, Variant::Bulk] {
        let jobs = match variant {
            Variant::Single => bench.args.jobs.min(MAX_SINGLE),
            _ => bench.args.jobs,
        };
        let keys = bench.fresh_keys();
        let producer = bench.producer(&keys);
        // Built before the clock starts, so only enqueueing is timed.
        let batch = bench.noop_jobs(jobs)?;
        let memory_before = used_memory(&mut bench.conn).await?;
        let meter = Meter::start(&mut bench.conn).await?;
        let started = Instant::now();
        enqueue(&producer, variant, batch).await?;
        let elapsed = started.elapsed();
        let cost = meter.finish(&mut bench.conn).await?;
        let memory_after = used_memory(&mut bench.conn).await?;
        let mut row = Row::new(
            "enqueue",
            bench.variant(variant.name()),
            jobs,
            elapsed.as_secs_f64(),
            &cost,
        );
        row.redis_bytes_per_job = Some((memory_after - memory_before) / jobs as f64);
        bench.record(row);
        bench.clear(&keys).await?;
    }
    Ok(())
}

async fn enqueue(producer: &Producer, variant: Variant, jobs: Vec<NewJob>) -> anyhow::Result<()> {
    let bar = progress_bar(variant.name(), jobs.len());
    match variant {
        Variant::Single => {
            for job in jobs {
                producer.enqueue(job).await?;
                bar.inc(1);
            }
        }
        Variant::Pipelined => {
            // Calls share one multiplexed connection, which pipelines them.
            futures::stream::iter(jobs)
                .map(|job| async {
                    let enqueued = producer.enqueue(job).await;
                    bar.inc(1);
                    enqueued
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await?;
        }
        Variant::Bulk => bulk(producer, jobs, &bar).await?,
    }
    bar.finish_and_clear();
    Ok(())
}

/// Enqueues `jobs` in bulk calls of [`BULK_CHUNK`], moving `bar` along.
pub(super) async fn bulk(
    producer: &Producer,
    jobs: Vec<NewJob>,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let chunk: Vec<NewJob> = jobs.by_ref().take(BULK_CHUNK).collect();
        let n = chunk.len();
        for result in producer.enqueue_bulk(chunk).await? {
            result.context("enqueue failed")?;
        }
        bar.inc(n as u64);
    }
    Ok(())
}
