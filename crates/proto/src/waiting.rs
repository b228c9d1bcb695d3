//! Jobs that wait for their time without a record (protocol 2.7): what the id key of a job
//! in a queue's `later` set holds, and how to read it back. The value is the job's state
//! (`scheduled`, or `failed` while a retry waits), one space, and the stream entry the job
//! becomes once due: its field/value pairs as one MessagePack array of strings, as Redis's
//! Lua `cmsgpack.pack` writes them. Also the typed reads of `later` and of a queue's depth.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use rmp::Marker;

use crate::{Keys, Status};

/// A job waiting in `later`, as its id key holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// [`Status::Scheduled`] (its first run waits) or [`Status::Failed`] (a retry waits).
    pub status: Status,
    /// The fields of the entry it becomes, by name.
    pub fields: HashMap<String, Vec<u8>>,
}

impl Waiting {
    /// Reads an id key's value; `None` when it is not of this form (an entry id, a
    /// completion's `done <entry id>`, or anything malformed).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let space = value.iter().position(|&b| b == b' ')?;
        let status = match &value[..space] {
            b"scheduled" => Status::Scheduled,
            b"failed" => Status::Failed,
            // Waiting its group's turn (protocol 2.17): ready, outside the stream.
            b"grouped" => Status::Pending,
            _ => return None,
        };
        let mut rest = &value[space + 1..];
        let len = rmp::decode::read_array_len(&mut rest).ok()?;
        if len % 2 != 0 {
            return None;
        }
        let mut fields = HashMap::new();
        for _ in 0..len / 2 {
            let name = String::from_utf8(read_bytes(&mut rest)?).ok()?;
            let value = read_bytes(&mut rest)?;
            fields.insert(name, value);
        }
        rest.is_empty().then_some(Self { status, fields })
    }

    /// A field as text, when it is there.
    pub fn text(&self, name: &str) -> Option<String> {
        self.fields
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// The state each of `ids` (jobs of `queue`) waits in, from the first word of its id key
/// alone; `None` for one not waiting in `later`. One pipelined read of a few bytes per id.
pub async fn waiting_states<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    ids: &[String],
) -> redis::RedisResult<Vec<Option<Status>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        // The longest state word and its space, not the entry that follows.
        pipe.cmd("GETRANGE")
            .arg(keys.id_key(queue, id))
            .arg(0)
            .arg("scheduled".len());
    }
    let heads: Vec<Vec<u8>> = pipe.query_async(conn).await?;
    Ok(heads
        .into_iter()
        .map(|head| {
            if head.starts_with(b"scheduled ") {
                Some(Status::Scheduled)
            } else if head.starts_with(b"failed ") {
                Some(Status::Failed)
            } else {
                None
            }
        })
        .collect())
}

/// The jobs `ids` of `queue` as their id keys hold them while they wait in `later`;
/// `None` for one that does not wait there.
pub async fn read_waiting<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    ids: &[String],
) -> redis::RedisResult<Vec<Option<Waiting>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("GET").arg(keys.id_key(queue, id));
    }
    let values: Vec<Option<Vec<u8>>> = pipe.query_async(conn).await?;
    Ok(values
        .into_iter()
        .map(|value| value.as_deref().and_then(Waiting::parse))
        .collect())
}

/// Whether each of `ids` is missing from `queue`'s `later` set.
pub async fn missing_from_later<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    ids: &[String],
) -> redis::RedisResult<Vec<bool>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let later = keys.later(queue);
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("ZSCORE").arg(&later).arg(id);
    }
    let scores: Vec<Option<f64>> = pipe.query_async(conn).await?;
    Ok(scores.into_iter().map(|s| s.is_none()).collect())
}

/// How many replies [`depth_reads`] adds to a pipeline.
pub const DEPTH_READS: usize = 4;

/// Adds to `pipe` the reads of `queue`'s depth: its stream's length, then the jobs waiting
/// with records (`delayed`) and without (`later`), and those waiting their group's turn
/// (`grouped`); [`depth_of`] adds them up.
pub fn depth_reads(pipe: &mut redis::Pipeline, keys: &Keys, queue: &str) {
    pipe.cmd("XLEN")
        .arg(keys.stream(queue))
        .cmd("ZCARD")
        .arg(keys.delayed(queue))
        .cmd("ZCARD")
        .arg(keys.later(queue))
        .cmd("GET")
        .arg(keys.grouped(queue));
}

/// The depth from the four replies of [`depth_reads`]: (on the stream, waiting).
pub fn depth_of(replies: &[redis::Value]) -> Option<(u64, u64)> {
    let [len, delayed, later, grouped] = replies else {
        return None;
    };
    let count = |v: &redis::Value| redis::from_redis_value::<u64>(v.clone()).ok();
    Some((
        count(len)?,
        count(delayed)? + count(later)? + grouped_of(grouped),
    ))
}

/// The `grouped` counter's value: none (no group ever waited) or below zero reads as 0.
fn grouped_of(value: &redis::Value) -> u64 {
    redis::from_redis_value::<Option<i64>>(value.clone())
        .ok()
        .flatten()
        .map_or(0, |n| n.max(0) as u64)
}

/// `queue`'s depth, read in one round trip: (on the stream, waiting for a time).
pub async fn queue_depth<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
) -> redis::RedisResult<(u64, u64)> {
    let mut pipe = redis::pipe();
    depth_reads(&mut pipe, keys, queue);
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    depth_of(&replies).ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::Parse,
            "a queue's depth: unexpected replies",
        ))
    })
}

/// One string (or byte string) of a MessagePack array, advancing `rest` past it.
/// The strings of a MessagePack array of strings (as Lua's `cmsgpack.pack` writes a list
/// of them); `None` for anything else.
pub(crate) fn unpack_strings(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = value;
    let len = rmp::decode::read_array_len(&mut rest).ok()?;
    let strings = (0..len)
        .map(|_| read_bytes(&mut rest))
        .collect::<Option<Vec<_>>>()?;
    rest.is_empty().then_some(strings)
}

fn read_bytes(rest: &mut &[u8]) -> Option<Vec<u8>> {
    let len = match rmp::decode::read_marker(rest).ok()? {
        Marker::FixStr(n) => usize::from(n),
        Marker::Str8 | Marker::Bin8 => usize::from(take::<1>(rest)?[0]),
        Marker::Str16 | Marker::Bin16 => usize::from(u16::from_be_bytes(take::<2>(rest)?)),
        Marker::Str32 | Marker::Bin32 => {
            usize::try_from(u32::from_be_bytes(take::<4>(rest)?)).ok()?
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Some(bytes.to_vec())
}

/// The next `N` bytes of `rest`, advancing past them.
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    if rest.len() < N {
        return None;
    }
    let (head, tail) = rest.split_at(N);
    *rest = tail;
    head.try_into().ok()
}

/// Sends `adds` (entries' XADDs, as [`crate::FastEntry::xadd`] builds them) to `queue`'s
/// stream in one round trip, reading the queue's depth after them when `read_depth`:
/// each entry's id (`None` where Redis answered something else), and the depth.
pub async fn add_entries<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    adds: impl IntoIterator<Item = redis::Cmd>,
    read_depth: bool,
) -> redis::RedisResult<(Vec<Option<String>>, Option<(u64, u64)>)> {
    let mut pipe = redis::pipe();
    for add in adds {
        pipe.add_command(add);
    }
    if read_depth {
        depth_reads(&mut pipe, keys, queue);
    }
    let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let depth = if read_depth {
        // The last replies are the depth reads.
        let depth = replies.split_off(replies.len().saturating_sub(DEPTH_READS));
        depth_of(&depth)
    } else {
        None
    };
    let ids = replies
        .into_iter()
        .map(|v| redis::from_redis_value::<String>(v).ok())
        .collect();
    Ok((ids, depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs `pairs` as `cmsgpack.pack` does: an array of strings.
    fn packed(state: &str, pairs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = format!("{state} ").into_bytes();
        rmp::encode::write_array_len(&mut out, u32::try_from(pairs.len() * 2).expect("fits"))
            .expect("writes");
        for (name, value) in pairs {
            rmp::encode::write_str(&mut out, name).expect("writes");
            rmp::encode::write_str_len(&mut out, u32::try_from(value.len()).expect("fits"))
                .expect("writes");
            out.extend_from_slice(value);
        }
        out
    }

    #[test]
    fn a_waiting_job_reads_back_with_its_fields() {
        let long = vec![0xffu8; 300];
        let value = packed(
            "failed",
            &[("id", b"order-7"), ("type", b"t"), ("payload", &long)],
        );
        let waiting = Waiting::parse(&value).expect("parses");
        assert_eq!(waiting.status, Status::Failed);
        assert_eq!(waiting.text("id").as_deref(), Some("order-7"));
        assert_eq!(waiting.fields["payload"], long);
    }

    #[test]
    fn other_forms_are_not_waiting_jobs() {
        assert_eq!(Waiting::parse(b"1700000000000-0"), None);
        assert_eq!(Waiting::parse(b"done 1700000000000-0"), None);
        assert_eq!(Waiting::parse(b"failed \x92"), None, "cut short");
        let value = packed("running", &[("id", b"x")]);
        assert_eq!(Waiting::parse(&value), None, "not a waiting state");
    }
}
