//! A job's full id: the one string that names it in a namespace, whatever queue or
//! partition holds it.
//!
//! A job with an id of its own is named by that id. A job without one is named by its
//! entry id, which is unique within its stream only (two queues, or two partitions of
//! one, hand out the same entry ids), so its full id carries the queue:
//! `<queue>:<entry id>`. An own id can take neither form ([`crate::check_job_id`]), so a
//! full id says by its form where the job is: an exact look-up needs no search.

use redis::aio::ConnectionLike;

use crate::{Keys, is_entry_id};

/// The full id of job `id` of `queue`: `<queue>:<id>` when `id` is an entry id, else `id`.
pub fn full_id(queue: &str, id: &str) -> String {
    if is_entry_id(id) {
        format!("{queue}:{id}")
    } else {
        id.to_owned()
    }
}

/// A job id as someone gave it, read: where it says the job is, and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobName<'a> {
    /// The queue a full id names (`<queue>:<entry id>`); `None` for an own id or a bare
    /// entry id, which say nothing of their queue.
    pub queue: Option<&'a str>,
    /// The id within its queue: the entry id, or the own id.
    pub id: &'a str,
}

impl<'a> JobName<'a> {
    /// Reads `given`: `<queue>:<entry id>` names that entry of that queue; anything else
    /// is an id within some queue.
    pub fn parse(given: &'a str) -> Self {
        match given.rsplit_once(':') {
            Some((queue, entry)) if !queue.is_empty() && is_entry_id(entry) => Self {
                queue: Some(queue),
                id: entry,
            },
            _ => Self {
                queue: None,
                id: given,
            },
        }
    }

    /// The id within `queue`, or `None` when `given` is a full id naming another queue.
    pub fn within(given: &'a str, queue: &str) -> Option<&'a str> {
        let name = Self::parse(given);
        match name.queue {
            Some(named) if named != queue => None,
            _ => Some(name.id),
        }
    }
}

/// Which of `queues` know job `id` (an own id): those holding its record, its id key, or
/// its completion in `done_ids`. One round trip whatever the number of queues, so a
/// look-up of an own id without its queue reads only where the job is.
pub async fn queues_knowing<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queues: &[String],
    id: &str,
) -> redis::RedisResult<Vec<String>> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for queue in queues {
        pipe.cmd("EXISTS")
            .arg(keys.job(queue, id))
            .arg(keys.id_key(queue, id))
            .cmd("ZSCORE")
            .arg(keys.done_ids(queue))
            .arg(id);
    }
    let replies: Vec<(u64, Option<f64>)> =
        pipe.query_async(conn)
            .await
            .map(|flat: Vec<redis::Value>| {
                flat.chunks(2)
                    .map(|pair| match pair {
                        [exists, score] => (
                            redis::from_redis_value_ref::<u64>(exists).unwrap_or(0),
                            redis::from_redis_value_ref::<Option<f64>>(score)
                                .ok()
                                .flatten(),
                        ),
                        _ => (0, None),
                    })
                    .collect()
            })?;
    Ok(queues
        .iter()
        .zip(replies)
        .filter(|(_, (exists, done))| *exists > 0 || done.is_some())
        .map(|(queue, _)| queue.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_named_with_their_queue_and_own_ids_as_they_are() {
        assert_eq!(full_id("mail", "1700000000000-0"), "mail:1700000000000-0");
        assert_eq!(full_id("mail#2", "1-0"), "mail#2:1-0");
        assert_eq!(full_id("mail", "order-17"), "order-17");
    }

    #[test]
    fn a_full_id_reads_back_as_its_queue_and_entry() {
        for queue in ["mail", "a:b", "mail#2", "x.y"] {
            let full = full_id(queue, "1700000000000-3");
            let name = JobName::parse(&full);
            assert_eq!(name.queue, Some(queue), "{full}");
            assert_eq!(name.id, "1700000000000-3");
        }
        for bare in ["order-17", "1700000000000-0", "order:17", ":1-0", "mail:1-"] {
            let name = JobName::parse(bare);
            assert_eq!(name.queue, None, "{bare}");
            assert_eq!(name.id, bare);
        }
    }

    #[test]
    fn a_full_id_of_another_queue_is_not_within_this_one() {
        assert_eq!(JobName::within("mail:1-0", "mail"), Some("1-0"));
        assert_eq!(JobName::within("sms:1-0", "mail"), None);
        assert_eq!(JobName::within("1-0", "mail"), Some("1-0"));
        assert_eq!(JobName::within("order-17", "mail"), Some("order-17"));
    }
}
