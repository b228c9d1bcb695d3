//! Which primary of a Redis Cluster serves a key: the slot map from CLUSTER SLOTS and a
//! key's slot, computed as Redis does (CRC16 of the hash tag, modulo 16384), so that a
//! worker can wait on each node with a blocking read of its own.

use redis::{RedisError, Value};

use crate::SharedConnection;

/// How many slots a Redis Cluster has.
const SLOT_COUNT: u16 = 16384;

/// The slot of `key`: of its hash tag (the text between the first `{` and the next `}`,
/// when not empty), else of the whole key.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = hash_tag(bytes).unwrap_or(bytes);
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOT_COUNT
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

/// The primary serving each range of slots, as `host:port`, at the time it was read. It
/// goes stale when slots move or a replica takes over; a stale answer costs only a
/// wait in the wrong place, since the cluster client routes each call by its key anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotOwners {
    ranges: Vec<(u16, u16, String)>,
}

impl SlotOwners {
    /// Reads the slot map from any node.
    pub async fn load(conn: &mut SharedConnection) -> Result<Self, RedisError> {
        let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
        Ok(Self::from_reply(&reply))
    }

    /// The map in a CLUSTER SLOTS reply: per range its first and last slot, then the
    /// primary's host and port. Ranges it cannot read are left out.
    pub fn from_reply(reply: &Value) -> Self {
        let Value::Array(ranges) = reply else {
            return Self::default();
        };
        let ranges = ranges
            .iter()
            .filter_map(|range| {
                let Value::Array(fields) = range else {
                    return None;
                };
                let (first, last) = (slot_number(fields.first()?)?, slot_number(fields.get(1)?)?);
                let Value::Array(primary) = fields.get(2)? else {
                    return None;
                };
                let host = text(primary.first()?)?;
                let Value::Int(port) = primary.get(1)? else {
                    return None;
                };
                Some((first, last, format!("{host}:{port}")))
            })
            .collect();
        Self { ranges }
    }

    /// Every primary that serves slots, once each.
    pub fn primaries(&self) -> std::collections::BTreeSet<&str> {
        self.ranges
            .iter()
            .map(|(_, _, owner)| owner.as_str())
            .collect()
    }

    /// The primary serving `key`, when the map knows its slot.
    pub fn owner_of(&self, key: &str) -> Option<&str> {
        let slot = key_slot(key);
        self.ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, owner)| owner.as_str())
    }
}

fn slot_number(value: &Value) -> Option<u16> {
    match value {
        Value::Int(n) => u16::try_from(*n).ok().filter(|&n| n < SLOT_COUNT),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_ones_redis_computes() {
        // The values CLUSTER KEYSLOT answers.
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("somekey"), 11058);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        // An empty tag hashes the whole key; only the first tag counts; an open brace
        // without a close is no tag.
        assert_eq!(key_slot("foo{}{bar}"), 8363);
        assert_eq!(key_slot("foo{bar}{zap}"), 5061);
        assert_eq!(key_slot("{bar"), 4015);
        assert_eq!(key_slot("mail#3"), 13308);
        assert_eq!(key_slot("flotilla:{mail#3}:stream"), 13308);
    }

    #[test]
    fn owners_come_from_a_cluster_slots_reply() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![Value::Int(99_999), Value::Int(2), node("bad", 1)]),
        ]);
        let owners = SlotOwners::from_reply(&reply);
        assert_eq!(owners.owner_of("foo"), Some("10.0.0.2:7001"));
        let low = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| key_slot(k) <= 5460)
            .expect("a key");
        assert_eq!(owners.owner_of(&low), Some("10.0.0.1:7000"));
        assert_eq!(
            owners.primaries().into_iter().collect::<Vec<_>>(),
            ["10.0.0.1:7000", "10.0.0.2:7001"]
        );
        assert_eq!(SlotOwners::from_reply(&Value::Nil), SlotOwners::default());
        assert_eq!(SlotOwners::default().owner_of("foo"), None);
    }
}
