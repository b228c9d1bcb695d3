//! Reading what jobs wait for (protocol 2.19): a job's parents and how each ended, with
//! their results, from its `deps` hash; the jobs of a queue that wait; and a batch's
//! counts and callbacks.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::Keys;
use crate::scripts::{BatchCounts, CallbackKind};

/// How one parent of a job stands, as the job's `deps` hash says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParentState {
    /// The parent's queue (or partition).
    pub queue: String,
    /// The parent's id.
    pub id: String,
    /// How it ended (`completed`, `dead`, `cancelled`, `expired`, `deleted`), or `None`
    /// while it has not.
    pub outcome: Option<String>,
    /// Its result (JSON text) when it completed with one.
    pub result: Option<String>,
    /// It ended without completing and the job waits, blocked, for an operator's retry of
    /// it (a `wait` edge).
    pub blocked: bool,
}

/// An edge between two jobs: the other job, and what the waiting one does if its
/// parent ends without completing (`cancel`, `run`, `wait`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// `cancel`, `run` or `wait` (`batch` for a job's edge to its batch).
    pub policy: String,
    /// The other job's queue (or partition; the batch's queue for a batch).
    pub queue: String,
    /// The other job's id (the batch's id for a batch).
    pub id: String,
}

impl Edge {
    /// Reads `<policy> <queue> <id>`.
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        Some(Self {
            policy: parts.next()?.to_owned(),
            queue: parts.next()?.to_owned(),
            id: parts.next()?.to_owned(),
        })
    }
}

/// What a job waits (or waited) for.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Dependencies {
    /// Every parent it was created with, and each edge's policy.
    pub edges_in: Vec<Edge>,
    /// The flow it was created in (`<queue> <flow id>`), if it was named.
    pub flow: Option<String>,
    /// Its parents that ended, and those blocking it, by queue and id.
    pub parents: Vec<ParentState>,
    /// How many parents it has.
    pub edges: u64,
    /// How many it still waits for; `None` once it was let go.
    pub left: Option<u64>,
    /// When it was let go (ms), once it was.
    pub released_at_ms: Option<i64>,
}

impl Dependencies {
    /// The result of the parent `id` (of any queue) as JSON, when it completed with one.
    pub fn result_of(&self, id: &str) -> Option<serde_json::Value> {
        self.parents
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.result.as_deref())
            .and_then(|text| serde_json::from_str(text).ok())
    }
}

/// What job `id` of `queue` waits or waited for; `None` when it never had parents, or
/// its `deps` hash is gone (a week after it was let go).
pub async fn dependencies<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> redis::RedisResult<Option<Dependencies>> {
    let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(keys.deps(queue, id))
        .query_async(conn)
        .await?;
    if fields.is_empty() {
        return Ok(None);
    }
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let number = |name: &str| text(name).and_then(|t| t.parse::<i64>().ok());
    let mut parents: HashMap<String, ParentState> = HashMap::new();
    for (name, value) in &fields {
        let Some((kind, reference)) = name.split_once(':') else {
            continue;
        };
        let Some((parent_queue, parent_id)) = reference.split_once(' ') else {
            continue;
        };
        let parent = parents
            .entry(reference.to_owned())
            .or_insert_with(|| ParentState {
                queue: parent_queue.to_owned(),
                id: parent_id.to_owned(),
                outcome: None,
                result: None,
                blocked: false,
            });
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            "o" => parent.outcome = Some(value),
            "r" => parent.result = Some(value),
            "b" => {
                parent.blocked = true;
                parent.outcome.get_or_insert(value);
            }
            _ => {}
        }
    }
    let mut parents: Vec<ParentState> = parents.into_values().collect();
    parents.sort_by(|a, b| (&a.queue, &a.id).cmp(&(&b.queue, &b.id)));
    let edges_in = text("parents")
        .map(|lines| lines.lines().filter_map(Edge::parse).collect())
        .unwrap_or_default();
    Ok(Some(Dependencies {
        edges_in,
        flow: text("flow"),
        parents,
        edges: number("edges").map_or(0, |n| n.max(0) as u64),
        left: number("left").map(|n| n.max(0) as u64),
        released_at_ms: number("released_at"),
    }))
}

/// The type of each of `ids` (jobs of `queue` waiting for their parents), `None` for one
/// no longer waiting; one pipeline.
pub async fn waiting_types<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    ids: &[String],
) -> redis::RedisResult<Vec<Option<String>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET")
            .arg(keys.deps(queue, id))
            .arg("type")
            .arg("left");
    }
    let replies: Vec<(Option<String>, Option<String>)> = pipe.query_async(conn).await?;
    Ok(replies
        .into_iter()
        .map(|(job_type, left)| left.and(job_type))
        .collect())
}

/// How many jobs of `queue` wait for their parents.
pub async fn waiting_count<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u64> {
    redis::cmd("ZCARD")
        .arg(keys.waiting(queue))
        .query_async(conn)
        .await
}

/// One callback of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchCallback {
    /// When it runs: `success`, `complete` or `death`.
    pub kind: String,
    /// Its job's queue.
    pub queue: String,
    /// Its job's id.
    pub id: String,
    /// `fired` (enqueued), `dropped` (cancelled: its condition can no longer hold), or
    /// `None` while it waits.
    pub decided: Option<String>,
}

/// A batch as its hash says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchState {
    /// Its queue.
    pub queue: String,
    /// Its id.
    pub id: String,
    /// Its jobs' counts, and whether it is sealed.
    #[serde(flatten)]
    pub counts: BatchCounts,
    /// When it was opened (ms).
    pub created_at_ms: Option<i64>,
    /// When its last job ended after it was sealed (ms).
    pub finished_at_ms: Option<i64>,
    /// Its callbacks.
    pub callbacks: Vec<BatchCallback>,
    /// Its dead jobs (`<queue> <id>`), which an operator's retry may still complete.
    pub dead_jobs: Vec<String>,
}

/// Batch `id` of `queue`, or `None` when there is none (never opened, or forgotten a
/// week after it finished).
pub async fn batch_state<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> redis::RedisResult<Option<BatchState>> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.batch(queue, id))
        .query_async(conn)
        .await?;
    if fields.is_empty() {
        return Ok(None);
    }
    let count = |name: &str| {
        fields
            .get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(0, |n| n.max(0) as u64)
    };
    let time = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok());
    let callbacks = [
        CallbackKind::Success,
        CallbackKind::Complete,
        CallbackKind::Death,
    ]
    .into_iter()
    .filter_map(|kind| {
        let (queue, id) = fields.get(&format!("cb:{kind}"))?.split_once(' ')?;
        Some(BatchCallback {
            kind: kind.as_str().to_owned(),
            queue: queue.to_owned(),
            id: id.to_owned(),
            decided: fields.get(&format!("done:{kind}")).cloned(),
        })
    })
    .collect();
    let mut dead_jobs: Vec<String> = fields
        .keys()
        .filter_map(|name| name.strip_prefix("m:").map(str::to_owned))
        .collect();
    dead_jobs.sort();
    Ok(Some(BatchState {
        queue: queue.to_owned(),
        id: id.to_owned(),
        counts: BatchCounts {
            total: count("total"),
            pending: count("pending"),
            completed: count("completed"),
            dead: count("dead"),
            ended: count("ended"),
            sealed: fields.get("sealed").map(String::as_str) == Some("1"),
        },
        created_at_ms: time("created_at"),
        finished_at_ms: time("finished_at"),
        callbacks,
        dead_jobs,
    }))
}

/// The edges from job `id` of `queue` to the jobs (and batches) that wait for it; empty
/// once it ended and told them (a `wait` edge stays while it is dead).
pub async fn edges_out<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> redis::RedisResult<Vec<Edge>> {
    let edges: Vec<String> = redis::cmd("LRANGE")
        .arg(keys.hook(queue, id))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    Ok(edges.iter().filter_map(|e| Edge::parse(e)).collect())
}

/// The jobs of flow `id`, listed in `queue` (its first job's), as `(queue, id)`, at most
/// `max` of them, with how many it holds; `None` when no such flow is listed there (never
/// created, or forgotten a week after).
pub async fn flow_jobs<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    id: &str,
    max: usize,
) -> redis::RedisResult<Option<(Vec<(String, String)>, u64)>> {
    let key = keys.flow(queue, id);
    let (members, total): (Vec<String>, u64) = redis::pipe()
        .cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(max.saturating_sub(1))
        .cmd("LLEN")
        .arg(&key)
        .query_async(conn)
        .await?;
    if total == 0 {
        return Ok(None);
    }
    let members = members
        .iter()
        .filter_map(|m| m.split_once(' '))
        .map(|(q, i)| (q.to_owned(), i.to_owned()))
        .collect();
    Ok(Some((members, total)))
}

/// Which of `queues` hold flow `id` (`flows`: `true`) or batch `id` (`false`).
pub async fn queues_holding<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queues: &[String],
    id: &str,
    flows: bool,
) -> redis::RedisResult<Vec<String>> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for queue in queues {
        let key = if flows {
            keys.flow(queue, id)
        } else {
            keys.batch(queue, id)
        };
        pipe.cmd("EXISTS").arg(key);
    }
    let found: Vec<u64> = pipe.query_async(conn).await?;
    Ok(queues
        .iter()
        .zip(found)
        .filter(|(_, n)| *n > 0)
        .map(|(q, _)| q.clone())
        .collect())
}

/// Up to `max` ids of jobs of `queue` waiting for their parents since before `before_ms`,
/// oldest first.
pub async fn waiting_before<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    before_ms: i64,
    max: usize,
) -> redis::RedisResult<Vec<String>> {
    redis::cmd("ZRANGEBYSCORE")
        .arg(keys.waiting(queue))
        .arg("-inf")
        .arg(format!("({before_ms}"))
        .arg("LIMIT")
        .arg(0)
        .arg(max)
        .query_async(conn)
        .await
}
