//! Whether a worker is alive, decided one way for every process that asks: a worker about
//! to reclaim entries, reconciliation, the metrics sampler, the operator's tools and the
//! producer's "no worker serves this queue" hint. A worker is alive while its last
//! heartbeat, on the server's clock, is no older than the lease it announced with it
//! (`lease_ms` in its hash, which expires two leases after its last heartbeat): a worker
//! whose hash is gone stopped long ago.

use std::collections::{HashMap, HashSet};

use redis::aio::ConnectionLike;

use crate::{Keys, server_time_ms, worker_field};

/// The lease of a worker whose hash names none (written by a worker older than the
/// field): the worker's default `lease_ttl`.
pub const DEFAULT_LEASE_MS: i64 = 30_000;

/// Whether a worker that last beat at `beat_ms` under a lease of `lease_ms` (None: the
/// default) is alive at `now_ms`, all on the server's clock.
pub fn is_live(beat_ms: i64, lease_ms: Option<i64>, now_ms: i64) -> bool {
    now_ms.saturating_sub(beat_ms) <= lease_ms.unwrap_or(DEFAULT_LEASE_MS)
}

/// One registered worker, as its heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBeat {
    /// Its instance id, as the registry names it.
    pub id: String,
    /// Its last heartbeat, ms on the server's clock.
    pub beat_ms: i64,
    /// The fields of its hash; empty when the hash is gone.
    pub info: HashMap<String, String>,
    /// Whether it is alive by the rule above.
    pub live: bool,
}

impl WorkerBeat {
    /// The queues it serves, as its hash lists them.
    pub fn queues(&self) -> impl Iterator<Item = &str> {
        self.info
            .get(worker_field::QUEUES)
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .filter(|q| !q.is_empty())
    }

    /// Its lease, as its hash announces it.
    pub fn lease_ms(&self) -> Option<i64> {
        self.info
            .get(worker_field::LEASE_MS)
            .and_then(|v| v.parse().ok())
    }
}

/// Every registered worker with its heartbeat and hash, judged at the server's time,
/// which is returned too: one TIME, one ZRANGE and one pipeline of HGETALLs.
pub async fn worker_beats<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<(i64, Vec<WorkerBeat>)> {
    let now = server_time_ms(conn).await?;
    let beats: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(keys.workers())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let infos = hashes_of(conn, keys, beats.iter().map(|(id, _)| id.as_str())).await?;
    let workers = beats
        .into_iter()
        .zip(infos)
        .map(|((id, beat), info)| judged(id, beat as i64, info, now))
        .collect();
    Ok((now, workers))
}

/// The ids among `workers` that are alive: one TIME, one ZMSCORE and one pipeline of
/// HMGETs of the two fields the rule reads (a worker reads no more of its peers).
pub async fn live_among<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    workers: &[String],
) -> redis::RedisResult<HashSet<String>> {
    if workers.is_empty() {
        return Ok(HashSet::new());
    }
    let now = server_time_ms(conn).await?;
    let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
        .arg(keys.workers())
        .arg(workers)
        .query_async(conn)
        .await?;
    let mut pipe = redis::pipe();
    for id in workers {
        pipe.cmd("HMGET")
            .arg(keys.worker(id))
            .arg(worker_field::HEARTBEAT_AT)
            .arg(worker_field::LEASE_MS);
    }
    let fields: Vec<(Option<String>, Option<String>)> = pipe.query_async(conn).await?;
    let infos = fields.into_iter().map(|(beat_at, lease)| {
        // Every heartbeat writes `heartbeat_at`: without it, the hash is gone.
        let mut info = HashMap::new();
        if let Some(beat_at) = beat_at {
            info.insert(worker_field::HEARTBEAT_AT.to_owned(), beat_at);
        }
        if let Some(lease) = lease {
            info.insert(worker_field::LEASE_MS.to_owned(), lease);
        }
        info
    });
    Ok(workers
        .iter()
        .zip(scores)
        .zip(infos)
        .filter_map(|((id, score), info)| {
            let beat = score? as i64;
            judged(id.clone(), beat, info, now).live.then(|| id.clone())
        })
        .collect())
}

/// The hashes of `workers`, in order (empty for one that is gone).
async fn hashes_of<'a, C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    workers: impl Iterator<Item = &'a str>,
) -> redis::RedisResult<Vec<HashMap<String, String>>> {
    let mut pipe = redis::pipe();
    let mut any = false;
    for id in workers {
        pipe.cmd("HGETALL").arg(keys.worker(id));
        any = true;
    }
    if !any {
        return Ok(Vec::new());
    }
    pipe.query_async(conn).await
}

/// A worker judged by the rule: a hash gone means a worker gone.
fn judged(id: String, beat_ms: i64, info: HashMap<String, String>, now: i64) -> WorkerBeat {
    let lease = info
        .get(worker_field::LEASE_MS)
        .and_then(|v| v.parse().ok());
    let live = !info.is_empty() && is_live(beat_ms, lease, now);
    WorkerBeat {
        id,
        beat_ms,
        info,
        live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_lives_as_long_as_its_own_lease() {
        assert!(is_live(1_000, Some(5_000), 6_000));
        assert!(!is_live(1_000, Some(5_000), 6_001));
        assert!(is_live(1_000, None, 31_000), "the default lease");
        assert!(!is_live(1_000, None, 31_001));
        // A beat ahead of the reader's view of the server's clock is alive.
        assert!(is_live(10_000, Some(1), 9_000));
    }

    #[test]
    fn a_worker_whose_hash_is_gone_is_gone() {
        let gone = judged("w".into(), 1_000, HashMap::new(), 1_001);
        assert!(!gone.live);
        let info = HashMap::from([(worker_field::LEASE_MS.to_owned(), "500".to_owned())]);
        let alive = judged("w".into(), 1_000, info.clone(), 1_500);
        assert!(alive.live);
        assert!(!judged("w".into(), 1_000, info, 1_501).live);
    }
}
