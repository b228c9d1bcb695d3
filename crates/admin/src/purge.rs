//! Purging finished jobs older than a cutoff, or counting what a purge would delete.

use flotilla_proto::scripts::{self, Purge};
use flotilla_proto::{Status, browse};
use serde::Serialize;

use crate::{Admin, AdminError};

/// Records deleted per script call: one call never holds Redis for long.
const PER_CALL: usize = 1000;
/// Stream entries read per page when counting for a dry run.
const PAGE: usize = 5000;

/// What a purge deleted, or would delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCount {
    /// Job records.
    pub records: u64,
    /// Completions in `done` (several may share an entry) or dead letters (a fast-path
    /// completion has only this).
    pub entries: u64,
}

impl Admin {
    /// Deletes `status` jobs (completed or dead) that ended before `before_ms`, in
    /// `queue` or every queue; with `dry_run`, only counts them.
    pub async fn purge(
        &mut self,
        status: Status,
        before_ms: i64,
        queue: Option<&str>,
        dry_run: bool,
    ) -> Result<PurgeCount, AdminError> {
        let queues = self.streams(queue).await?;
        let mut count = PurgeCount::default();
        for queue in &queues {
            if dry_run {
                let found = self.count_before(queue, status, before_ms).await?;
                count.records += found.records;
                count.entries += found.entries;
                continue;
            }
            loop {
                let purge = Purge {
                    queue,
                    status,
                    before_ms,
                    limit: PER_CALL,
                };
                let reply = scripts::run(&mut self.conn, &self.keys, &purge).await?;
                count.records += reply.records;
                count.entries += reply.entries;
                if reply.left == 0 {
                    break;
                }
            }
        }
        Ok(count)
    }

    /// How many records and stream entries of `status` ended before `before_ms`.
    async fn count_before(
        &mut self,
        queue: &str,
        status: Status,
        before_ms: i64,
    ) -> Result<PurgeCount, AdminError> {
        let records =
            browse::indexed_before(&mut self.conn, &self.keys, queue, status, before_ms).await?;
        let stream = if status == Status::Dead {
            self.keys.dead(queue)
        } else {
            self.keys.done(queue)
        };
        let mut entries = 0u64;
        let mut start = "-".to_owned();
        loop {
            let end = format!("({before_ms}-0");
            // A `done` entry may hold several completions: each counts.
            let (page, held) =
                browse::completions_range(&mut self.conn, &stream, &start, &end, PAGE, false)
                    .await?;
            entries += page.len() as u64;
            match page.last() {
                Some(last) if held == PAGE => start = format!("({}", last.entry_id),
                _ => return Ok(PurgeCount { records, entries }),
            }
        }
    }
}
