//! Waiting for jobs to end: where a queue's `done` and dead-letter streams stand, and a
//! blocking read of what ends after that, so a waiter wakes when a job ends rather than
//! polling its state.

use redis::aio::ConnectionLike;

use crate::{Keys, field, read_reply_completions};

/// Where a queue's completions and deaths stand: the last entry id of each stream
/// (`0-0` while it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endings {
    /// The last entry id of the queue's `done` stream (completions).
    pub done: String,
    /// The last entry id of the queue's dead-letter stream.
    pub dead: String,
}

/// The most entries one blocking read takes from each stream.
const READ_COUNT: usize = 1000;

/// Where `queue`'s completions and deaths stand now, in one round trip.
pub async fn last_endings<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<Endings> {
    let (done, dead): (redis::Value, redis::Value) = redis::pipe()
        .cmd("XREVRANGE")
        .arg(keys.done(queue))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .cmd("XREVRANGE")
        .arg(keys.dead(queue))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    let last = |reply| {
        crate::range_entries(reply)
            .pop()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.entry_id)
    };
    Ok(Endings {
        done: last(done),
        dead: last(dead),
    })
}

/// Waits up to `block_ms` for jobs of `queue` to end after `since` (on a connection of
/// its own: see [`crate::SharedConnection::dedicated`]). Answers where the streams stand
/// after what was read, and the ids of the jobs that ended (their `id` fields), in order.
pub async fn read_endings<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    since: &Endings,
    block_ms: u64,
) -> redis::RedisResult<(Endings, Vec<String>)> {
    let (done_key, dead_key) = (keys.done(queue), keys.dead(queue));
    let reply: redis::Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(READ_COUNT)
        .arg("BLOCK")
        .arg(block_ms.max(1))
        .arg("STREAMS")
        .arg(&done_key)
        .arg(&dead_key)
        .arg(&since.done)
        .arg(&since.dead)
        .query_async(conn)
        .await?;
    let mut after = since.clone();
    let mut ended = Vec::new();
    for (stream, entries) in read_reply_completions(reply) {
        let Some(last) = entries.last() else {
            continue;
        };
        if stream == done_key {
            after.done = last.entry_id.clone();
        } else if stream == dead_key {
            after.dead = last.entry_id.clone();
        }
        ended.extend(entries.iter().filter_map(|entry| {
            entry
                .fields
                .get(field::ID)
                .and_then(|id| String::from_utf8(id.clone()).ok())
        }));
    }
    Ok((after, ended))
}
