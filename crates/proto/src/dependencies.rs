//! Reading what jobs wait for (protocol 2.19): a job's parents and how each ended, with
//! their results, from its `deps` hash; and the jobs of a queue that wait.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::Keys;

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

/// What a job waits (or waited) for.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Dependencies {
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
    Ok(Some(Dependencies {
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
