//! `flotilla enqueue`: one job from the command line; prints its id.

use std::path::Path;
use std::time::Duration;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use flotilla_producer::{NewJob, OnParentEnd, Outcome, Producer};
use flotilla_proto::{Backoff, ContentType, Keys, Payload};

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
    if let Some(key) = &args.debounce {
        job = job.debounce(key, args.debounce_delay);
        if let Some(max) = args.debounce_max {
            job = job.debounce_max(max);
        }
    }
    if let Some(ttl) = args.expires_in {
        job = job.expires_in(ttl);
    }
    if let Some(group) = &args.group {
        job = job.group(group);
    }
    if !args.after.is_empty() {
        let on_end: OnParentEnd = args
            .on_parent_end
            .parse()
            .map_err(|e| anyhow::anyhow!("--on-parent-end: {e}"))?;
        for given in &args.after {
            let parent = producer
                .parent(given)
                .await
                .with_context(|| format!("--after {given}"))?;
            job = job.after(parent.on_end(on_end));
        }
    }
    let enqueued = producer.enqueue(job).await?;
    match enqueued.outcome {
        Outcome::Created => {}
        Outcome::Waiting => eprintln!("waits for {} to complete first", args.after.join(", ")),
        Outcome::Duplicate => eprintln!(
            "a job holding unique key {:?} exists already",
            args.unique.unwrap_or_default()
        ),
        Outcome::Exists => eprintln!("job {} exists already; nothing changed", enqueued.full_id()),
        Outcome::Debounced => eprintln!(
            "folded into job {}, which waits under debounce key {:?} and now carries this payload",
            enqueued.full_id(),
            args.debounce.unwrap_or_default()
        ),
    }
    println!("{}", enqueued.full_id());
    if !has_live_worker(&producer, &args.queue).await {
        eprintln!(
            "warning: no live worker serves queue {:?}; the job waits until one does \
             (start one with: flotilla worker, serving it under [queues])",
            args.queue
        );
    }
    Ok(())
}

/// True when some live worker (by the one liveness rule, `flotilla_proto::is_live`) lists
/// `queue`. A failed look-up counts as served: the warning is advice, not a check to fail
/// on.
async fn has_live_worker(producer: &Producer, queue: &str) -> bool {
    let mut conn = producer.connection();
    match flotilla_proto::worker_beats(&mut conn, producer.keys()).await {
        Ok((_, workers)) => workers
            .iter()
            .any(|w| w.live && w.queues().any(|q| q == queue)),
        Err(_) => true,
    }
}

pub async fn connect(settings: &Settings) -> anyhow::Result<Producer> {
    let conn = super::connect_redis(&settings.redis_target()?).await?;
    Ok(Producer::new(
        conn,
        Keys::new(settings.namespace.clone()),
        settings.job_policy(),
    ))
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

    /// Debounce key: jobs enqueued with it within --debounce-delay of each other run once,
    /// after the last of them, with its payload (prints the waiting job's id).
    #[arg(long, value_name = "KEY", conflicts_with = "unique")]
    pub debounce: Option<String>,

    /// How long after the last enqueue of the debounce key the job runs.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "5s", requires = "debounce")]
    pub debounce_delay: Duration,

    /// The longest the job waits after the first enqueue of its debounce key.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "debounce")]
    pub debounce_max: Option<Duration>,

    /// Never start the job later than this after now, e.g. `10m`: not started by then
    /// (its queue paused, backed up or throttled), it ends as `expired`, unrun.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,

    /// The job's group (a tenant, an account): where the queue limits each group
    /// (`queues limit --group-concurrency N`), it waits its group's turn.
    #[arg(long, value_name = "GROUP", conflicts_with_all = ["unique", "debounce", "delay", "at"])]
    pub group: Option<String>,

    /// Run only once these jobs (full ids, comma-separated, of any queue) have completed;
    /// a delay or time counts from then. The job reads their results.
    #[arg(long, value_name = "ID[,ID…]", value_delimiter = ',', conflicts_with_all = ["unique", "debounce"])]
    pub after: Vec<String>,

    /// What the job does if one of its --after jobs ends without completing (dead,
    /// cancelled, expired, deleted): `cancel` (end cancelled, unrun), `run` (run anyway)
    /// or `wait` (wait until an operator's retry of the dead job completes).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "cancel",
        requires = "after"
    )]
    pub on_parent_end: String,
}
