//! Partitioned queues: one queue split over several streams, `<queue>`, `<queue>#1`, …
//! `<queue>#<n-1>`, each with its own hash tag, so that one busy queue spreads over the
//! primaries of a Redis Cluster. A partition is a queue in every other respect: its own
//! stream, records, delayed set, completions and dead letters. This module says how many
//! partitions a queue has, what they are called, and which one a job goes to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;

use crate::Keys;

/// What separates a queue's name from its partition number.
pub const PARTITION_MARK: char = '#';

/// The most partitions a queue may have.
pub const MAX_PARTITIONS: u16 = 1024;

/// What a partition count must be, for error messages.
pub const PARTITIONS_RULE: &str = "a whole number from 1 to 1024";

/// The name of partition `index` of `queue`: the queue's own name for partition 0, so an
/// unpartitioned queue and its first partition are the same keys, and a producer that
/// knows nothing of partitions still feeds one that its workers read.
pub fn partition_name(queue: &str, index: u16) -> String {
    if index == 0 {
        queue.to_owned()
    } else {
        format!("{queue}{PARTITION_MARK}{index}")
    }
}

/// The names of every partition of `queue`, partition 0 first.
pub fn partition_names(queue: &str, count: u16) -> Vec<String> {
    (0..count.max(1))
        .map(|index| partition_name(queue, index))
        .collect()
}

/// The queue a partition belongs to, and its number: `("mail", 3)` for `mail#3`, and the
/// name itself with 0 for anything that is not a partition name.
pub fn split_partition(name: &str) -> (&str, u16) {
    if let Some((queue, number)) = name.rsplit_once(PARTITION_MARK)
        && !queue.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit())
        && let Ok(index) = number.parse::<u16>()
        && (1..MAX_PARTITIONS).contains(&index)
    {
        return (queue, index);
    }
    (name, 0)
}

/// The queue a partition name belongs to (the name itself when it is no partition's).
pub fn queue_of_partition(name: &str) -> &str {
    split_partition(name).0
}

/// The partition of `count` that a job with this placement key goes to: FNV-1a (32 bit)
/// of the key's bytes, modulo the count. The key is the job's unique key when it has one,
/// else its id, so that every enqueue of one unique key or id meets the same record and
/// lock. Any language can compute it; docs/PROTOCOL.md has test vectors.
pub fn partition_for(placement_key: &str, count: u16) -> u16 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = placement_key.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(PRIME)
    });
    (hash % u32::from(count.max(1))) as u16
}

/// Stream names grouped by the queue they belong to: queue → its partitions, partition
/// 0 first.
pub fn group_by_queue(names: impl IntoIterator<Item = String>) -> BTreeMap<String, Vec<String>> {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        grouped
            .entry(queue_of_partition(&name).to_owned())
            .or_default()
            .push(name);
    }
    for partitions in grouped.values_mut() {
        partitions.sort_by_key(|name| split_partition(name).1);
    }
    grouped
}

/// Checks a partition count.
pub fn check_partitions(count: u64) -> Result<u16, crate::ProtoError> {
    u16::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
        .ok_or_else(|| crate::ProtoError::BadField {
            field: "partitions",
            value: count.to_string(),
            expected: PARTITIONS_RULE,
        })
}

/// The stored partition count of each of `queues`, in their order, in one call (HMGET,
/// which a worker's ACL rule allows); a queue missing there has one partition.
pub async fn read_partition_counts<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queues: &[&str],
) -> redis::RedisResult<Vec<u16>> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let stored: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(keys.partitions())
        .arg(queues)
        .query_async(conn)
        .await?;
    Ok(stored
        .iter()
        .map(|count| parse_count(count.as_deref()).unwrap_or(1))
        .collect())
}

/// `queue`'s partition count as stored (1 when none is).
pub async fn read_partition_count<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<u16> {
    let stored: Option<String> = redis::cmd("HGET")
        .arg(keys.partitions())
        .arg(queue)
        .query_async(conn)
        .await?;
    Ok(parse_count(stored.as_deref()).unwrap_or(1))
}

/// Raises `queue`'s stored partition count to `count` unless it is higher already, and
/// answers the count now stored. Never lowers it: jobs already placed in a partition
/// past a lower count would be left where no worker reads.
pub async fn raise_partition_count<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    count: u16,
) -> redis::RedisResult<u16> {
    // One call, so two workers raising to different counts at once end at the higher.
    let script = redis::Script::new(
        "local now = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 1 \
         local wanted = tonumber(ARGV[2]) \
         if wanted > now then redis.call('HSET', KEYS[1], ARGV[1], wanted) return wanted end \
         return now",
    );
    let stored: i64 = script
        .key(keys.partitions())
        .arg(queue)
        .arg(count)
        .invoke_async(conn)
        .await?;
    Ok(u16::try_from(stored)
        .ok()
        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
        .unwrap_or(count))
}

fn parse_count(stored: Option<&str>) -> Option<u16> {
    let stored = stored?;
    if stored.is_empty() || !stored.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stored
        .parse::<u16>()
        .ok()
        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
}

/// How long a producer trusts a partition count it read before reading it again: a
/// raised count takes effect within this, and meanwhile jobs go to the partitions it
/// knew, which workers still read.
pub const PARTITION_COUNT_TTL: Duration = Duration::from_secs(10);

/// A producer's memory of partition counts, read again after [`PARTITION_COUNT_TTL`].
#[derive(Debug, Default)]
pub struct PartitionCounts {
    known: Mutex<HashMap<String, (u16, Instant)>>,
}

impl PartitionCounts {
    /// `queue`'s count, from memory while fresh, else from Redis.
    pub async fn count<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        keys: &Keys,
        queue: &str,
    ) -> redis::RedisResult<u16> {
        if let Ok(known) = self.known.lock()
            && let Some((count, read_at)) = known.get(queue)
            && read_at.elapsed() < PARTITION_COUNT_TTL
        {
            return Ok(*count);
        }
        let count = read_partition_count(conn, keys, queue).await?;
        if let Ok(mut known) = self.known.lock() {
            known.insert(queue.to_owned(), (count, Instant::now()));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_zero_is_the_queue_itself() {
        assert_eq!(partition_name("mail", 0), "mail");
        assert_eq!(partition_name("mail", 5), "mail#5");
        assert_eq!(partition_names("mail", 3), ["mail", "mail#1", "mail#2"]);
        assert_eq!(partition_names("mail", 0), ["mail"]);
    }

    #[test]
    fn only_a_partition_number_splits_a_name() {
        assert_eq!(split_partition("mail#3"), ("mail", 3));
        assert_eq!(split_partition("mail"), ("mail", 0));
        for whole in [
            "mail#0",
            "mail#03",
            "mail#x",
            "mail#+3",
            "#3",
            "mail#",
            "mail#1024",
        ] {
            assert_eq!(split_partition(whole), (whole, 0), "{whole}");
        }
        assert_eq!(split_partition("a#b#2"), ("a#b", 2));
    }

    #[test]
    fn a_stored_count_is_digits_from_1_to_1024() {
        for (stored, count) in [
            (Some("6"), Some(6)),
            (Some("1024"), Some(1024)),
            (None, None),
        ] {
            assert_eq!(parse_count(stored), count, "{stored:?}");
        }
        for bad in ["2000", "0", "abc", "6_0", "+6", "0x6", " 6", ""] {
            assert_eq!(parse_count(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn placement_is_fnv_1a_modulo_the_count() {
        // The vectors docs/PROTOCOL.md gives for other languages.
        assert_eq!(partition_for("", 1000), (0x811c_9dc5_u32 % 1000) as u16);
        assert_eq!(
            partition_for("a", 1 << 15),
            (0xe40c_292c_u32 % (1 << 15)) as u16
        );
        assert_eq!(
            partition_for("foobar", 1 << 15),
            (0xbf9c_f968_u32 % (1 << 15)) as u16
        );
        assert_eq!(partition_for("report-7", 1), 0);
        assert_eq!(partition_for("report-7", 0), 0);
    }

    #[test]
    fn names_group_under_their_queue() {
        let names = ["mail#2", "low", "mail", "mail#10", "mail#1"].map(String::from);
        let grouped = group_by_queue(names);
        assert_eq!(grouped["mail"], ["mail", "mail#1", "mail#2", "mail#10"]);
        assert_eq!(grouped["low"], ["low"]);
    }

    #[test]
    fn counts_outside_the_range_are_refused() {
        assert_eq!(check_partitions(6).ok(), Some(6));
        assert!(check_partitions(0).is_err());
        assert!(check_partitions(1025).is_err());
    }
}
