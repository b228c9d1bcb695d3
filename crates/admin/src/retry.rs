//! Retrying dead jobs: one by id, or every dead-letter entry that matches a filter, in
//! pipelined batches.

use flotilla_proto::scripts::{self, Retry, RetryReply};
use serde::Serialize;

use crate::{Admin, AdminError};

/// Retries sent to Redis in one pipeline.
const BATCH: usize = 500;
/// Dead-letter entries read per XRANGE call.
const PAGE: usize = 1000;

/// Which dead jobs to retry.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    /// Only this queue's; every queue's when `None`.
    pub queue: Option<String>,
    /// Only jobs of this type.
    pub job_type: Option<String>,
    /// Only jobs dead-lettered at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
}

/// What a retry of many did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetryCount {
    /// Put back on their streams.
    pub retried: usize,
    /// No longer dead (retried meanwhile, say) or gone: left as they were.
    pub skipped: usize,
}

/// One dead-letter entry: a job that died, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// The queue (or partition) whose dead-letter stream holds it.
    pub queue: String,
    /// Its entry id in the dead-letter stream, which is also its time of death.
    pub entry_id: String,
    /// The job's id within its queue.
    pub job_id: String,
    /// The job's type; empty when the entry does not say.
    #[serde(rename = "type")]
    pub job_type: String,
    /// Attempts the job had made; 0 when the entry does not say.
    pub attempts: u32,
    /// The error it died with; empty when the entry does not say.
    pub error: String,
    /// When it died, ms since the Unix epoch.
    pub failed_at_ms: i64,
}

impl Admin {
    /// Retries the dead job `job_id` of `queue` (its id within the queue or its full id).
    pub async fn retry(&mut self, queue: &str, job_id: &str) -> Result<RetryReply, AdminError> {
        let job_id = flotilla_proto::JobName::within(job_id, queue)
            .ok_or_else(|| AdminError::NoSuchJob(job_id.to_owned()))?;
        let dead_entry = self.dead_entry_of(queue, job_id).await?;
        let retry = Retry {
            queue,
            job_id,
            dead_entry: dead_entry.as_deref(),
        };
        Ok(scripts::run(&mut self.conn, &self.keys, &retry).await?)
    }

    /// How many dead-letter entries match `filter`, for a confirmation before retrying.
    pub async fn count_dead(&mut self, filter: &DeadFilter) -> Result<usize, AdminError> {
        let mut count = 0;
        for queue in self.filter_queues(filter).await? {
            count += self.dead_letters(&queue, filter).await?.len();
        }
        Ok(count)
    }

    /// Retries every dead job whose dead-letter entry matches `filter`; `progress` hears
    /// how many are done after each batch.
    pub async fn retry_dead(
        &mut self,
        filter: &DeadFilter,
        mut progress: impl FnMut(usize),
    ) -> Result<RetryCount, AdminError> {
        let mut count = RetryCount::default();
        for queue in self.filter_queues(filter).await? {
            let letters = self.dead_letters(&queue, filter).await?;
            for batch in letters.chunks(BATCH) {
                let retries: Vec<Retry> = batch
                    .iter()
                    .map(|d| Retry {
                        queue: &queue,
                        job_id: &d.job_id,
                        dead_entry: Some(&d.entry_id),
                    })
                    .collect();
                for reply in scripts::run_all(&mut self.conn, &self.keys, &retries).await? {
                    match reply? {
                        RetryReply::Retried => count.retried += 1,
                        RetryReply::Missing | RetryReply::NotDead(_) => count.skipped += 1,
                    }
                }
                progress(count.retried + count.skipped);
            }
        }
        Ok(count)
    }

    async fn filter_queues(&mut self, filter: &DeadFilter) -> Result<Vec<String>, AdminError> {
        self.streams(filter.queue.as_deref()).await
    }

    /// The most recent dead-letter entries that match `filter`, newest first, at most
    /// `limit` of them.
    pub async fn dead_list(
        &mut self,
        filter: &DeadFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, AdminError> {
        let mut letters = Vec::new();
        for queue in self.filter_queues(filter).await? {
            letters.extend(self.dead_letters(&queue, filter).await?);
        }
        letters.sort_by_key(|d| std::cmp::Reverse(d.failed_at_ms));
        letters.truncate(limit);
        Ok(letters)
    }

    /// The queue's dead-letter entries that match `filter`, oldest first.
    pub(crate) async fn dead_letters(
        &mut self,
        queue: &str,
        filter: &DeadFilter,
    ) -> Result<Vec<DeadLetter>, AdminError> {
        let dead = self.keys.dead(queue);
        let mut letters = Vec::new();
        // Entry ids are dead-lettering times: `since` starts the range.
        let mut start = filter
            .since_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        loop {
            let page = flotilla_proto::browse::stream_range(
                &mut self.conn,
                &dead,
                &start,
                "+",
                PAGE,
                false,
            )
            .await?;
            let len = page.len();
            for entry in page {
                start = format!("({}", entry.entry_id);
                let fields = entry.text_fields();
                let Some(job_id) = fields.get("id") else {
                    continue;
                };
                if filter
                    .job_type
                    .as_ref()
                    .is_some_and(|t| fields.get("type") != Some(t))
                {
                    continue;
                }
                let number = |field: &str| fields.get(field).and_then(|v| v.parse::<i64>().ok());
                letters.push(DeadLetter {
                    queue: queue.to_owned(),
                    job_id: job_id.clone(),
                    job_type: fields.get("type").cloned().unwrap_or_default(),
                    attempts: number("attempts")
                        .and_then(|a| u32::try_from(a).ok())
                        .unwrap_or(0),
                    error: fields.get("error").cloned().unwrap_or_default(),
                    // Its entry id is its time of death too, should the field be missing.
                    failed_at_ms: number("failed_at")
                        .or_else(|| flotilla_proto::entry_id_ms(&entry.entry_id))
                        .unwrap_or(0),
                    entry_id: entry.entry_id,
                });
            }
            if len < PAGE {
                return Ok(letters);
            }
        }
    }
}
