//! The drill's flows and batches, created while the monkey acts: flows of ten jobs in a
//! diamond-and-fan (a → b, c → d → six), and batches whose `complete` callback must run
//! once, after the batch's last job. The verdict checks from the ledger that no job
//! began before its parents finished, that each callback began after its batch's last
//! job finished and fired once, and that nothing is left waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flotilla_producer::{Batch, Flow, NewJob, OnParentEnd, Parent, Producer, ProducerError};
use flotilla_proto::dependencies::batch_state;
use flotilla_proto::{JobPolicy, Keys, SharedConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use super::ledger::{Execution, Mark, job_key};
use super::produce::{Enqueued, QUEUES};

/// Jobs in one flow of the drill.
pub const FLOW_JOBS: usize = 10;

/// How many flows and batches, over how long.
#[derive(Debug, Clone)]
pub struct Plan {
    pub flows: usize,
    pub batches: usize,
    pub batch_size: usize,
    pub over: Duration,
    pub job_ms: u64,
    pub job_type: &'static str,
    pub seed: u64,
}

/// What was created: every job (for the usual accounting), and what the order and
/// callback checks need.
#[derive(Debug, Default)]
pub struct Made {
    pub jobs: Vec<Enqueued>,
    /// `(parent, child)` as ledger keys.
    pub edges: Vec<(String, String)>,
    /// Each batch: its queue and id, its callback's ledger key, its jobs' ledger keys.
    pub batches: Vec<(String, String, String, Vec<String>)>,
    pub flows: usize,
    pub retries: usize,
    pub abandoned: usize,
}

pub async fn run(conn: SharedConnection, keys: Keys, plan: Plan) -> Made {
    let producer = Producer::new(conn, keys, JobPolicy::default());
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed_f10e);
    let mut made = Made::default();
    let started = Instant::now();
    let give_up_at = started + plan.over + Duration::from_secs(30);
    let units = plan.flows + plan.batches;
    for n in 0..units {
        let due = plan.over.mul_f64(n as f64 / units.max(1) as f64);
        tokio::time::sleep_until((started + due).into()).await;
        // Flows and batches take turns while both last.
        let is_flow = n % 2 == 0 && made.flows < plan.flows || made.batches.len() >= plan.batches;
        let name = format!("wf{:x}-{n}", plan.seed);
        let job = |rng: &mut StdRng, id: String| {
            let queue = QUEUES[rng.random_range(0..QUEUES.len())];
            let payload = json!({ "ms": rng.random_range(0..=plan.job_ms) });
            (queue, id, payload)
        };
        if is_flow {
            let jobs: Vec<_> = (0..FLOW_JOBS)
                .map(|k| job(&mut rng, format!("{name}-{k}")))
                .collect();
            // a → b, c → d → the rest. A dead parent lets its children run anyway (`run`),
            // so that a death under fire loses no child; the order check skips its edges.
            let mut parents: Vec<Vec<usize>> = vec![Vec::new(); FLOW_JOBS];
            parents[1] = vec![0];
            parents[2] = vec![0];
            parents[3] = vec![1, 2];
            for p in parents.iter_mut().skip(4) {
                *p = vec![3];
            }
            let build = || -> Result<Flow, ProducerError> {
                let mut flow = Flow::with_id(&name);
                for (k, (queue, id, payload)) in jobs.iter().enumerate() {
                    let mut new = NewJob::new(plan.job_type, payload)?.queue(queue).id(id);
                    for &p in &parents[k] {
                        let (pq, pid, _) = &jobs[p];
                        new = new.after(Parent::new(pq, pid).on_end(OnParentEnd::Run));
                    }
                    flow.add(new)?;
                }
                Ok(flow)
            };
            if create(&mut made, give_up_at, || async {
                producer.enqueue_flow(build()?).await.map(|_| ())
            })
            .await
            {
                made.flows += 1;
                for (k, (queue, id, _)) in jobs.iter().enumerate() {
                    made.jobs.push(enqueued(queue, id));
                    for &p in &parents[k] {
                        made.edges
                            .push((job_key(jobs[p].0, &jobs[p].1), job_key(queue, id)));
                    }
                }
            }
        } else {
            let jobs: Vec<_> = (0..plan.batch_size)
                .map(|k| job(&mut rng, format!("{name}-{k}")))
                .collect();
            let callback = format!("{name}.on_complete");
            let build = || -> Result<Batch, ProducerError> {
                let mut batch = Batch::new(&name)
                    .on_complete(NewJob::new(plan.job_type, &json!({ "ms": 0 }))?.id(&callback));
                for (queue, id, payload) in &jobs {
                    batch.add(NewJob::new(plan.job_type, payload)?.queue(queue).id(id))?;
                }
                Ok(batch)
            };
            if create(&mut made, give_up_at, || async {
                producer.enqueue_batch(build()?).await.map(|_| ())
            })
            .await
            {
                for (queue, id, _) in &jobs {
                    made.jobs.push(enqueued(queue, id));
                }
                made.jobs.push(enqueued("default", &callback));
                made.batches.push((
                    "default".to_owned(),
                    name.clone(),
                    job_key("default", &callback),
                    jobs.iter().map(|(q, id, _)| job_key(q, id)).collect(),
                ));
            }
        }
    }
    made
}

fn enqueued(queue: &'static str, id: &str) -> Enqueued {
    Enqueued {
        id: id.to_owned(),
        queue,
        group: None,
        at_ms: super::ledger::now_ms(),
    }
}

/// Creates a flow or batch, trying again while Redis is away. A try whose reply was lost
/// after it wrote answers "exists" the next time: created all the same (a flow or batch
/// is written whole or not at all).
async fn create<F, Fut>(made: &mut Made, give_up_at: Instant, mut attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProducerError>>,
{
    loop {
        match attempt().await {
            Ok(()) => return true,
            Err(ProducerError::Invalid(why))
                if why.contains("exists already") || why.contains("is taken") =>
            {
                return true;
            }
            Err(e) if Instant::now() < give_up_at => {
                tracing::debug!("creating a flow or batch failed, trying again: {e}");
                made.retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                tracing::warn!("creating a flow or batch failed, giving up on it: {e}");
                made.abandoned += 1;
                return false;
            }
        }
    }
}

/// The flows' and batches' verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkflowCheck {
    pub flows: usize,
    pub batches: usize,
    /// Edges whose child began before its parent had finished.
    pub early_starts: usize,
    pub early_ids: Vec<String>,
    /// Callbacks that began before their batch's last job had finished.
    pub callbacks_early: usize,
    /// Batches whose `complete` callback fired (once: it has one id, and the hash says so).
    pub callbacks_fired: usize,
    /// Jobs left waiting for their parents or callbacks unfired, over every queue.
    pub waiting_left: u64,
}

impl WorkflowCheck {
    pub fn held(&self) -> bool {
        self.early_starts == 0
            && self.callbacks_early == 0
            && self.callbacks_fired == self.batches
            && self.waiting_left == 0
    }
}

/// Reads what Redis says of the batches and of waiting jobs, once the fleet settled.
pub async fn read_state(
    conn: &mut SharedConnection,
    keys: &Keys,
    made: &Made,
) -> anyhow::Result<(usize, u64)> {
    let mut fired = 0;
    for (queue, id, _, _) in &made.batches {
        if let Some(state) = batch_state(conn, keys, queue, id).await?
            && state
                .callbacks
                .iter()
                .any(|cb| cb.kind == "complete" && cb.decided.as_deref() == Some("fired"))
        {
            fired += 1;
        }
    }
    let mut waiting = 0;
    for queue in QUEUES {
        waiting += flotilla_proto::dependencies::waiting_count(conn, keys, queue).await?;
    }
    Ok((fired, waiting))
}

/// The order check: from the ledger, each child's first start against its parents'
/// first finish (a dead parent's edges are skipped: its children run anyway), and each
/// callback's first start against its batch's jobs' first finishes.
pub fn check(
    made: &Made,
    ledger: &[Execution],
    dead: &HashMap<String, String>,
    fired: usize,
    waiting_left: u64,
) -> WorkflowCheck {
    let mut first_began: HashMap<&str, i64> = HashMap::new();
    let mut first_finished: HashMap<&str, i64> = HashMap::new();
    for e in ledger {
        let slot = match e.mark {
            Mark::Began => &mut first_began,
            Mark::Finished => &mut first_finished,
            Mark::Stopped => continue,
        };
        let at = slot.entry(e.job.as_str()).or_insert(e.at_ms);
        *at = (*at).min(e.at_ms);
    }
    let mut check = WorkflowCheck {
        flows: made.flows,
        batches: made.batches.len(),
        callbacks_fired: fired,
        waiting_left,
        ..WorkflowCheck::default()
    };
    let early =
        |parent: &str, child: &str| match (first_began.get(child), first_finished.get(parent)) {
            (Some(began), Some(finished)) => began < finished,
            // A child that ran while its parent never finished ran too early.
            (Some(_), None) => true,
            (None, _) => false,
        };
    for (parent, child) in &made.edges {
        if dead.contains_key(parent) {
            continue;
        }
        if early(parent, child) {
            check.early_starts += 1;
            if check.early_ids.len() < 20 {
                check.early_ids.push(format!("{child} before {parent}"));
            }
        }
    }
    for (_, _, callback, members) in &made.batches {
        if members
            .iter()
            .any(|m| !dead.contains_key(m) && early(m, callback))
        {
            check.callbacks_early += 1;
        }
    }
    check
}
