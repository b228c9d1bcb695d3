//! Listing jobs of one status, page by page, from where each status is kept: the stream
//! past the group's last read (pending), the group's pending-entries list (running),
//! `delayed` and `later` (scheduled and failed), `done` (completed), the dead-letter stream (dead)
//! and the cancelled index. Never a scan of every key.
//!
//! Over several queues the pages merge by time, and the cursor holds a position in each
//! queue: `{<queue>}<position>` repeated, where a position is an entry id, a
//! `<score>/<id>` pair in a sorted set, or `$` once the queue has nothing more.

use std::collections::HashMap;

use flotilla_proto::{Status, StreamEntry, browse, field, read_waiting};
use serde::Serialize;

use crate::{Admin, AdminError};

/// Raw items looked at per queue per page at most, so a filter that matches little
/// still answers promptly; the cursor goes on from where the look stopped.
const SCAN_BUDGET: usize = 10_000;
/// Items read per Redis call.
const STEP: usize = 500;
/// The position of a queue that has nothing more to list.
const EXHAUSTED: &str = "$";

/// Which jobs to list, and where to go on from.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// The status of the jobs to list.
    pub status: Status,
    /// One queue's; every queue's when `None`.
    pub queue: Option<String>,
    /// Only jobs of this type; every type's when `None`.
    pub job_type: Option<String>,
    /// Only jobs whose time (see [`JobRow::at_ms`]) is at or after this, ms.
    pub since_ms: Option<i64>,
    /// Most jobs on the page (0 counts as 1).
    pub limit: usize,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// One job in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// The queue (or partition) that holds it.
    pub queue: String,
    /// The job's id within its queue: its own id, or its entry id.
    pub id: String,
    /// The id that names the job in the whole namespace ([`flotilla_proto::full_id`]).
    pub full_id: String,
    /// The job's type; empty when neither its entry nor its record says.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The status it is listed under.
    pub status: Status,
    /// Attempts started so far; for a running job, counting this one.
    pub attempts: u32,
    /// The worker running it (running) or that finished it (completed).
    pub worker: Option<String>,
    /// The time the list is ordered by, ms since the Unix epoch: when it was enqueued
    /// (pending, running), when it is due (scheduled, failed), when it ended (completed,
    /// dead, cancelled, expired).
    pub at_ms: i64,
    /// The last error (failed, dead, cancelled).
    pub error: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPage {
    /// The page's jobs, in list order.
    pub jobs: Vec<JobRow>,
    /// Pass it back for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Whether a status lists newest first (what has ended) or oldest first (what waits).
fn newest_first(status: Status) -> bool {
    matches!(
        status,
        Status::Completed | Status::Dead | Status::Cancelled | Status::Expired
    )
}

/// A job's status, type, attempts and last error, from its record.
type RecordFields = (Option<String>, Option<String>, Option<u32>, Option<String>);

/// What one queue's look found.
struct Found {
    /// Matching rows in list order, each with its position.
    rows: Vec<(String, JobRow)>,
    /// The position of the last item looked at, matching or not.
    looked_to: Option<String>,
    /// Nothing lies past `looked_to`.
    exhausted: bool,
}

impl Found {
    fn new() -> Self {
        Found {
            rows: Vec::new(),
            looked_to: None,
            exhausted: false,
        }
    }
}

impl Admin {
    /// One page of jobs of `query.status`, oldest first for what waits or runs, newest
    /// first for what has ended.
    pub async fn list_jobs(&mut self, query: &JobQuery) -> Result<JobPage, AdminError> {
        if query.since_ms.is_some_and(|ms| ms < 0) {
            return Err(AdminError::BadSince);
        }
        let queues = self.streams(query.queue.as_deref()).await?;
        let mut positions = match &query.cursor {
            Some(cursor) => parse_cursor(cursor)?,
            None => HashMap::new(),
        };
        let limit = query.limit.max(1);
        let mut found = Vec::new();
        for queue in &queues {
            let from = positions.get(queue).cloned();
            if from.as_deref() == Some(EXHAUSTED) {
                continue;
            }
            let look = self.look(queue, query, from.as_deref(), limit).await?;
            found.push((queue.clone(), look));
        }
        // Merge by time, then take a page.
        let mut merged: Vec<(usize, usize)> = found
            .iter()
            .enumerate()
            .flat_map(|(q, (_, look))| (0..look.rows.len()).map(move |r| (q, r)))
            .collect();
        // Within a queue the rows keep their own order (the cursor goes on after the last
        // one shown), so ties in time fall back to the queue and the row's place in it.
        let newest = newest_first(query.status);
        merged.sort_by_key(|&(q, r)| {
            let at = i128::from(found[q].1.rows[r].1.at_ms);
            (if newest { -at } else { at }, q, r)
        });
        merged.truncate(limit);
        let mut taken = vec![0usize; found.len()];
        for &(q, _) in &merged {
            taken[q] += 1;
        }
        let jobs = merged
            .iter()
            .map(|&(q, r)| found[q].1.rows[r].1.clone())
            .collect();
        for (q, (queue, look)) in found.into_iter().enumerate() {
            let position = if taken[q] < look.rows.len() {
                // Some rows were left for the next page: go on after the last one shown.
                taken[q]
                    .checked_sub(1)
                    .map(|last| look.rows[last].0.clone())
                    .or(positions.get(&queue).cloned())
            } else if look.exhausted {
                Some(EXHAUSTED.to_owned())
            } else {
                look.looked_to.or(positions.get(&queue).cloned())
            };
            if let Some(position) = position {
                positions.insert(queue, position);
            }
        }
        let more = queues
            .iter()
            .any(|q| positions.get(q).map(String::as_str) != Some(EXHAUSTED));
        Ok(JobPage {
            jobs,
            next_cursor: more.then(|| render_cursor(&queues, &positions)),
        })
    }

    /// Up to `want` matching rows of one queue after `from`.
    async fn look(
        &mut self,
        queue: &str,
        query: &JobQuery,
        from: Option<&str>,
        want: usize,
    ) -> Result<Found, AdminError> {
        let on_stream = !matches!(
            query.status,
            Status::Waiting
                | Status::Scheduled
                | Status::Failed
                | Status::Cancelled
                | Status::Expired
        );
        // Inside a `done` entry that holds several completions, a position also says how
        // many of them were shown: `<entry id>~<n>`.
        let ended = matches!(query.status, Status::Completed | Status::Dead);
        let valid = |p: &str| match p.split_once('~') {
            Some((entry, shown)) => {
                ended && flotilla_proto::is_entry_id(entry) && shown.parse::<usize>().is_ok()
            }
            None => flotilla_proto::is_entry_id(p),
        };
        if let Some(position) = from.filter(|p| on_stream && !valid(p)) {
            return Err(AdminError::BadCursor {
                cursor: position.to_owned(),
                why: "a stream position is an entry id <ms>-<seq> (or, for ended jobs, \
                      <ms>-<seq>~<n>)",
            });
        }
        match query.status {
            Status::Pending => self.look_pending(queue, query, from, want).await,
            Status::Running => self.look_running(queue, query, from, want).await,
            Status::Waiting
            | Status::Scheduled
            | Status::Failed
            | Status::Cancelled
            | Status::Expired => self.look_scored(queue, query, from, want).await,
            Status::Completed | Status::Dead => {
                self.look_ended_stream(queue, query, from, want).await
            }
        }
    }

    /// Entries past the group's last read.
    async fn look_pending(
        &mut self,
        queue: &str,
        query: &JobQuery,
        from: Option<&str>,
        want: usize,
    ) -> Result<Found, AdminError> {
        let stream = self.keys.stream(queue);
        let last_read = browse::last_delivered(&mut self.conn, &self.keys, queue).await?;
        let mut start = [
            last_read.map(|id| format!("({id}")),
            from.map(|id| format!("({id}")),
        ]
        .into_iter()
        .flatten()
        .chain(query.since_ms.map(|ms| ms.to_string()))
        .max_by(|a, b| compare_bounds(a, b))
        .unwrap_or_else(|| "-".to_owned());
        let mut found = Found::new();
        let mut looked = 0;
        loop {
            let entries = self.xrange(&stream, &start, "+", STEP, false).await?;
            let len = entries.len();
            let mut rows: Vec<JobRow> = entries
                .iter()
                .map(|entry| entry_row(queue, entry, Status::Pending, 0))
                .collect();
            self.fill_from_records(queue, &entries, &mut rows).await?;
            for (entry, row) in entries.into_iter().zip(rows) {
                looked += 1;
                start = format!("({}", entry.entry_id);
                found.looked_to = Some(entry.entry_id.clone());
                if matches_type(query, &row) {
                    found.rows.push((entry.entry_id, row));
                }
            }
            if len < STEP {
                found.exhausted = true;
                return Ok(found);
            }
            if found.rows.len() >= want || looked >= SCAN_BUDGET {
                return Ok(found);
            }
        }
    }

    /// Entries read and unfinished: the group's pending-entries list.
    async fn look_running(
        &mut self,
        queue: &str,
        query: &JobQuery,
        from: Option<&str>,
        want: usize,
    ) -> Result<Found, AdminError> {
        let mut start = [from.map(|id| format!("({id}"))]
            .into_iter()
            .flatten()
            .chain(query.since_ms.map(|ms| format!("{ms}-0")))
            .max_by(|a, b| compare_bounds(a, b))
            .unwrap_or_else(|| "-".to_owned());
        let mut found = Found::new();
        let mut looked = 0;
        loop {
            // No group yet means no worker has read the stream: nothing runs.
            let pending =
                browse::pending_entries(&mut self.conn, &self.keys, queue, &start, STEP).await?;
            let len = pending.len();
            let mut entries = Vec::new();
            let mut rows = Vec::new();
            for pending in pending {
                looked += 1;
                start = format!("({}", pending.entry_id);
                found.looked_to = Some(pending.entry_id);
                // An entry deleted while pending (a cancelled job's) reads back with no
                // fields: nothing runs it any more.
                if let Some(entry) = pending.entry {
                    let delivered = u32::try_from(pending.deliveries).unwrap_or(u32::MAX);
                    let mut row = entry_row(queue, &entry, Status::Running, delivered);
                    row.worker = Some(pending.consumer);
                    rows.push(row);
                    entries.push(entry);
                }
            }
            self.fill_from_records(queue, &entries, &mut rows).await?;
            for (entry, row) in entries.into_iter().zip(rows) {
                if matches_type(query, &row) {
                    found.rows.push((entry.entry_id, row));
                }
            }
            if len < STEP {
                found.exhausted = true;
                return Ok(found);
            }
            if found.rows.len() >= want || looked >= SCAN_BUDGET {
                return Ok(found);
            }
        }
    }

    /// Job ids in a sorted set scored by time whose record says `query.status`: jobs
    /// waiting in `delayed` (oldest first), or cancelled ones in their index (newest
    /// first; an id whose record has expired is left out).
    async fn look_scored(
        &mut self,
        queue: &str,
        query: &JobQuery,
        from: Option<&str>,
        want: usize,
    ) -> Result<Found, AdminError> {
        let reverse = newest_first(query.status);
        // Cancelled and expired ids have their indexes; waiting jobs are in `delayed` (with
        // records) and `later` (without).
        let sets = if matches!(query.status, Status::Cancelled | Status::Expired) {
            vec![(self.keys.index(queue, query.status), true)]
        } else if query.status == Status::Waiting {
            // Jobs waiting for their parents, by when they were created.
            vec![(self.keys.waiting(queue), false)]
        } else {
            vec![
                (self.keys.delayed(queue), true),
                (self.keys.later(queue), false),
            ]
        };
        let mut found = Found::new();
        let mut after = from.map(parse_scored).transpose()?;
        let mut looked = 0;
        loop {
            let (members, exhausted) = self
                .scored_merged(&sets, after.as_ref(), query.since_ms, reverse)
                .await?;
            let records = if query.status == Status::Waiting {
                self.dependency_fields(queue, &members).await?
            } else {
                self.waiting_fields(queue, &members).await?
            };
            let members = members.into_iter().map(|(id, score, _)| (id, score));
            for ((id, score), (status, job_type, attempts, error)) in
                members.into_iter().zip(records)
            {
                looked += 1;
                let position = format!("{score}/{id}");
                found.looked_to = Some(position.clone());
                after = Some((score, id.clone()));
                if status.as_deref() != Some(query.status.as_str()) {
                    continue;
                }
                let row = JobRow {
                    queue: queue.to_owned(),
                    full_id: flotilla_proto::full_id(queue, &id),
                    id,
                    job_type: job_type.unwrap_or_default(),
                    status: query.status,
                    attempts: attempts.unwrap_or(0),
                    worker: None,
                    at_ms: score,
                    error: error.filter(|_| query.status != Status::Scheduled),
                };
                if matches_type(query, &row) {
                    found.rows.push((position, row));
                }
            }
            if exhausted {
                found.exhausted = true;
                return Ok(found);
            }
            if found.rows.len() >= want || looked >= SCAN_BUDGET {
                return Ok(found);
            }
        }
    }

    /// Completions in `done`, or deaths in the dead-letter stream, newest first.
    async fn look_ended_stream(
        &mut self,
        queue: &str,
        query: &JobQuery,
        from: Option<&str>,
        want: usize,
    ) -> Result<Found, AdminError> {
        let stream = match query.status {
            Status::Dead => self.keys.dead(queue),
            _ => self.keys.done(queue),
        };
        // A position is an entry id (go on after it), or `<entry id>~<n>` when a page
        // ended inside an entry that holds several completions (go on from its n+1th).
        let (mut end, mut skip) = match from.map(|p| (p, p.split_once('~'))) {
            None => ("+".to_owned(), None),
            Some((p, None)) => (format!("({p}"), None),
            Some((_, Some((entry, shown)))) => (
                entry.to_owned(),
                Some((entry.to_owned(), shown.parse::<usize>().unwrap_or(0))),
            ),
        };
        let start = query
            .since_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        let mut found = Found::new();
        let mut looked = 0;
        loop {
            // Several completions may share an entry (a worker's batch): `len` counts
            // entries, which is what tells whether the stream had more.
            let (entries, len) =
                browse::completions_range(&mut self.conn, &stream, &end, &start, STEP, true)
                    .await?;
            let mut shared: HashMap<String, usize> = HashMap::new();
            for entry in &entries {
                *shared.entry(entry.entry_id.clone()).or_default() += 1;
            }
            let mut nth: Option<(String, usize)> = None;
            for entry in entries {
                looked += 1;
                let k = match &nth {
                    Some((id, k)) if *id == entry.entry_id => k + 1,
                    _ => 1,
                };
                nth = Some((entry.entry_id.clone(), k));
                end = format!("({}", entry.entry_id);
                found.looked_to = Some(entry.entry_id.clone());
                if let Some((id, shown)) = &skip
                    && *id == entry.entry_id
                    && k <= *shown
                {
                    continue;
                }
                let mut row = entry_row(queue, &entry, query.status, 0);
                if query.status == Status::Dead {
                    row.error = text(&entry, field::ERROR);
                } else {
                    row.worker = text(&entry, field::WORKER);
                }
                if matches_type(query, &row) {
                    let position = if shared.get(&entry.entry_id).copied().unwrap_or(1) > 1 {
                        format!("{}~{k}", entry.entry_id)
                    } else {
                        entry.entry_id
                    };
                    found.rows.push((position, row));
                }
            }
            skip = None;
            if len < STEP {
                found.exhausted = true;
                return Ok(found);
            }
            if found.rows.len() >= want || looked >= SCAN_BUDGET {
                return Ok(found);
            }
        }
    }

    /// [`Self::scored_after`] over several sorted sets at once, merged in score order:
    /// each member with its score and whether its set holds jobs with records. A set that
    /// had more to give caps the merged page at its last member, so that none of its
    /// members between is skipped.
    async fn scored_merged(
        &mut self,
        sets: &[(String, bool)],
        after: Option<&(i64, String)>,
        since_ms: Option<i64>,
        reverse: bool,
    ) -> Result<(Vec<(String, i64, bool)>, bool), AdminError> {
        let mut merged = Vec::new();
        let mut cap: Option<(i64, String)> = None;
        for (key, with_records) in sets {
            let (members, exhausted) = self.scored_after(key, after, since_ms, reverse).await?;
            if !exhausted && let Some((id, score)) = members.last() {
                let last = (*score, id.clone());
                let nearer = match &cap {
                    None => true,
                    Some(cap) if reverse => last > *cap,
                    Some(cap) => last < *cap,
                };
                if nearer {
                    cap = Some(last);
                }
            }
            merged.extend(
                members
                    .into_iter()
                    .map(|(id, score)| (id, score, *with_records)),
            );
        }
        merged.sort_by(|a, b| {
            let order = (a.1, &a.0).cmp(&(b.1, &b.0));
            if reverse { order.reverse() } else { order }
        });
        if let Some(cap) = &cap {
            merged.retain(|(id, score, _)| {
                let at = (*score, id.clone());
                if reverse { at >= *cap } else { at <= *cap }
            });
        }
        Ok((merged, cap.is_none()))
    }

    /// Status, type, attempts and last error of waiting or cancelled jobs: from each one's
    /// record, or, in `later`, from the entry its id key holds.
    /// The type of each job waiting for its parents, from its `deps` hash; a member whose
    /// hash is gone (let go since) has no status.
    async fn dependency_fields(
        &mut self,
        queue: &str,
        members: &[(String, i64, bool)],
    ) -> Result<Vec<RecordFields>, AdminError> {
        let ids: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
        let types =
            flotilla_proto::dependencies::waiting_types(&mut self.conn, &self.keys, queue, &ids)
                .await?;
        Ok(types
            .into_iter()
            .map(|job_type| {
                let status = job_type
                    .as_ref()
                    .map(|_| Status::Waiting.as_str().to_owned());
                (status, job_type, Some(0), None)
            })
            .collect())
    }

    async fn waiting_fields(
        &mut self,
        queue: &str,
        members: &[(String, i64, bool)],
    ) -> Result<Vec<RecordFields>, AdminError> {
        let (with_records, without): (Vec<String>, Vec<String>) = (
            members
                .iter()
                .filter(|m| m.2)
                .map(|m| m.0.clone())
                .collect(),
            members
                .iter()
                .filter(|m| !m.2)
                .map(|m| m.0.clone())
                .collect(),
        );
        let fields = [field::STATUS, field::TYPE, field::ATTEMPTS, field::ERROR];
        let records: Vec<RecordFields> =
            browse::record_fields(&mut self.conn, &self.keys, queue, &with_records, &fields)
                .await?
                .into_iter()
                .map(|values| {
                    let mut values = values.into_iter();
                    let mut next = || values.next().flatten();
                    let (status, job_type, attempts, error) = (next(), next(), next(), next());
                    (
                        status,
                        job_type,
                        attempts.and_then(|a| a.parse().ok()),
                        error,
                    )
                })
                .collect();
        let waiting = read_waiting(&mut self.conn, &self.keys, queue, &without).await?;
        let (mut records, mut waiting) = (records.into_iter(), waiting.into_iter());
        Ok(members
            .iter()
            .map(|(_, _, with_record)| {
                if *with_record {
                    return records.next().unwrap_or((None, None, None, None));
                }
                match waiting.next().flatten() {
                    Some(waiting) => (
                        Some(waiting.status.as_str().to_owned()),
                        waiting.text(field::TYPE),
                        waiting
                            .text(field::ATTEMPTS)
                            .and_then(|a| a.parse().ok())
                            .or(Some(0)),
                        waiting.text(field::ERROR),
                    ),
                    None => (None, None, None, None),
                }
            })
            .collect())
    }

    /// The next members of a sorted set after `after` (score, member), in score order
    /// (descending when `reverse`), no earlier than `since_ms` in time; and whether the
    /// set has nothing past them.
    async fn scored_after(
        &mut self,
        key: &str,
        after: Option<&(i64, String)>,
        since_ms: Option<i64>,
        reverse: bool,
    ) -> Result<(Vec<(String, i64)>, bool), AdminError> {
        let since = since_ms.map_or_else(|| "-inf".to_owned(), |ms| ms.to_string());
        let (near, far) = match (after, since_ms) {
            (Some((score, _)), _) if reverse => (score.to_string(), since),
            (None, _) if reverse => ("+inf".to_owned(), since),
            (Some((score, _)), Some(ms)) => ((*score).max(ms).to_string(), "+inf".to_owned()),
            (Some((score, _)), None) => (score.to_string(), "+inf".to_owned()),
            (None, _) => (since, "+inf".to_owned()),
        };
        let mut offset = 0;
        let mut members = Vec::new();
        loop {
            let page =
                browse::scored_range(&mut self.conn, key, &near, &far, reverse, offset, STEP)
                    .await?;
            let len = page.len();
            offset += len;
            // Members sharing the cursor's score are ordered by name: skip those already
            // listed.
            members.extend(
                page.into_iter()
                    .map(|(member, score)| (member, score as i64))
                    .filter(|(member, score)| match after {
                        Some((at, last)) if score == at => {
                            if reverse {
                                member < last
                            } else {
                                member > last
                            }
                        }
                        _ => true,
                    }),
            );
            if len < STEP {
                return Ok((members, true));
            }
            if !members.is_empty() {
                return Ok((members, false));
            }
        }
    }

    /// Type and attempts, for entries that name a job of their own, from its record.
    async fn fill_from_records(
        &mut self,
        queue: &str,
        entries: &[StreamEntry],
        rows: &mut [JobRow],
    ) -> Result<(), AdminError> {
        let with_record: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].fields.contains_key(field::ID))
            .collect();
        if with_record.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = with_record.iter().map(|&i| rows[i].id.clone()).collect();
        let records = browse::record_fields(
            &mut self.conn,
            &self.keys,
            queue,
            &ids,
            &[field::TYPE, field::ATTEMPTS],
        )
        .await?;
        for (i, values) in with_record.into_iter().zip(records) {
            let mut values = values.into_iter();
            let job_type = values.next().flatten();
            let attempts: Option<u32> = values.next().flatten().and_then(|a| a.parse().ok());
            let row = &mut rows[i];
            if let Some(job_type) = job_type {
                row.job_type = job_type;
            }
            // A running job's record counts the attempt under way already.
            if let Some(attempts) = attempts {
                row.attempts = attempts;
            }
        }
        Ok(())
    }

    async fn xrange(
        &mut self,
        stream: &str,
        first: &str,
        second: &str,
        count: usize,
        reverse: bool,
    ) -> Result<Vec<StreamEntry>, AdminError> {
        Ok(browse::stream_range(&mut self.conn, stream, first, second, count, reverse).await?)
    }
}

/// A row from a stream entry: a job of its own id or of the entry's, with the attempts it
/// had spent plus `delivered` (a running entry's deliveries).
fn entry_row(queue: &str, entry: &StreamEntry, status: Status, delivered: u32) -> JobRow {
    // A completion leaves out `attempts` when it took one; an entry, when none was spent.
    let unsaid = u32::from(status == Status::Completed);
    let spent: u32 = text(entry, field::ATTEMPTS)
        .and_then(|a| a.parse().ok())
        .unwrap_or(unsaid);
    let id = text(entry, field::ID).unwrap_or_else(|| entry.entry_id.clone());
    JobRow {
        queue: queue.to_owned(),
        full_id: flotilla_proto::full_id(queue, &id),
        id,
        job_type: text(entry, field::TYPE).unwrap_or_default(),
        status,
        attempts: spent.saturating_add(delivered),
        worker: None,
        // A completion written again (its batch's entry lost another job's) says when
        // it finished; otherwise its entry's id does.
        at_ms: text(entry, field::FINISHED_AT)
            .filter(|_| status == Status::Completed)
            .and_then(|ms| ms.parse().ok())
            .or_else(|| flotilla_proto::entry_id_ms(&entry.entry_id))
            .unwrap_or(0),
        error: None,
    }
}

fn text(entry: &StreamEntry, name: &str) -> Option<String> {
    entry
        .fields
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn matches_type(query: &JobQuery, row: &JobRow) -> bool {
    query.job_type.as_ref().is_none_or(|t| *t == row.job_type)
}

/// Orders two XRANGE start bounds (`-`, `ms`, `id` or `(id`) by where they start.
fn compare_bounds(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(bound: &str) -> (i64, i64, bool) {
        if bound == "-" {
            return (i64::MIN, 0, false);
        }
        let (exclusive, id) = match bound.strip_prefix('(') {
            Some(id) => (true, id),
            None => (false, bound),
        };
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse().unwrap_or(i64::MIN),
            seq.parse().unwrap_or(0),
            exclusive,
        )
    }
    key(a).cmp(&key(b))
}

/// A sorted-set position `<score>/<member>`.
fn parse_scored(position: &str) -> Result<(i64, String), AdminError> {
    position
        .split_once('/')
        .and_then(|(score, member)| Some((score.parse().ok()?, member.to_owned())))
        .ok_or_else(|| AdminError::BadCursor {
            cursor: position.to_owned(),
            why: "a sorted-set position is <score>/<id>",
        })
}

/// `{queue}position{queue}position…` → positions by queue. Queue names hold no braces.
fn parse_cursor(cursor: &str) -> Result<HashMap<String, String>, AdminError> {
    let bad = |why| AdminError::BadCursor {
        cursor: cursor.to_owned(),
        why,
    };
    let mut positions = HashMap::new();
    for part in cursor.split('{').skip(1) {
        let (queue, position) = part
            .split_once('}')
            .ok_or_else(|| bad("a queue is not closed by }"))?;
        if queue.is_empty() || position.is_empty() {
            return Err(bad("each queue needs a name and a position"));
        }
        positions.insert(queue.to_owned(), position.to_owned());
    }
    if positions.is_empty() || !cursor.starts_with('{') {
        return Err(bad("it should start with {<queue>}"));
    }
    Ok(positions)
}

fn render_cursor(queues: &[String], positions: &HashMap<String, String>) -> String {
    queues
        .iter()
        .filter_map(|q| positions.get(q).map(|p| format!("{{{q}}}{p}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_was_written() {
        let queues = vec!["a".to_owned(), "b-1".to_owned()];
        let positions = HashMap::from([
            ("a".to_owned(), "1700000000000-3".to_owned()),
            ("b-1".to_owned(), "1700000000000/job:x/y".to_owned()),
        ]);
        let cursor = render_cursor(&queues, &positions);
        assert_eq!(cursor, "{a}1700000000000-3{b-1}1700000000000/job:x/y");
        assert_eq!(parse_cursor(&cursor).ok(), Some(positions));
    }

    #[test]
    fn bad_cursors_say_why() {
        for cursor in ["", "abc", "{a", "{}1-0", "{a}"] {
            assert!(
                matches!(parse_cursor(cursor), Err(AdminError::BadCursor { .. })),
                "{cursor:?} was accepted"
            );
        }
        assert!(parse_scored("12/x").is_ok());
        assert!(parse_scored("x/12").is_err());
    }

    #[test]
    fn start_bounds_order_by_id_then_exclusivity() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_bounds("-", "0"), Less);
        assert_eq!(compare_bounds("5-1", "(5-0"), Greater);
        assert_eq!(compare_bounds("(5-0", "5-0"), Greater);
        assert_eq!(compare_bounds("6", "(5-9"), Greater);
    }
}
