//! Finding one job by its id or the first characters of it, wherever it is kept: its
//! record, or for a fast-path job its stream entry or its completion.

use flotilla_proto::JobRecord;

use crate::{Admin, AdminError};

/// Matches listed when a prefix is ambiguous.
const AMBIGUOUS_SHOWN: usize = 10;

impl Admin {
    /// The job with this id, or the only job whose id starts with it, in `queue` or in
    /// any queue. Fast-path ids are entry ids, unique only within one queue: an id found
    /// in two queues is an error asking for the queue.
    pub async fn find_job(
        &mut self,
        id: &str,
        queue: Option<&str>,
    ) -> Result<JobRecord, AdminError> {
        if id.trim().is_empty() {
            return Err(AdminError::EmptyId);
        }
        let queues = self.streams(queue).await?;
        let mut exact = Vec::new();
        for queue in &queues {
            if let Some(record) = self.describe(queue, id).await? {
                exact.push(record);
            }
        }
        if exact.len() > 1 {
            return Err(AdminError::InSeveralQueues {
                id: id.to_owned(),
                queues: exact.into_iter().map(|r| r.queue).collect(),
            });
        }
        if let Some(record) = exact.pop() {
            return Ok(record);
        }
        // Jobs with records are found in the queue's own indexes; fast-path jobs, which
        // have none, by their entry ids on the stream and among recent completions. Each
        // search has a fixed budget, so a look-up costs the same however large Redis is.
        let mut matches: Vec<(String, String)> = Vec::new();
        let mut incomplete = false;
        for queue in &queues {
            let records = flotilla_proto::record_ids_with_prefix(
                &mut self.conn,
                &self.keys,
                queue,
                id,
                AMBIGUOUS_SHOWN + 1,
            )
            .await?;
            incomplete |= records.incomplete;
            let fast = flotilla_proto::fast_ids_with_prefix(
                &mut self.conn,
                &self.keys,
                queue,
                id,
                AMBIGUOUS_SHOWN + 1,
            )
            .await?;
            for job in records.ids.into_iter().chain(fast) {
                if !matches.iter().any(|(q, j)| q == queue && *j == job) {
                    matches.push((queue.clone(), job));
                }
            }
        }
        if incomplete && matches.len() <= 1 {
            // A match may lie past where the search stopped: one found is not "the only".
            return Err(AdminError::SearchStopped {
                prefix: id.to_owned(),
                budget: flotilla_proto::PREFIX_SEARCH_BUDGET,
            });
        }
        let mut found = matches.into_iter();
        match (found.next(), found.next()) {
            (None, _) => Err(AdminError::NoSuchJob(id.to_owned())),
            (Some((queue, job)), None) => self
                .describe(&queue, &job)
                .await?
                .ok_or(AdminError::NoSuchJob(job)),
            (Some(first), Some(second)) => Err(AdminError::Ambiguous {
                prefix: id.to_owned(),
                matches: [first, second]
                    .into_iter()
                    .chain(found)
                    .take(AMBIGUOUS_SHOWN)
                    .map(|(_, job)| job)
                    .collect(),
            }),
        }
    }

    /// The job `id` of `queue`, exactly as named, wherever it is kept. It costs a few
    /// reads whatever the id (never a search by prefix), so it is what a page or an API
    /// call that names a job asks.
    pub async fn job(&mut self, queue: &str, id: &str) -> Result<JobRecord, AdminError> {
        if id.trim().is_empty() {
            return Err(AdminError::EmptyId);
        }
        self.describe(queue, id)
            .await?
            .ok_or_else(|| AdminError::NoSuchJob(id.to_owned()))
    }

    /// `job_id` of `queue`, wherever it is kept.
    pub(crate) async fn describe(
        &mut self,
        queue: &str,
        job_id: &str,
    ) -> Result<Option<JobRecord>, AdminError> {
        let defaults = &self.defaults;
        Ok(
            flotilla_proto::describe_job(&mut self.conn, &self.keys, queue, job_id, defaults)
                .await?,
        )
    }
}
