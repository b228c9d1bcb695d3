//! Reads what Redis says once the fleet has settled: every completion, every dead
//! letter, what is left on the streams, stale consumers, and a full reconciliation.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use flotilla_proto::SharedConnection;
use flotilla_proto::{Keys, browse, entry_id_ms, instance_pid};
use flotilla_scheduler::{ReconcileConfig, Reconciler};

use super::ledger::job_key;
use super::produce::QUEUES;
use super::verdict::{Completion, Leftovers};

/// Entries read per XRANGE call.
const PAGE: usize = 5000;

/// Every completion of a `done` stream (several may share an entry) or every dead letter,
/// page by page, as (entry id, fields).
async fn read_stream(
    conn: &mut SharedConnection,
    key: &str,
) -> anyhow::Result<Vec<(String, HashMap<String, String>)>> {
    let mut entries = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let (page, len) = browse::completions_range(conn, key, &start, "+", PAGE, false).await?;
        for entry in page {
            let fields = entry.text_fields();
            start = format!("({}", entry.entry_id);
            entries.push((entry.entry_id, fields));
        }
        if len < PAGE {
            return Ok(entries);
        }
    }
}

/// `<queue>/<id>` → the job's completions in the `done` streams.
pub async fn completions(
    conn: &mut SharedConnection,
    keys: &Keys,
) -> anyhow::Result<HashMap<String, Vec<Completion>>> {
    let mut completions: HashMap<String, Vec<Completion>> = HashMap::new();
    for queue in QUEUES {
        for (entry_id, fields) in read_stream(conn, &keys.done(queue)).await? {
            let Some(id) = fields.get("id") else { continue };
            completions
                .entry(job_key(queue, id))
                .or_default()
                .push(Completion {
                    // Left out when it took one (protocol 2.11).
                    attempts: fields
                        .get("attempts")
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(1),
                    pid: fields.get("worker").and_then(|w| instance_pid(w)),
                    at_ms: entry_id_ms(&entry_id).unwrap_or_default(),
                });
        }
    }
    Ok(completions)
}

/// `<queue>/<id>` of each dead job → the reason it was dead-lettered.
pub async fn dead_letters(
    conn: &mut SharedConnection,
    keys: &Keys,
) -> anyhow::Result<HashMap<String, String>> {
    let mut dead = HashMap::new();
    for queue in QUEUES {
        for (_, fields) in read_stream(conn, &keys.dead(queue)).await? {
            if let Some(id) = fields.get("id") {
                let reason = fields.get("error").cloned().unwrap_or_default();
                dead.insert(job_key(queue, id), reason);
            }
        }
    }
    Ok(dead)
}

/// What is left on the streams and delayed sets, and consumers without a live worker (by
/// the one liveness rule, `flotilla_proto::is_live`).
pub async fn leftovers(conn: &mut SharedConnection, keys: &Keys) -> anyhow::Result<Leftovers> {
    let mut left = Leftovers::default();
    let (_, workers) = flotilla_proto::worker_beats(conn, keys).await?;
    let live: HashSet<String> = workers
        .into_iter()
        .filter(|w| w.live)
        .map(|w| w.id)
        .collect();
    for queue in QUEUES {
        let (length, waiting) = flotilla_proto::queue_depth(conn, keys, queue).await?;
        left.on_streams += length;
        left.scheduled += waiting;
        // No stream or no group yet: nothing was ever read from this queue.
        let consumers = flotilla_proto::consume::group_consumers(conn, keys, queue)
            .await
            .unwrap_or_default();
        for consumer in consumers {
            left.running += consumer.pending;
            if !live.contains(&consumer.name) {
                left.stale_consumers
                    .push(format!("{queue}/{}", consumer.name));
            }
        }
        left.slots_held += flotilla_proto::flow::slots_held(conn, keys, queue).await?;
    }
    Ok(left)
}

/// What Redis holds once the fleet has settled.
#[derive(Debug)]
pub struct Settled {
    pub leftovers: Leftovers,
    pub completions: HashMap<String, Vec<Completion>>,
    pub dead: HashMap<String, String>,
}

/// Waits until every job in `expected` has completed or died, nothing is left to run,
/// every stale consumer has been forgotten (the leader repairs those) and a full
/// reconciliation finds nothing open, or until `deadline`; returns what Redis holds then.
pub async fn settle(
    conn: &mut SharedConnection,
    keys: &Keys,
    worker_timeout: Duration,
    expected: &[String],
    deadline: Instant,
) -> anyhow::Result<Settled> {
    loop {
        // Redis may still be loading after a crash: keep asking until the deadline.
        match read_settled(conn, keys).await {
            Ok(mut settled) => {
                let left = &settled.leftovers;
                let quiet = left.on_streams == 0
                    && left.running == 0
                    && left.slots_held == 0
                    && left.scheduled == 0
                    && left.stale_consumers.is_empty();
                let all_ended = expected.iter().all(|key| {
                    settled.completions.contains_key(key) || settled.dead.contains_key(key)
                });
                let over = Instant::now() >= deadline;
                if (quiet && all_ended) || over {
                    settled.leftovers.reconcile_open =
                        reconcile_open(conn, keys, worker_timeout).await?;
                    if settled.leftovers.reconcile_open.is_empty() || over {
                        return Ok(settled);
                    }
                }
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn read_settled(conn: &mut SharedConnection, keys: &Keys) -> anyhow::Result<Settled> {
    Ok(Settled {
        leftovers: leftovers(conn, keys).await?,
        completions: completions(conn, keys).await?,
        dead: dead_letters(conn, keys).await?,
    })
}

/// The open findings of one full reconciliation pass, without repairs.
async fn reconcile_open(
    conn: &SharedConnection,
    keys: &Keys,
    worker_timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let config = ReconcileConfig {
        worker_timeout,
        ..ReconcileConfig::default()
    };
    let mut reconciler = Reconciler::new(conn.clone(), keys.clone(), config);
    let report = reconciler.run(false, true).await?;
    Ok(report
        .findings
        .iter()
        .filter(|f| f.open)
        .map(|f| format!("{} {}: {}", f.kind.as_str(), f.subject, f.detail))
        .collect())
}
