//! `flotilla enqueue`: one job from the command line; prints its id.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use flotilla_producer::{NewJob, Outcome, Producer};
use flotilla_proto::{Backoff, ContentType, Keys, Payload, worker_field};

use crate::cli::EnqueueArgs;
use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>, args: EnqueueArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let producer = connect(&settings).await?;
    if !args.create_queue && !settings.queues.contains_key(&args.queue) {
        // A typo would otherwise start a queue that no worker serves, listed and alerted
        // on from then on.
        let mut admin = flotilla_admin::Admin::new(producer.connection(), producer.keys().clone());
        let known = admin.queues().await?;
        if !known.contains(&args.queue) {
            anyhow::bail!(
                "no queue {:?}: the fleet knows {}; pass --create-queue to start a new one",
                args.queue,
                if known.is_empty() {
                    "none yet".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let value: serde_json::Value = serde_json::from_str(&args.payload)
        .with_context(|| format!("--payload: {:?} is not valid JSON", args.payload))?;
    // JSON stays JSON, so workers in any language can read what the command line sent.
    let payload = Payload::encode(&value, ContentType::Json)?;
    let mut job = NewJob::with_payload(&args.job_type, payload).queue(&args.queue);
    if let Some(delay) = args.delay {
        job = job.delay(delay);
    }
    if let Some(at) = &args.at {
        let instant: jiff::Timestamp = at.parse().with_context(|| {
            format!("--at: {at:?} is not an RFC 3339 instant like 2026-12-01T09:00:00Z")
        })?;
        job = job.at(SystemTime::from(instant));
    }
    if let Some(n) = args.max_attempts {
        job = job.max_attempts(n);
    }
    if let Some(timeout) = args.timeout {
        job = job.timeout(timeout);
    }
    if let Some(policy) = &args.backoff {
        let backoff: Backoff = policy
            .parse()
            .with_context(|| format!("--backoff {policy:?}"))?;
        job = job.backoff(backoff);
    }
    if let Some(key) = &args.unique {
        job = job.unique(key, args.unique_for);
    }
    if let Some(id) = &args.id {
        job = job.id(id);
    }
    let enqueued = producer.enqueue(job).await?;
    match enqueued.outcome {
        Outcome::Created => {}
        Outcome::Duplicate => eprintln!(
            "a job holding unique key {:?} exists already",
            args.unique.unwrap_or_default()
        ),
        Outcome::Exists => eprintln!("job {} exists already; nothing changed", enqueued.id),
    }
    println!("{}", enqueued.id);
    if !has_live_worker(&producer, &args.queue).await {
        eprintln!(
            "warning: no live worker serves queue {:?}; the job waits until one does \
             (start one with: flotilla worker, serving it under [queues])",
            args.queue
        );
    }
    Ok(())
}

/// True when some worker whose heartbeat is within its lease lists `queue`. A failed
/// look-up counts as served: the warning is advice, not a check to fail on.
async fn has_live_worker(producer: &Producer, queue: &str) -> bool {
    let keys = producer.keys();
    let mut conn = producer.connection();
    let look = async {
        let (secs, _micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let now_ms = secs * 1000;
        let workers: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(keys.workers())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        for (worker, beat) in workers {
            let (queues, lease): (Option<String>, Option<i64>) = redis::cmd("HMGET")
                .arg(keys.worker(&worker))
                .arg(worker_field::QUEUES)
                .arg(worker_field::LEASE_MS)
                .query_async(&mut conn)
                .await?;
            let live = beat as i64 >= now_ms - lease.unwrap_or(30_000);
            if live && queues.is_some_and(|q| q.split(',').any(|q| q == queue)) {
                return Ok(true);
            }
        }
        Ok::<_, redis::RedisError>(false)
    };
    look.await.unwrap_or(true)
}

pub async fn connect(settings: &Settings) -> anyhow::Result<Producer> {
    let conn = super::connect_redis(&settings.redis_target()?).await?;
    Ok(Producer::new(
        conn,
        Keys::new(settings.namespace.clone()),
        settings.job_policy(),
    ))
}
