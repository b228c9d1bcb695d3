//! Reading work from Redis: ready entries in priority order, a blocking wait when every
//! queue is empty, reclaim of entries whose owner stopped beating, promotion of due
//! delayed jobs, and consumer-group set-up.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::SharedConnection;
use flotilla_proto::consume::{self, QueuedEntry};
use flotilla_proto::scripts::{self, Promote, ScriptError};
use flotilla_proto::{Keys, StreamEntry};

use crate::fetch::connections::{HeldConnection, HeldConnectionError};
use crate::flow::holds::Slot;

/// An entry and the queue it came from.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub queue: String,
    pub entry: StreamEntry,
    /// How many times the entry has been delivered, this delivery included: 1 for a
    /// fresh read, more for an entry reclaimed from a worker that stopped.
    pub delivery: u32,
    /// For an entry carrying a job with an id of its own, what claiming the id decided.
    pub id_claim: IdClaim,
    /// Its slot of its queue's concurrency cap, once admitted (see `flow`).
    pub slot: Option<Arc<Slot>>,
}

/// What claiming an entry's own job id decided (see `claim.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum IdClaim {
    /// The entry carries no id of its own to claim.
    #[default]
    None,
    /// The entry holds the id: it runs on the fast path.
    Run,
    /// The id has a record, which leads: the entry starts through it.
    WithRecord,
}

/// `items` grouped by the queue each names, queues in the order first met, items in
/// their order: one script call per queue takes each group.
pub(crate) fn by_queue<T>(
    items: impl IntoIterator<Item = T>,
    queue_of: impl Fn(&T) -> &str,
) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for item in items {
        match groups.iter_mut().find(|(q, _)| q == queue_of(&item)) {
            Some((_, group)) => group.push(item),
            None => groups.push((queue_of(&item).to_owned(), vec![item])),
        }
    }
    groups
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no connection for blocking reads: {0}")]
    Pool(String),
    #[error(transparent)]
    Script(#[from] ScriptError),
}

impl FetchError {
    /// The consumer group is gone (Redis restarted empty, or the stream was deleted).
    pub(crate) fn is_no_group(&self) -> bool {
        matches!(self, FetchError::Redis(e) if e.code() == Some("NOGROUP"))
    }
}

/// Fresh reads: delivered once, nothing claimed yet.
fn fresh(entries: Vec<QueuedEntry>) -> Vec<Fetched> {
    entries
        .into_iter()
        .map(|QueuedEntry { queue, entry }| Fetched {
            queue,
            entry,
            delivery: 1,
            id_claim: IdClaim::None,
            slot: None,
        })
        .collect()
}

/// Takes new entries from the first queue in `order` that has any, up to `size` of it
/// (what a flow limit lets a read of it take).
pub(crate) async fn read_ready(
    conn: &mut SharedConnection,
    keys: &Keys,
    order: &[&str],
    consumer: &str,
    size: impl Fn(&str) -> usize,
) -> Result<Vec<Fetched>, FetchError> {
    for queue in order {
        let fetched = consume::read_new(conn, keys, queue, consumer, size(queue)).await?;
        if !fetched.is_empty() {
            return Ok(fresh(fetched));
        }
    }
    Ok(Vec::new())
}

/// Takes up to `count` new entries from each of `queues`, waiting up to `block_ms` for
/// the first when there is none, on the dedicated connection. Several queues are read
/// this way only once each was found empty, with a `count` of 1, so that priority
/// holds; one queue is read this way straight away, since a blocking read returns at
/// once what is there.
pub(crate) async fn read_blocking(
    conn: &mut HeldConnection,
    keys: &Keys,
    queues: &[&str],
    consumer: &str,
    count: usize,
    block_ms: u64,
) -> Result<Vec<Fetched>, FetchError> {
    let cmd = consume::read_new_blocking(keys, queues, consumer, count, block_ms);
    let reply = conn.query(&cmd).await.map_err(|e| match e {
        HeldConnectionError::Checkout(why) => FetchError::Pool(why),
        HeldConnectionError::Redis(e) => FetchError::Redis(e),
    })?;
    Ok(fresh(consume::queued_entries(reply, keys, queues)))
}

/// What a reclaim pass found.
#[derive(Debug, Default)]
pub(crate) struct Reclaimed {
    pub entries: Vec<Fetched>,
    /// Entries whose stream data was deleted while pending: lost jobs (rule 4).
    pub lost: Vec<String>,
}

/// Claims entries of `queue` left idle past `lease_ms` by consumers that stopped
/// beating (or by this worker, for entries it fetched but never started). Live owners
/// refresh their entries every heartbeat, so their entries are never this idle.
pub(crate) async fn reclaim(
    conn: &mut SharedConnection,
    keys: &Keys,
    queue: &str,
    consumer: &str,
    lease_ms: u64,
    count: usize,
) -> Result<Reclaimed, FetchError> {
    if !has_stale_owner(conn, keys, queue, consumer).await? {
        return Ok(Reclaimed::default());
    }
    let taken = consume::reclaim_idle(conn, keys, queue, consumer, lease_ms, count).await?;
    let ids: Vec<&str> = taken.entries.iter().map(|e| e.entry_id.as_str()).collect();
    let counts = consume::delivery_counts(conn, keys, queue, consumer, &ids).await?;
    let entries = taken
        .entries
        .into_iter()
        .map(|entry| {
            // An entry missing from the counts was taken by another reclaimer meanwhile;
            // a count of 0 makes every later write of its attempt refused.
            let count = counts.get(&entry.entry_id).copied().unwrap_or(0);
            Fetched {
                queue: queue.to_owned(),
                entry,
                delivery: u32::try_from(count).unwrap_or(u32::MAX),
                id_claim: IdClaim::None,
                slot: None,
            }
        })
        .collect();
    Ok(Reclaimed {
        entries,
        lost: taken.deleted,
    })
}

/// True when some consumer with pending entries of `queue` is not alive by the one
/// liveness rule (`flotilla_proto::is_live`: its heartbeat within its own lease), or is
/// this worker itself (an entry it fetched but failed to start).
async fn has_stale_owner(
    conn: &mut SharedConnection,
    keys: &Keys,
    queue: &str,
    me: &str,
) -> Result<bool, FetchError> {
    let owners = consume::pending_owners(conn, keys, queue).await?;
    if owners.is_empty() {
        return Ok(false);
    }
    if owners.iter().any(|o| o == me) {
        return Ok(true);
    }
    let live = flotilla_proto::live_among(conn, keys, &owners).await?;
    Ok(owners.iter().any(|owner| !live.contains(owner)))
}

/// Moves due delayed jobs onto their streams. Returns how many moved, and how long until
/// the next job left waiting in any of `queues` is due, if one is.
pub(crate) async fn promote(
    conn: &mut SharedConnection,
    keys: &Keys,
    queues: &[&str],
    batch: usize,
    interval: Duration,
) -> Result<(u64, Option<Duration>), FetchError> {
    let calls: Vec<Promote> = queues
        .iter()
        .map(|queue| Promote {
            queue,
            limit: batch,
            recheck: interval,
        })
        .collect();
    let (mut moved, mut next_due) = (0, None::<Duration>);
    for reply in scripts::run_all(conn, keys, &calls).await? {
        let reply = reply?;
        moved += reply.moved;
        next_due = match (next_due, reply.next_due_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok((moved, next_due))
}

/// Creates each queue's stream and consumer group if missing, and lists the queue.
pub(crate) async fn ensure_groups(
    conn: &mut SharedConnection,
    keys: &Keys,
    queues: &[&str],
) -> Result<(), FetchError> {
    Ok(consume::ensure_groups(conn, keys, queues).await?)
}

/// The paused queues.
pub(crate) async fn paused(
    conn: &mut SharedConnection,
    keys: &Keys,
) -> Result<HashSet<String>, FetchError> {
    Ok(consume::paused_queues(conn, keys).await?)
}

/// Records lost entry ids where the scheduler's alerting finds them.
pub(crate) async fn report_lost(
    conn: &mut SharedConnection,
    keys: &Keys,
    queue: &str,
    entry_ids: &[String],
) -> Result<(), FetchError> {
    let _: String = flotilla_proto::record_lost(keys, queue, entry_ids)
        .query_async(conn)
        .await?;
    Ok(())
}
