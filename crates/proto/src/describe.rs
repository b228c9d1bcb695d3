//! Finding a job wherever protocol 2 keeps it: its record first; else, for a fast-path job,
//! its stream entry (pending, or running when delivered), its place in `later` (waiting
//! for its time or a retry), else its completion in the queue's `done` stream. A
//! fast-path job's id is its entry id, or, for one with an id of its own or once retried,
//! its id key holds where it is: its entry, the entry it becomes, then its completion.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::entry::parse_duration_ms;
use crate::{
    CONSUMER_GROUP, JobDefaults, JobRecord, Keys, ProtoError, Status, StreamEntry, Waiting, field,
    is_entry_id, range_completions, range_entries,
};

/// Entries of `done` read per step while looking for a completion.
const DONE_STEP: usize = 1_000;
/// How far past a job's enqueue time the `done` stream is searched, in entries: a job
/// completed later than this many completions after it was enqueued is reported unknown.
/// It bounds what one look-up costs Redis (at most ten reads), whatever id is asked for.
pub const DONE_SEARCH_LIMIT: usize = 10_000;
/// Digits of the millisecond part of entry ids (until the year 2286).
const ENTRY_MS_DIGITS: usize = 13;
/// Where to begin looking in `done` for completions of jobs enqueued at `ms` (the
/// millisecond part of their ids) or later. A completion in the same millisecond as its
/// job's entry can take a lower sequence number than the job's id, so the search starts
/// at the millisecond, never at the id itself. (Redis stamps both from its own clock; only
/// a clock stepped back between enqueue and completion dates a completion earlier.)
fn done_search_start(ms: &str) -> String {
    format!("{ms}-0")
}

/// A job could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// Redis answered with an error, or could not be reached.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// What Redis holds for the job cannot be read as a record.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// The job `job_id` of `queue` as a record, wherever it is kept; `None` when it is nowhere
/// (never existed, or its record and its completion were trimmed by retention). `job_id`
/// may be the job's id within the queue or its full id ([`crate::full_id`]). A job on
/// its stream that does not set its attempts, timeout or backoff is shown with
/// `defaults`, as a worker with these defaults would run it.
pub async fn describe_job<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    // A full id names its queue: one naming another queue is no job of this one.
    let Some(job_id) = crate::JobName::within(job_id, queue) else {
        return Ok(None);
    };
    if let Some(record) = read_record(conn, keys, queue, job_id, defaults).await? {
        return Ok(Some(record));
    }
    if is_entry_id(job_id) {
        if let Some(record) = from_stream(conn, keys, queue, job_id, None, defaults).await? {
            return Ok(Some(record));
        }
        // Retried without a record, it has an id key naming where it went.
        if let Some(found) = from_id_key(conn, keys, queue, job_id, defaults).await? {
            return Ok(Some(found));
        }
        return from_done(conn, keys, queue, job_id).await;
    }
    // The job may move between two reads (complete, fail or be cancelled, each of which
    // rewrites its id key or gives it a record), so a miss is looked at once more.
    for _ in 0..2 {
        if let Some(found) = from_id_key(conn, keys, queue, job_id, defaults).await? {
            return Ok(Some(found));
        }
        if let Some(record) = read_record(conn, keys, queue, job_id, defaults).await? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// The job's record, if it has one.
async fn read_record<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    let mut hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(keys.job(queue, job_id))
        .query_async(conn)
        .await?;
    if !hash.is_empty() {
        // A record built from an entry that left these out (a cancelled or requeued
        // fast-path job) runs with a worker's defaults: show those.
        fill_defaults(&mut hash, defaults);
    }
    Ok(JobRecord::from_hash(&hash)?)
}

/// A job with an id of its own and no record, where its id key says it is (its entry while
/// it waits or runs, its `done` entry for a key a 2.7 worker wrote), or, once it completed,
/// where `done_ids` says its completion is.
async fn from_id_key<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    let held: Option<Vec<u8>> = redis::cmd("GET")
        .arg(keys.id_key(queue, job_id))
        .query_async(conn)
        .await?;
    let Some(held) = held else {
        return from_done_ids(conn, keys, queue, job_id).await;
    };
    if held == b"waiting" {
        return from_deps(conn, keys, queue, job_id, defaults).await;
    }
    if let Some(waiting) = Waiting::parse(&held) {
        return from_later(conn, keys, queue, job_id, &waiting, defaults).await;
    }
    match std::str::from_utf8(&held).ok().map(IdKey::parse) {
        Some(Some(IdKey::Entry(entry))) => {
            from_stream(conn, keys, queue, entry, Some(job_id), defaults).await
        }
        Some(Some(IdKey::Done(done_id))) => {
            let (done, _) = done_range(conn, &keys.done(queue), done_id, done_id, 1).await?;
            // A job without an id of its own was created when its id was.
            let created = is_entry_id(job_id).then(|| entry_ms(job_id));
            match done
                .iter()
                .find(|entry| text(&entry.fields, field::ID).as_deref() == Some(job_id))
            {
                Some(entry) => completed(entry, queue, job_id, created),
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// A job waiting for its parents (protocol 2.19), from its `deps` hash: the enqueue
/// arguments it was given (the published script's, packed), and when it was created.
async fn from_deps<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    let (packed, created): (Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
        .arg(keys.deps(queue, job_id))
        .arg("job")
        .arg("created_at")
        .query_async(conn)
        .await?;
    let Some(args) = packed.as_deref().and_then(crate::waiting::unpack_strings) else {
        return Ok(None);
    };
    let arg = |at: usize| args.get(at).cloned().unwrap_or_default();
    let mut hash: HashMap<String, Vec<u8>> = HashMap::from([
        (field::ID.to_owned(), job_id.as_bytes().to_vec()),
        (field::TYPE.to_owned(), arg(1)),
        (field::PAYLOAD.to_owned(), arg(2)),
        (field::CONTENT_TYPE.to_owned(), arg(3)),
        (field::QUEUE.to_owned(), queue.as_bytes().to_vec()),
        (
            field::STATUS.to_owned(),
            Status::Waiting.as_str().as_bytes().to_vec(),
        ),
        (field::ATTEMPTS.to_owned(), b"0".to_vec()),
    ]);
    // A count, timeout or backoff left at 0 or empty takes the worker's default.
    for (name, at) in [
        (field::MAX_ATTEMPTS, 4),
        (field::TIMEOUT_MS, 5),
        (field::BACKOFF, 6),
    ] {
        let value = arg(at);
        if !value.is_empty() && value != b"0" {
            hash.insert(name.to_owned(), value);
        }
    }
    if let Some(created) = created {
        hash.insert(field::CREATED_AT.to_owned(), created.into_bytes());
    }
    fill_defaults(&mut hash, defaults);
    Ok(JobRecord::from_hash(&hash)?)
}

/// A job that completed without a record, remembered in `done_ids` with the time from
/// which its completion is in `done`: two reads, whatever the queue's size.
async fn from_done_ids<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
) -> Result<Option<JobRecord>, DescribeError> {
    let since: Option<f64> = redis::cmd("ZSCORE")
        .arg(keys.done_ids(queue))
        .arg(job_id)
        .query_async(conn)
        .await?;
    let Some(since) = since else {
        return Ok(None);
    };
    let created = is_entry_id(job_id).then(|| entry_ms(job_id));
    let since = format!("{}", since.max(0.0).trunc() as u64);
    match done_entry_of(conn, keys, queue, job_id, &since).await? {
        Some(entry) => completed(&entry, queue, job_id, created),
        None => Ok(None),
    }
}

/// A job waiting in `later` without a record, from what its id key holds and its due time.
async fn from_later<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    waiting: &Waiting,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    let due: Option<f64> = redis::cmd("ZSCORE")
        .arg(keys.later(queue))
        .arg(job_id)
        .query_async(conn)
        .await?;
    let kept = [
        field::TYPE,
        field::PAYLOAD,
        field::CONTENT_TYPE,
        field::MAX_ATTEMPTS,
        field::BACKOFF,
        field::ATTEMPTS,
        field::ERROR,
        field::ERRORS,
        field::CREATED_AT,
        field::RUN_AT,
        field::EXPIRES_AT,
        field::GROUP,
    ];
    let mut hash: HashMap<String, Vec<u8>> = waiting
        .fields
        .iter()
        .filter(|(name, _)| kept.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut set = |name: &str, value: String| hash.insert(name.to_owned(), value.into_bytes());
    set(field::ID, job_id.to_owned());
    set(field::QUEUE, queue.to_owned());
    set(field::STATUS, waiting.status.as_str().to_owned());
    if let Some(due) = due {
        // Scores are whole milliseconds, well within an f64's exact integers.
        let due = (due as i64).to_string();
        if waiting.status == Status::Failed {
            set(field::NEXT_RUN_AT, due);
        } else if !waiting.fields.contains_key(field::RUN_AT) {
            set(field::RUN_AT, due);
        }
    }
    if let Some(ms) = waiting
        .text(field::TIMEOUT)
        .and_then(|t| parse_duration_ms(&t))
    {
        set(field::TIMEOUT_MS, ms.to_string());
    }
    hash.entry(field::ATTEMPTS.to_owned())
        .or_insert_with(|| b"0".to_vec());
    fill_defaults(&mut hash, defaults);
    Ok(JobRecord::from_hash(&hash)?)
}

/// What an id key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKey<'a> {
    /// The stream entry carrying the job, while it waits or runs.
    Entry(&'a str),
    /// Its completion's entry in `done`.
    Done(&'a str),
}
// A job waiting in `later` has a third form, binary: see [`Waiting`].

impl<'a> IdKey<'a> {
    /// Reads an id key's value; `None` when it is neither form.
    pub fn parse(value: &'a str) -> Option<Self> {
        match value.strip_prefix("done ") {
            Some(done) if is_entry_id(done) => Some(IdKey::Done(done)),
            None if is_entry_id(value) => Some(IdKey::Entry(value)),
            _ => None,
        }
    }
}

/// Fills the attempts, timeout and backoff a job does not set with `defaults`.
fn fill_defaults(hash: &mut HashMap<String, Vec<u8>>, defaults: &JobDefaults) {
    for (name, value) in [
        (field::MAX_ATTEMPTS, defaults.max_attempts.to_string()),
        (
            field::TIMEOUT_MS,
            crate::millis(defaults.timeout).to_string(),
        ),
        (field::BACKOFF, defaults.backoff.to_string()),
    ] {
        hash.entry(name.to_owned())
            .or_insert_with(|| value.into_bytes());
    }
}

/// Ids of fast-path jobs of `queue` starting with `prefix` (digits of an entry id), from
/// its stream and its recent completions; at most `limit`.
pub async fn fast_ids_with_prefix<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<String>, DescribeError> {
    let (ms, has_seq) = match prefix.split_once('-') {
        Some((ms, _)) => (ms, true),
        None => (prefix, false),
    };
    if ms.is_empty() || ms.len() > ENTRY_MS_DIGITS || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Vec::new());
    }
    // Every id starting with the prefix lies between these two.
    let (low, high) = if has_seq {
        (ms.to_owned(), ms.to_owned())
    } else {
        (
            format!("{ms:0<ENTRY_MS_DIGITS$}"),
            format!("{ms:9<ENTRY_MS_DIGITS$}"),
        )
    };
    let mut found = Vec::new();
    for entry in xrange(conn, &keys.stream(queue), &low, &high, limit).await? {
        // An entry naming a job of its own is found by that id; a retry's entry stands
        // for the job in its `retry_of`, which was enqueued at or before it.
        if entry.fields.contains_key(field::ID) {
            continue;
        }
        let job = text(&entry.fields, field::RETRY_OF).unwrap_or(entry.entry_id);
        if job.starts_with(prefix) && !found.contains(&job) {
            found.push(job);
        }
    }
    let done_start = done_search_start(&low);
    let (done, _) = done_range(conn, &keys.done(queue), &done_start, "+", DONE_STEP).await?;
    for entry in done {
        if let Some(job) = text(&entry.fields, field::ID)
            && job.starts_with(prefix)
            && is_entry_id(&job)
            && !found.contains(&job)
        {
            found.push(job);
        }
    }
    found.truncate(limit);
    Ok(found)
}

/// A fast-path job still on its stream (the entry `entry_id`, carrying the job `own_id`
/// when it has an id of its own): pending, or running under the consumer it was
/// delivered to.
async fn from_stream<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    entry_id: &str,
    own_id: Option<&str>,
    defaults: &JobDefaults,
) -> Result<Option<JobRecord>, DescribeError> {
    let stream = keys.stream(queue);
    let Some(entry) = xrange(conn, &stream, entry_id, entry_id, 1).await?.pop() else {
        return Ok(None);
    };
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg(CONSUMER_GROUP)
        .arg(entry_id)
        .arg(entry_id)
        .arg(1)
        .query_async(conn)
        .await
        .or_else(|e| match e.code() {
            // No group yet: no worker has read the stream, so nothing is running.
            Some("NOGROUP") => Ok(Vec::new()),
            _ => Err(e),
        })?;
    let named = text(&entry.fields, field::ID).or_else(|| text(&entry.fields, field::RETRY_OF));
    if named.as_deref() != own_id {
        // It names another job than the one asked for.
        return Ok(None);
    }
    let job_id = own_id.unwrap_or(entry_id);
    let mut hash: HashMap<String, Vec<u8>> = entry
        .fields
        .iter()
        .filter(|(name, _)| {
            [
                field::TYPE,
                field::PAYLOAD,
                field::CONTENT_TYPE,
                field::MAX_ATTEMPTS,
                field::BACKOFF,
                field::ERROR,
                field::ERRORS,
                field::EXPIRES_AT,
                field::GROUP,
            ]
            .contains(&name.as_str())
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let spent: u64 = text(&entry.fields, field::ATTEMPTS)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    // A retried job's entry carries when the job was first enqueued.
    let created =
        text(&entry.fields, field::CREATED_AT).unwrap_or_else(|| entry_ms(entry_id).to_string());
    let mut set = |name: &str, value: String| hash.insert(name.to_owned(), value.into_bytes());
    set(field::ID, job_id.to_owned());
    set(field::QUEUE, queue.to_owned());
    set(field::CREATED_AT, created.clone());
    // A job promoted from `delayed` carries the time it was due.
    set(
        field::RUN_AT,
        text(&entry.fields, field::RUN_AT).unwrap_or(created),
    );
    if let Some(ms) = text(&entry.fields, field::TIMEOUT).and_then(|t| parse_duration_ms(&t)) {
        set(field::TIMEOUT_MS, ms.to_string());
    }
    match pending.first() {
        Some((_, consumer, _, deliveries)) => {
            set(field::STATUS, "running".to_owned());
            set(field::WORKER, consumer.clone());
            set(field::ATTEMPTS, (spent + deliveries).to_string());
        }
        None => {
            set(field::STATUS, "pending".to_owned());
            set(field::ATTEMPTS, spent.to_string());
        }
    }
    fill_defaults(&mut hash, defaults);
    Ok(JobRecord::from_hash(&hash)?)
}

/// A fast-path job's completion, searched in `done` from the job's enqueue time on.
async fn from_done<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
) -> Result<Option<JobRecord>, DescribeError> {
    let enqueued_ms = job_id.split_once('-').map_or(job_id, |(ms, _)| ms);
    match done_entry_of(conn, keys, queue, job_id, enqueued_ms).await? {
        Some(entry) => completed(&entry, queue, job_id, Some(entry_ms(job_id))),
        None => Ok(None),
    }
}

/// The `done` entry of `job_id`'s completion, searched from `from_ms` (ms since the Unix
/// epoch, no later than the completion) over at most a bounded number of completions.
pub async fn done_entry_of<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    queue: &str,
    job_id: &str,
    from_ms: &str,
) -> Result<Option<StreamEntry>, redis::RedisError> {
    let done = keys.done(queue);
    let mut start = done_search_start(from_ms);
    let mut searched = 0;
    while searched < DONE_SEARCH_LIMIT {
        let (mut range, len) = done_range(conn, &done, &start, "+", DONE_STEP).await?;
        if let Some(at) = range
            .iter()
            .position(|entry| text(&entry.fields, field::ID).as_deref() == Some(job_id))
        {
            return Ok(Some(range.swap_remove(at)));
        }
        let Some(last) = range.last() else {
            return Ok(None);
        };
        if len < DONE_STEP {
            return Ok(None);
        }
        searched += len;
        start = format!("({}", last.entry_id);
    }
    Ok(None)
}

/// Up to `count` entries of `stream` from `start` to `end`.
async fn xrange<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    end: &str,
    count: usize,
) -> Result<Vec<StreamEntry>, redis::RedisError> {
    Ok(range_entries(
        xrange_reply(conn, stream, start, end, count).await?,
    ))
}

/// Up to `count` entries of a `done` stream from `start` to `end`, as their completions
/// (several to an entry a worker wrote for a batch), and how many entries held them.
async fn done_range<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    end: &str,
    count: usize,
) -> Result<(Vec<StreamEntry>, usize), redis::RedisError> {
    Ok(range_completions(
        xrange_reply(conn, stream, start, end, count).await?,
    ))
}

async fn xrange_reply<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    end: &str,
    count: usize,
) -> Result<redis::Value, redis::RedisError> {
    redis::cmd("XRANGE")
        .arg(stream)
        .arg(start)
        .arg(end)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
}

/// The record of a completion read from `done`, of a job enqueued at `created_ms` when
/// that is known. Its payload is not kept there.
fn completed(
    entry: &StreamEntry,
    queue: &str,
    job_id: &str,
    created_ms: Option<u64>,
) -> Result<Option<JobRecord>, DescribeError> {
    // A completion written again (its batch's entry lost another job's) says when it
    // finished; otherwise its entry's id does.
    let finished = text(&entry.fields, field::FINISHED_AT)
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| entry_ms(&entry.entry_id));
    let run_ms: u64 = text(&entry.fields, "run_ms")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let mut hash: HashMap<String, Vec<u8>> = HashMap::new();
    let mut set = |name: &str, value: String| hash.insert(name.to_owned(), value.into_bytes());
    set(field::ID, job_id.to_owned());
    set(field::QUEUE, queue.to_owned());
    set(field::STATUS, "completed".to_owned());
    if let Some(created) = created_ms {
        set(field::CREATED_AT, created.to_string());
    }
    set(field::FINISHED_AT, finished.to_string());
    set(
        field::STARTED_AT,
        finished.saturating_sub(run_ms).to_string(),
    );
    // A retried job's completion also keeps its first enqueue, attempts allowed and
    // errors.
    // A completion leaves out `attempts` when it took one (protocol 2.11).
    set(field::ATTEMPTS, "1".to_owned());
    for name in [
        field::TYPE,
        field::ATTEMPTS,
        field::WORKER,
        field::RESULT,
        field::CREATED_AT,
        field::MAX_ATTEMPTS,
        field::ERRORS,
    ] {
        if let Some(value) = text(&entry.fields, name) {
            set(name, value);
        }
    }
    Ok(JobRecord::from_hash(&hash)?.map(|mut record| {
        record.payload = serde_json::Value::Null;
        record
    }))
}

fn text(fields: &HashMap<String, Vec<u8>>, name: &str) -> Option<String> {
    fields
        .get(name)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The millisecond part of an entry id.
fn entry_ms(entry_id: &str) -> u64 {
    crate::entry_id_ms(entry_id)
        .and_then(|ms| u64::try_from(ms).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_told_from_job_ids() {
        assert!(is_entry_id("1732300000000-0"));
        assert!(!is_entry_id("0190f5a2-7c1e-7d2a-9a4b-1f2e3d4c5b6a"));
        assert!(!is_entry_id("12-"));
        assert!(!is_entry_id("abc"));
    }
}
