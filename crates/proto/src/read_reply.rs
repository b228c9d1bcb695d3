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
    streams_of(reply)
        .into_iter()
        .filter_map(|(key, entries)| Some((text(key)?, range_entries(entries))))
        .collect()
}

/// The `[key, entries]` pairs of a read reply, RESP2 or RESP3.
fn streams_of(reply: Value) -> Vec<(Value, Value)> {
    match reply {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Array(pair) => two(pair),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    }
}

/// The completions of a `done` stream's XREAD reply, per stream key, in reply order: as
/// [`read_reply_entries`], but an entry that holds several completions comes back as one
/// entry per completion (see [`range_completions`]). Any other stream read through here
/// (a dead-letter stream, whose entries hold one `id`) comes back as it is.
pub fn read_reply_completions(reply: Value) -> Vec<(String, Vec<StreamEntry>)> {
    streams_of(reply)
        .into_iter()
        .filter_map(|(key, entries)| Some((text(key)?, range_completions(entries).0)))
        .collect()
}

/// The completions of an XRANGE or XREVRANGE reply over a `done` stream, in reply order,
/// and how many entries held them. An entry may hold several completions (protocol 2.10:
/// a worker's batch in one entry): each is a run of fields that begins with `id`, and
/// comes back as an entry of its own under the id of the entry that holds it, with the
/// fields the entry has before its first `id` (every completion's). An entry written
/// before 2.10 holds one.
pub fn range_completions(reply: Value) -> (Vec<StreamEntry>, usize) {
    let Value::Array(entries) = reply else {
        return (Vec::new(), 0);
    };
    let held = entries.len();
    let completions = entries
        .into_iter()
        .filter_map(ordered_entry)
        .flat_map(|(entry_id, pairs)| split_at_ids(&entry_id, pairs))
        .collect();
    (completions, held)
}

/// An entry's fields in order: names as text, values as the bytes Redis holds.
type Fields = Vec<(String, Vec<u8>)>;

/// An entry's fields split into completions, one at each `id` field. Fields before the
/// first `id` belong to every completion of the entry (a worker writes its name there
/// once for the batch); a completion's own field of the same name wins.
fn split_at_ids(entry_id: &str, pairs: Fields) -> Vec<StreamEntry> {
    let mut shared: HashMap<String, Vec<u8>> = HashMap::new();
    let mut completions: Vec<StreamEntry> = Vec::new();
    for (name, value) in pairs {
        if name == crate::field::ID {
            completions.push(StreamEntry {
                entry_id: entry_id.to_owned(),
                fields: shared.clone(),
            });
        }
        match completions.last_mut() {
            Some(current) => {
                current.fields.insert(name, value);
            }
            None => {
                shared.insert(name, value);
            }
        }
    }
    if completions.is_empty() {
        // No `id` (an entry deleted while pending has no fields): one entry, as
        // `range_entries` gives it.
        completions.push(StreamEntry {
            entry_id: entry_id.to_owned(),
            fields: shared,
        });
    }
    completions
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
    let (entry_id, pairs) = ordered_entry(value)?;
    Some(StreamEntry {
        entry_id,
        fields: pairs.into_iter().collect(),
    })
}

/// One `[id, [field, value, …]]` pair with its fields in order, names as text.
fn ordered_entry(value: Value) -> Option<(String, Fields)> {
    let Value::Array(pair) = value else {
        return None;
    };
    let (id, body) = two(pair)?;
    let flat = match body {
        Value::Array(flat) => flat,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        if let Some(name) = text(name) {
            fields.push((name, bytes(value)));
        }
    }
    Some((text(id)?, fields))
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

    fn entry_of(id: &str, flat: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(flat.iter().map(|s| bulk(s)).collect()),
        ])
    }

    #[test]
    fn a_done_entry_holding_a_batch_yields_each_completion_under_its_entry_id() {
        let reply = Value::Array(vec![
            entry_of("5-0", &["id", "a", "attempts", "1", "result", "1"]),
            entry_of(
                "6-0",
                &[
                    "worker", "w-1", "id", "b", "attempts", "2", "errors", "[]", "id", "c",
                    "attempts", "1", "worker", "w-2",
                ],
            ),
        ]);
        let (completions, entries) = range_completions(reply);
        assert_eq!(entries, 2);
        let seen: Vec<(&str, Option<&[u8]>, bool)> = completions
            .iter()
            .map(|c| {
                (
                    c.entry_id.as_str(),
                    c.fields.get("id").map(Vec::as_slice),
                    c.fields.contains_key("errors"),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("5-0", Some(&b"a"[..]), false),
                ("6-0", Some(&b"b"[..]), true),
                ("6-0", Some(&b"c"[..]), false),
            ]
        );
        assert_eq!(
            completions[2].fields.get("attempts").map(Vec::as_slice),
            Some(&b"1"[..])
        );
        // What comes before the first `id` is every completion's; a completion's own wins.
        let worker = |c: &StreamEntry| c.fields.get("worker").map(|w| w.to_vec());
        assert_eq!(worker(&completions[0]), None);
        assert_eq!(worker(&completions[1]), Some(b"w-1".to_vec()));
        assert_eq!(worker(&completions[2]), Some(b"w-2".to_vec()));
    }

    #[test]
    fn a_read_of_done_splits_batches_and_leaves_other_streams_as_they_are() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("done"),
                Value::Array(vec![entry_of("7-0", &["id", "x", "id", "y"])]),
            ]),
            Value::Array(vec![
                bulk("dead"),
                Value::Array(vec![entry_of("8-0", &["id", "z", "error", "boom"])]),
            ]),
        ]);
        let streams = read_reply_completions(reply);
        let ids: Vec<(String, Vec<String>)> = streams
            .into_iter()
            .map(|(key, entries)| {
                let ids = entries
                    .iter()
                    .filter_map(|e| e.fields.get("id"))
                    .map(|id| String::from_utf8_lossy(id).into_owned())
                    .collect();
                (key, ids)
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                ("done".to_owned(), vec!["x".to_owned(), "y".to_owned()]),
                ("dead".to_owned(), vec!["z".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_nil_or_odd_reply_is_empty() {
        assert!(read_reply_entries(Value::Nil).is_empty());
        assert!(read_reply_entries(Value::Int(3)).is_empty());
        let resp3 = Value::Map(vec![(bulk("q"), Value::Array(vec![]))]);
        assert_eq!(read_reply_entries(resp3), vec![("q".to_owned(), vec![])]);
    }
}
