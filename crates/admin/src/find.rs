//! Finding one job by its id or the first characters of it, wherever it is kept: its
//! record, or for a fast-path job its stream entry or its completion.

use flotilla_proto::JobRecord;

use crate::{Admin, AdminError};

/// Matches listed when a prefix is ambiguous.
const AMBIGUOUS_SHOWN: usize = 10;
/// Keys asked for per SCAN step while matching a prefix.
const SCAN_COUNT: usize = 1000;

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
        let records: Vec<(String, String)> = self
            .records_with_prefix(id, &queues)
            .await?
            .into_iter()
            .filter(|(q, _)| queues.contains(q))
            .collect();
        // Fast-path jobs have no record: their ids are entry ids, found on their streams
        // and among recent completions.
        let mut fast = Vec::new();
        for queue in &queues {
            for job in flotilla_proto::fast_ids_with_prefix(
                &mut self.conn,
                &self.keys,
                queue,
                id,
                AMBIGUOUS_SHOWN + 1,
            )
            .await?
            {
                if !records.iter().any(|(_, j)| *j == job) {
                    fast.push((queue.clone(), job));
                }
            }
        }
        let mut found = records.into_iter().chain(fast);
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

    /// (queue, id) of records whose id starts with `prefix`, a few more than are shown:
    /// one SCAN over every queue, or on a cluster, where a SCAN covers one node, one per
    /// queue sent to the queue's node.
    async fn records_with_prefix(
        &mut self,
        prefix: &str,
        queues: &[String],
    ) -> Result<Vec<(String, String)>, AdminError> {
        let patterns: Vec<String> = if self.conn.is_cluster() {
            queues
                .iter()
                .map(|queue| self.keys.queue_job_scan_pattern(queue, prefix))
                .collect()
        } else {
            vec![self.keys.job_scan_pattern(prefix)]
        };
        let mut found = Vec::new();
        for pattern in &patterns {
            self.scan_records(pattern, &mut found).await?;
            if found.len() > AMBIGUOUS_SHOWN {
                break;
            }
        }
        Ok(found)
    }

    /// Adds (queue, id) of the records matching `pattern` to `found`, until it holds more
    /// than are shown.
    async fn scan_records(
        &mut self,
        pattern: &str,
        found: &mut Vec<(String, String)>,
    ) -> Result<(), AdminError> {
        let namespace = format!("{}:{{", self.keys.namespace());
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn)
                .await?;
            // `<namespace>:{<queue>}:job:<id>`
            found.extend(batch.iter().filter_map(|key| {
                let rest = key.strip_prefix(&namespace)?;
                let (queue, id) = rest.split_once("}:job:")?;
                Some((queue.to_owned(), id.to_owned()))
            }));
            cursor = next;
            if cursor == 0 || found.len() > AMBIGUOUS_SHOWN {
                return Ok(());
            }
        }
    }
}
