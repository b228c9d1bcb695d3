//! Stream read replies (XREADGROUP, XREAD, XRANGE) turned into entries by moving the
//! bytes out of the reply, without the redis crate's per-entry maps and copies: a worker
//! reads every job through here.

use std::collections::HashMap;

use redis::Value;

use crate::StreamEntry;

/// The entries of an XREADGROUP or XREAD reply, per stream key, in reply order. A nil
/// reply (nothing to read) is empty. Anything that is not shaped like a stream reply is
/// skipped rather than guessed at.
pub fn read_reply_entries(reply: Value) -> Vec<(String, Vec<StreamEntry>)> {
    let streams = match reply {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Array(pair) => two(pair),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .filter_map(|(key, entries)| Some((text(key)?, range_entries(entries))))
        .collect()
}

/// The entries of an XRANGE reply, or of one stream in a read reply.
pub fn range_entries(reply: Value) -> Vec<StreamEntry> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries.into_iter().filter_map(entry).collect()
}

/// One `[id, [field, value, …]]` pair. An entry deleted while pending reads back with
/// nil fields: it keeps its id and has none.
fn entry(value: Value) -> Option<StreamEntry> {
    let Value::Array(pair) = value else {
        return None;
    };
    let (id, body) = two(pair)?;
    let flat = match body {
        Value::Array(flat) => flat,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let mut fields = HashMap::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        if let Some(name) = text(name) {
            fields.insert(name, bytes(value));
        }
    }
    Some(StreamEntry {
        entry_id: text(id)?,
        fields,
    })
}

fn two(items: Vec<Value>) -> Option<(Value, Value)> {
    let mut items = items.into_iter();
    Some((items.next()?, items.next()?))
}

fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text(value: Value) -> Option<String> {
    String::from_utf8(bytes(value)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_yields_each_streams_entries_with_their_fields() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![
                        bulk("type"),
                        bulk("email"),
                        bulk("payload"),
                        bulk("{}"),
                    ]),
                ]),
                // Deleted while pending: nil fields.
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let streams = read_reply_entries(reply);
        assert_eq!(streams.len(), 1);
        let (key, entries) = &streams[0];
        assert_eq!(key, "q");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].entry_id, "1-0");
        assert_eq!(
            entries[0].fields.get("type").map(Vec::as_slice),
            Some(&b"email"[..])
        );
        assert_eq!(
            entries[0].fields.get("payload").map(Vec::as_slice),
            Some(&b"{}"[..])
        );
        assert_eq!(entries[1].entry_id, "2-0");
        assert!(entries[1].fields.is_empty());
    }

    #[test]
    fn a_nil_or_odd_reply_is_empty() {
        assert!(read_reply_entries(Value::Nil).is_empty());
        assert!(read_reply_entries(Value::Int(3)).is_empty());
        let resp3 = Value::Map(vec![(bulk("q"), Value::Array(vec![]))]);
        assert_eq!(read_reply_entries(resp3), vec![("q".to_owned(), vec![])]);
    }
}
