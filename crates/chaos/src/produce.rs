//! The drill's producers: jobs spread evenly over the run, by a raw XADD (as any language
//! would) and by the Rust producer in turn, every other pair with an id of its own, and
//! retried while Redis is away (a retried job with an id of its own still runs once).

use std::time::{Duration, Instant};

use flotilla_producer::{NewJob, Producer};
use flotilla_proto::SharedConnection;
use flotilla_proto::{JobPolicy, Keys};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The queues jobs go to, with the drill's weights.
pub const QUEUES: [&str; 3] = ["critical", "default", "low"];

/// One job the producers enqueued.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub id: String,
    pub queue: &'static str,
    /// Its group, when it has one.
    pub group: Option<String>,
    /// When the enqueue succeeded, in wall-clock milliseconds.
    pub at_ms: i64,
}

/// What the producers did.
#[derive(Debug, Default)]
pub struct Produced {
    pub jobs: Vec<Enqueued>,
    /// Enqueue calls that failed and were tried again (Redis away).
    pub retries: usize,
    /// Jobs given up on after trying until the deadline.
    pub abandoned: usize,
}

/// What to enqueue and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub jobs: usize,
    /// The jobs are spread evenly over this long.
    pub over: Duration,
    pub job_ms: u64,
    /// The job type the handlers are registered under.
    pub job_type: &'static str,
    pub seed: u64,
    /// How many groups the producer's jobs are spread over; none without.
    pub groups: Option<u32>,
}

pub async fn run(conn: SharedConnection, keys: Keys, plan: Plan) -> Produced {
    let producer = Producer::new(conn.clone(), keys.clone(), JobPolicy::default());
    let mut raw = conn;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut produced = Produced::default();
    let started = Instant::now();
    // Beyond the run, a job still refused is given up on and reported.
    let give_up_at = started + plan.over + Duration::from_secs(30);
    for n in 0..plan.jobs {
        let due = plan.over.mul_f64(n as f64 / plan.jobs.max(1) as f64);
        tokio::time::sleep_until((started + due).into()).await;
        let queue = QUEUES[rng.random_range(0..QUEUES.len())];
        let payload = json!({ "ms": rng.random_range(0..=plan.job_ms) });
        let by_raw_xadd = n % 2 == 0;
        let own_id = (n % 4 >= 2).then(|| format!("chaos-{:x}-{n}", plan.seed));
        let own_id = own_id.as_deref();
        // One job in eight (through the producer) waits a little first, in `later`, so
        // promotion is under fire too.
        let delay = (n % 8 == 3).then(|| Duration::from_millis(rng.random_range(0..=3000)));
        // Raw XADDs' groups are kept by the workers that read them, the producer's by its
        // script.
        let group = plan
            .groups
            .map(|groups| format!("g{}", rng.random_range(0..groups)));
        loop {
            let attempt = if by_raw_xadd {
                let how = How {
                    own_id,
                    delay: None,
                    group: group.as_deref(),
                };
                xadd(&mut raw, &keys, queue, plan.job_type, &payload, how).await
            } else {
                let how = How {
                    own_id,
                    delay,
                    group: group.as_deref(),
                };
                enqueue(&producer, queue, plan.job_type, &payload, how).await
            };
            match attempt {
                Ok(id) => {
                    let at_ms = super::ledger::now_ms();
                    let group = group.clone();
                    produced.jobs.push(Enqueued {
                        id,
                        queue,
                        group,
                        at_ms,
                    });
                    break;
                }
                Err(e) if Instant::now() < give_up_at => {
                    tracing::debug!("enqueue failed, trying again: {e}");
                    produced.retries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::warn!("enqueue failed, giving up on the job: {e}");
                    produced.abandoned += 1;
                    break;
                }
            }
        }
    }
    produced
}

/// Adds a job by a raw XADD (its delay is not used); its id is `own_id` when given, else
/// its entry id.
async fn xadd(
    conn: &mut SharedConnection,
    keys: &Keys,
    queue: &str,
    job_type: &str,
    payload: &serde_json::Value,
    how: How<'_>,
) -> anyhow::Result<String> {
    let payload = payload.to_string();
    let mut fields: Vec<(&str, &[u8])> = Vec::new();
    if let Some(id) = how.own_id {
        fields.push(("id", id.as_bytes()));
    }
    fields.push(("type", job_type.as_bytes()));
    fields.push(("payload", payload.as_bytes()));
    if let Some(group) = how.group {
        fields.push(("group", group.as_bytes()));
    }
    let entry = flotilla_proto::add_raw_entry(conn, keys, queue, &fields).await?;
    Ok(how.own_id.map_or(entry, str::to_owned))
}

/// What a job enqueued by the producer has besides its type and payload.
struct How<'a> {
    own_id: Option<&'a str>,
    delay: Option<Duration>,
    group: Option<&'a str>,
}

async fn enqueue(
    producer: &Producer,
    queue: &str,
    job_type: &str,
    payload: &serde_json::Value,
    how: How<'_>,
) -> anyhow::Result<String> {
    let mut job = NewJob::new(job_type, payload)?.queue(queue);
    if let Some(id) = how.own_id {
        job = job.id(id);
    }
    if let Some(delay) = how.delay {
        job = job.delay(delay);
    }
    if let Some(group) = how.group {
        job = job.group(group);
    }
    Ok(producer.enqueue(job).await?.id)
}
