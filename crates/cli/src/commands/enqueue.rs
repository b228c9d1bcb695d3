//! `flotilla enqueue`: one job from the command line; prints its id.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use flotilla_producer::{NewJob, Outcome, Producer};
use flotilla_proto::{Backoff, ContentType, Keys, Payload};

use crate::cli::EnqueueArgs;
use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>, args: EnqueueArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let producer = connect(&settings).await?;
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
    Ok(())
}

pub async fn connect(settings: &Settings) -> anyhow::Result<Producer> {
    let conn = super::connect_redis(&settings.redis_url).await?;
    Ok(Producer::new(
        conn,
        Keys::new(settings.namespace.clone()),
        settings.producer_limits()?,
    ))
}
