//! Reading work from Redis: ready entries in priority order, a blocking wait when every
//! queue is empty, reclaim of entries whose owner stopped beating, promotion of due
//! delayed jobs, and consumer-group set-up.

use std::collections::HashSet;
use std::time::Duration;

use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{self, Promote, ScriptError};
use flotilla_proto::{CONSUMER_GROUP, Keys, StreamEntry, read_reply_entries};
use redis::streams::StreamAutoClaimReply;

use crate::connections::{HeldConnection, HeldConnectionError};

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

fn flatten(reply: redis::Value, keys: &Keys, queues: &[&str]) -> Vec<Fetched> {
    read_reply_entries(reply)
        .into_iter()
        .flat_map(|(stream, entries)| {
            let queue = queues
                .iter()
                .find(|q| keys.stream(q) == stream)
                .map_or_else(String::new, |q| (*q).to_owned());
            entries.into_iter().map(move |entry| Fetched {
                queue: queue.clone(),
                entry,
                delivery: 1,
                id_claim: IdClaim::None,
            })
        })
        .collect()
}

/// Takes up to `count` new entries from the first queue in `order` that has any.
pub(crate) async fn read_ready(
    conn: &mut SharedConnection,
    keys: &Keys,
    order: &[&str],
    consumer: &str,
    count: usize,
) -> Result<Vec<Fetched>, FetchError> {
    for queue in order {
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(keys.stream(queue))
            .arg(">")
            .query_async(conn)
            .await?;
        let fetched = flatten(reply, keys, &[queue]);
        if !fetched.is_empty() {
            return Ok(fetched);
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
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS");
    for queue in queues {
        cmd.arg(keys.stream(queue));
    }
    for _ in queues {
        cmd.arg(">");
    }
    let reply = conn.query(&cmd).await.map_err(|e| match e {
        HeldConnectionError::Checkout(why) => FetchError::Pool(why),
        HeldConnectionError::Redis(e) => FetchError::Redis(e),
    })?;
    Ok(flatten(reply, keys, queues))
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
    let stream = keys.stream(queue);
    if !has_stale_owner(conn, keys, &stream, consumer).await? {
        return Ok(Reclaimed::default());
    }
    let mut found = Reclaimed::default();
    let mut cursor = "0-0".to_owned();
    loop {
        let want = count - found.entries.len();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg(lease_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(want)
            .query_async(conn)
            .await?;
        found.lost.extend(reply.deleted_ids);
        found.entries.extend(reply.claimed.iter().map(|id| Fetched {
            queue: queue.to_owned(),
            entry: StreamEntry::from_stream_id(id),
            delivery: 0,
            id_claim: IdClaim::None,
        }));
        cursor = reply.next_stream_id;
        if cursor == "0-0" || found.entries.len() >= count {
            break;
        }
    }
    delivery_counts(conn, &stream, consumer, &mut found.entries).await?;
    Ok(found)
}

/// Fills in the delivery counts of entries just claimed by `consumer`, with one XPENDING
/// over their range: a fast-path attempt is fenced by its count, and a job whose
/// deliveries have spent its attempts is a poison pill.
async fn delivery_counts(
    conn: &mut SharedConnection,
    stream: &str,
    consumer: &str,
    entries: &mut [Fetched],
) -> Result<(), FetchError> {
    let ids = entries.iter().map(|f| f.entry.entry_id.as_str());
    let (Some(low), Some(high)) = (
        ids.clone().min_by_key(|id| entry_order(id)),
        ids.max_by_key(|id| entry_order(id)),
    ) else {
        return Ok(());
    };
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(CONSUMER_GROUP)
        .arg(low)
        .arg(high)
        .arg(entries.len() + 10_000)
        .arg(consumer)
        .query_async(conn)
        .await?;
    let counts: std::collections::HashMap<String, u64> = pending
        .into_iter()
        .map(|(id, _, _, count)| (id, count))
        .collect();
    for fetched in entries {
        // An entry missing from the reply was taken by another reclaimer meanwhile; a
        // count of 0 makes every later write of its attempt refused.
        let count = counts.get(&fetched.entry.entry_id).copied().unwrap_or(0);
        fetched.delivery = u32::try_from(count).unwrap_or(u32::MAX);
    }
    Ok(())
}

/// An entry id as numbers, for ordering.
fn entry_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// True when some consumer with pending entries is not alive by the one liveness rule
/// (`flotilla_proto::is_live`: its heartbeat within its own lease), or is this worker
/// itself (an entry it fetched but failed to start).
async fn has_stale_owner(
    conn: &mut SharedConnection,
    keys: &Keys,
    stream: &str,
    me: &str,
) -> Result<bool, FetchError> {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(CONSUMER_GROUP)
        .query_async(conn)
        .await?;
    let owners = pending_owners(&summary);
    if owners.is_empty() {
        return Ok(false);
    }
    if owners.iter().any(|o| o == me) {
        return Ok(true);
    }
    let live = flotilla_proto::live_among(conn, keys, &owners).await?;
    Ok(owners.iter().any(|owner| !live.contains(owner)))
}

/// Consumer names from an `XPENDING key group` summary reply.
fn pending_owners(summary: &redis::Value) -> Vec<String> {
    let redis::Value::Array(parts) = summary else {
        return Vec::new();
    };
    let Some(redis::Value::Array(consumers)) = parts.get(3) else {
        return Vec::new();
    };
    consumers
        .iter()
        .filter_map(|c| match c {
            redis::Value::Array(pair) => pair
                .first()
                .and_then(|name| redis::from_redis_value_ref::<String>(name).ok()),
            _ => None,
        })
        .collect()
}

/// Moves due delayed jobs onto their streams. Returns how many moved, and how long until
/// the next job left waiting in any of `queues` is due, if one is.
pub(crate) async fn promote(
    conn: &mut SharedConnection,
    keys: &Keys,
    queues: &[&str],
    batch: usize,
) -> Result<(u64, Option<Duration>), FetchError> {
    let calls: Vec<Promote> = queues
        .iter()
        .map(|queue| Promote {
            queue,
            limit: batch,
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
    for queue in queues {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.stream(queue))
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _: i64 = redis::cmd("SADD")
        .arg(keys.queues())
        .arg(queues)
        .query_async(conn)
        .await?;
    Ok(())
}

/// The paused queues among `queues`.
pub(crate) async fn paused(
    conn: &mut SharedConnection,
    keys: &Keys,
) -> Result<HashSet<String>, FetchError> {
    Ok(redis::cmd("SMEMBERS")
        .arg(keys.paused())
        .query_async(conn)
        .await?)
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
