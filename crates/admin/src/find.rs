//! Finding one job by its id or the first characters of it, wherever it is kept: its
//! record, or for a fast-path job its stream entry or its completion.

use flotilla_proto::{JobName, JobRecord};

use crate::{Admin, AdminError};

/// Matches listed when a prefix is ambiguous.
const AMBIGUOUS_SHOWN: usize = 10;

impl Admin {
    /// The job with this id, or the only job whose id starts with it, in `queue` or in
    /// any queue. A full id (`<queue>:<entry id>`) names its queue, so it is looked up
    /// there alone, in a few reads. A bare entry id is unique only within one queue, and
    /// an own id within one queue: one found in two queues is an error naming them.
    pub async fn find_job(
        &mut self,
        id: &str,
        queue: Option<&str>,
    ) -> Result<JobRecord, AdminError> {
        if id.trim().is_empty() {
            return Err(AdminError::EmptyId);
        }
        if JobName::parse(id).queue.is_some() {
            return self.exact_job(id, queue).await;
        }
        let queues = self.streams(queue).await?;
        match self.exact_in(&queues, id).await {
            Err(AdminError::NoSuchJob(_)) => {}
            found => return found,
        }
        // The first characters of a full id, `<queue>:<start of its entry id>`, search
        // that queue alone.
        let (queues, id) = match id.rsplit_once(':') {
            Some((named, start)) if queues.iter().any(|q| q == named) && !start.is_empty() => {
                (vec![named.to_owned()], start)
            }
            _ => (queues, id),
        };
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
                    .map(|(queue, job)| flotilla_proto::full_id(&queue, &job))
                    .collect(),
            }),
        }
    }

    /// The job this id names exactly, never a search by prefix: a full id
    /// (`<queue>:<entry id>`) in its one queue, an own id in every queue at once (or in
    /// `queue`, when given). It costs a few reads, so it is what a page or an API call that
    /// names a job asks.
    pub async fn exact_job(
        &mut self,
        id: &str,
        queue: Option<&str>,
    ) -> Result<JobRecord, AdminError> {
        if id.trim().is_empty() {
            return Err(AdminError::EmptyId);
        }
        if let Some(named) = JobName::parse(id).queue {
            let within = queue.is_none_or(|given| {
                given == named || flotilla_proto::queue_of_partition(named) == given
            });
            return match within {
                true => self.job(named, id).await,
                false => Err(AdminError::NoSuchJob(id.to_owned())),
            };
        }
        let queues = self.streams(queue).await?;
        self.exact_in(&queues, id).await
    }

    /// Job `id` (an own id or a bare entry id) in the one of `queues` that holds it.
    async fn exact_in(&mut self, queues: &[String], id: &str) -> Result<JobRecord, AdminError> {
        // An own id is looked for in every queue at once; an entry id, which names a job
        // in several places a probe cannot see at once (the stream, the pending list,
        // `done`), queue by queue.
        let holding = if flotilla_proto::is_entry_id(id) {
            queues.to_vec()
        } else {
            flotilla_proto::queues_knowing(&mut self.conn, &self.keys, queues, id).await?
        };
        let mut exact = Vec::new();
        for queue in &holding {
            if let Some(record) = self.describe(queue, id).await? {
                exact.push(record);
            }
        }
        if exact.len() > 1 {
            return Err(AdminError::InSeveralQueues {
                id: id.to_owned(),
                full_ids: exact
                    .iter()
                    .map(|r| match r.full_id() {
                        // The same own id in two queues: the queue tells them apart.
                        own if own == r.id => format!("{own} --queue {}", r.queue),
                        full => full,
                    })
                    .collect(),
            });
        }
        exact
            .pop()
            .ok_or_else(|| AdminError::NoSuchJob(id.to_owned()))
    }

    /// The job `id` of `queue`, exactly as named (its id within the queue or its full id),
    /// wherever it is kept. It costs a few reads whatever the id (never a search by
    /// prefix), so it is what a page or an API call that names a job asks.
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
        let defaults = &self.policy.defaults;
        Ok(
            flotilla_proto::describe_job(&mut self.conn, &self.keys, queue, job_id, defaults)
                .await?,
        )
    }
}
