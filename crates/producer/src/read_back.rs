//! Reading a job back: its state now, and waiting for it to end. A waiter wakes when a
//! completion or a death is written to the job's queue (a blocking read on a connection
//! of its own), not by polling.

use std::time::{Duration, Instant};

use flotilla_proto::{
    DescribeError, JobName, JobRecord, SharedConnection, last_endings, queues_knowing, read_endings,
};
use serde::de::DeserializeOwned;

use crate::{Producer, ProducerError};

/// The longest one blocking read waits: a cancel writes no completion, so the job's state
/// is read again at least this often.
const LONGEST_BLOCK: Duration = Duration::from_secs(1);

/// How often a producer that cannot open a connection of its own (made from a bare
/// `ConnectionManager`) reads the job's state while it waits.
const POLL: Duration = Duration::from_millis(50);

impl Producer {
    /// The job `id` names as it is now, wherever it is kept: `None` when no job has it.
    /// `id` is a full id (`<queue>:<entry id>`, as [`crate::Enqueued::full_id`] gives
    /// it) or an own id, which is looked for in every queue in one round trip (an own id
    /// in several queues is an error: ask [`Producer::status_in`] instead).
    pub async fn status(&self, id: &str) -> Result<Option<JobRecord>, ProducerError> {
        match self.locate(id).await {
            Ok(queue) => self.status_in(&queue, id).await,
            Err(ProducerError::NoSuchJob(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Job `id` of `queue` (its id within the queue or its full id) as it is now.
    pub async fn status_in(
        &self,
        queue: &str,
        id: &str,
    ) -> Result<Option<JobRecord>, ProducerError> {
        let mut conn = self.conn.clone();
        flotilla_proto::describe_job(&mut conn, &self.keys, queue, id, &self.policy.defaults)
            .await
            .map_err(|e| match e {
                DescribeError::Redis(e) => e.into(),
                DescribeError::Proto(e) => e.into(),
            })
    }

    /// Waits until job `id` (as [`Producer::status`] takes it) has ended (completed, dead,
    /// cancelled or expired) and answers its record then; [`ProducerError::WaitTimedOut`]
    /// after `timeout`. A job waiting for its time, or to be retried, is waited for. The
    /// wait holds a connection of its own and wakes as soon as the job's completion or
    /// death is written; a cancel or an expiry is seen within a second.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobRecord, ProducerError> {
        let queue = self.locate(id).await?;
        let local = JobName::within(id, &queue).unwrap_or(id).to_owned();
        let deadline = Instant::now() + timeout;
        let mut blocking = self
            .conn
            .dedicated(LONGEST_BLOCK)
            .transpose()
            .map_err(ProducerError::from)?;
        let mut conn = self.conn.clone();
        let mut since = last_endings(&mut conn, &self.keys, &queue).await?;
        loop {
            let record = self.status_in(&queue, &local).await?;
            if let Some(record) = record
                .as_ref()
                .filter(|r| r.status.is_some_and(|s| s.is_terminal()))
            {
                return Ok(record.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProducerError::WaitTimedOut {
                    id: id.to_owned(),
                    waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    status: record.and_then(|r| r.status),
                });
            }
            let block = left.min(LONGEST_BLOCK);
            match blocking.as_mut() {
                Some(blocking) => {
                    since = self
                        .until_it_ends(blocking, &queue, &local, since, block)
                        .await?;
                }
                None => tokio::time::sleep(block.min(POLL)).await,
            }
        }
    }

    /// Waits for job `id` to complete and decodes its result as `T`; a job that died, was
    /// cancelled or expired is [`ProducerError::Failed`], with its last error.
    pub async fn wait_result<T: DeserializeOwned>(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<T, ProducerError> {
        let record = self.wait(id, timeout).await?;
        match record.status {
            Some(flotilla_proto::Status::Completed) => {
                let result = record.result.unwrap_or(serde_json::Value::Null);
                serde_json::from_value(result).map_err(|e| ProducerError::ResultType {
                    id: id.to_owned(),
                    reason: e.to_string(),
                })
            }
            status => Err(ProducerError::Failed {
                id: id.to_owned(),
                status: status.unwrap_or(flotilla_proto::Status::Dead),
                error: record.error,
            }),
        }
    }

    /// Waits for job `id` of type `J` to complete and decodes its result as the type's
    /// declared [`JobOutput::Output`](flotilla_proto::JobOutput::Output):
    /// `producer.wait_output::<Resize>(&enqueued.full_id(), timeout)`. Fails as
    /// [`Producer::wait_result`] does.
    pub async fn wait_output<J: flotilla_proto::JobOutput>(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<J::Output, ProducerError> {
        self.wait_result::<J::Output>(id, timeout).await
    }

    /// Blocks up to `block` for endings in `queue` after `since`, returning early when
    /// one of them is job `id`'s; answers where the streams stand then.
    async fn until_it_ends(
        &self,
        blocking: &mut SharedConnection,
        queue: &str,
        id: &str,
        mut since: flotilla_proto::Endings,
        block: Duration,
    ) -> Result<flotilla_proto::Endings, ProducerError> {
        let until = Instant::now() + block;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let block_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            if block_ms == 0 {
                return Ok(since);
            }
            let (after, ended) =
                read_endings(blocking, &self.keys, queue, &since, block_ms).await?;
            since = after;
            if ended.is_empty() || ended.iter().any(|ended| ended == id) {
                return Ok(since);
            }
        }
    }

    /// The queue job `id` is in: the one a full id names, or the one of the known queues
    /// that knows an own id.
    pub(crate) async fn locate(&self, id: &str) -> Result<String, ProducerError> {
        if let Some(queue) = JobName::parse(id).queue {
            return Ok(queue.to_owned());
        }
        let mut conn = self.conn.clone();
        let queues = flotilla_proto::known_queues(&mut conn, &self.keys).await?;
        let mut holding = queues_knowing(&mut conn, &self.keys, &queues, id).await?;
        match holding.len() {
            0 => Err(ProducerError::NoSuchJob(id.to_owned())),
            1 => Ok(holding.remove(0)),
            _ => Err(ProducerError::InSeveralQueues {
                id: id.to_owned(),
                queues: holding,
            }),
        }
    }
}
