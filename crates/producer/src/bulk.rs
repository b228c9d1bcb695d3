//! Bulk enqueue: jobs placed, checked and written in batches, each job the cheapest way it
//! can go (a fast-path pipeline per queue, one `enqueue_many` call per queue, the enqueue
//! script for a unique job), with one result per job in its place.

use flotilla_proto::scripts::{self, Enqueue, EnqueueMany, ScriptError};
use redis::aio::ConnectionLike;

use crate::enqueued::Enqueued;
use crate::fast::{enqueue_fast, is_fast};
use crate::producer::{Producer, outcome};
use crate::{NewJob, ProducerError};

/// Jobs per pipeline in bulk enqueue: large enough to amortise round trips, small enough
/// not to hold the server for long.
const BULK_BATCH: usize = 500;

/// Each job's id once checked (empty for a fast-path job), or why it cannot be enqueued.
type Checked = [Result<String, ProducerError>];

/// One result per job of a batch, filled in by the way of writing that took it.
type Slots = Vec<Option<Result<Enqueued, ProducerError>>>;

impl Producer {
    /// Writes `jobs` over `conn`: one result per job, in order. A job that fails its checks
    /// fails alone; a refusal of a whole call (a lost connection, Redis out of memory)
    /// fails the bulk.
    pub(crate) async fn write_many<C: ConnectionLike>(
        &self,
        conn: &mut C,
        mut jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued, ProducerError>>, ProducerError> {
        let mut misplaced = self.place_all(&mut jobs).await?.into_iter();
        let mut results = Vec::with_capacity(jobs.len());
        for batch in jobs.chunks(BULK_BATCH) {
            let checked: Vec<Result<String, ProducerError>> = batch
                .iter()
                .map(|job| match misplaced.next().flatten() {
                    Some(invalid) => Err(invalid),
                    None if !job.parents.is_empty() => Err(ProducerError::Invalid(
                        "a job that waits for parents is enqueued alone or in a flow, not in bulk"
                            .into(),
                    )),
                    None => self.check(job),
                })
                .collect();
            let mut slots: Slots = (0..batch.len()).map(|_| None).collect();
            self.write_fast(conn, batch, &checked, &mut slots).await?;
            self.write_without_unique(conn, batch, &checked, &mut slots)
                .await?;
            self.write_unique(conn, batch, &checked, &mut slots).await?;
            results.extend(slots.into_iter().zip(checked).map(|slot| match slot {
                (Some(result), _) => result,
                (None, Err(e)) => Err(e),
                (None, Ok(_)) => Err(ProducerError::Invalid(
                    "no reply for the enqueued job".into(),
                )),
            }));
        }
        Ok(results)
    }

    /// Places each job in a partition of its queue and lists the queues of those placed.
    /// Returns each job's placement error: a job named to a partition its queue lacks fails
    /// alone, like a bad payload.
    async fn place_all(
        &self,
        jobs: &mut [NewJob],
    ) -> Result<Vec<Option<ProducerError>>, ProducerError> {
        let mut conn = self.conn.clone();
        let mut misplaced = Vec::with_capacity(jobs.len());
        for job in jobs.iter_mut() {
            misplaced.push(
                match self.placement.place(&mut conn, &self.keys, job).await {
                    Ok(()) => None,
                    Err(invalid @ ProducerError::Invalid(_)) => Some(invalid),
                    Err(other) => return Err(other),
                },
            );
        }
        let mut queues: Vec<&str> = jobs
            .iter()
            .zip(&misplaced)
            .filter(|(_, misplaced)| misplaced.is_none())
            .map(|(job, _)| job.queue.as_str())
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            self.register_queue(queue).await?;
        }
        Ok(misplaced)
    }

    /// Fast-path jobs (no id, unique key or time), each queue's in one pipeline.
    async fn write_fast<C: ConnectionLike>(
        &self,
        conn: &mut C,
        batch: &[NewJob],
        checked: &Checked,
        slots: &mut Slots,
    ) -> Result<(), ProducerError> {
        let fast = (0..batch.len()).filter(|&i| checked[i].is_ok() && is_fast(&batch[i]));
        for (queue, indices) in by_queue(batch, fast) {
            let jobs: Vec<&NewJob> = indices.iter().map(|&i| &batch[i]).collect();
            let written =
                enqueue_fast(conn, &self.keys, &self.policy, &self.depths, queue, &jobs).await?;
            for (&i, result) in indices.iter().zip(written) {
                slots[i] = Some(result);
            }
        }
        Ok(())
    }

    /// Jobs left without a unique key, through one `enqueue_many` call per queue.
    async fn write_without_unique<C: ConnectionLike>(
        &self,
        conn: &mut C,
        batch: &[NewJob],
        checked: &Checked,
        slots: &mut Slots,
    ) -> Result<(), ProducerError> {
        let left = (0..batch.len()).filter(|&i| {
            checked[i].is_ok()
                && slots[i].is_none()
                && batch[i].unique.is_none()
                && batch[i].debounce.is_none()
        });
        let many = by_queue(batch, left);
        if many.is_empty() {
            return Ok(());
        }
        let calls: Vec<EnqueueMany> = many
            .iter()
            .map(|(queue, indices)| EnqueueMany {
                queue,
                max_queue_len: self.policy.limits.max_queue_len,
                jobs: indices
                    .iter()
                    .filter_map(|&i| {
                        let id = checked[i].as_ref().ok()?;
                        Some(self.binding(&batch[i], id).item())
                    })
                    .collect(),
            })
            .collect();
        let replies = scripts::run_all(conn, &self.keys, &calls).await?;
        for ((queue, indices), reply) in many.iter().zip(replies) {
            // A refusal of the whole call (out of memory, say) fails the bulk, as a lost
            // connection does.
            let mut per_job = reply?.into_iter();
            for &i in indices {
                let reply = per_job.next().unwrap_or_else(|| {
                    too_few_replies("enqueue_many returned fewer replies than jobs")
                });
                if let Ok(id) = &checked[i] {
                    slots[i] = Some(outcome(reply, id.clone(), queue));
                }
            }
        }
        Ok(())
    }

    /// The rest (unique jobs) through the enqueue script, one call each, pipelined.
    async fn write_unique<C: ConnectionLike>(
        &self,
        conn: &mut C,
        batch: &[NewJob],
        checked: &Checked,
        slots: &mut Slots,
    ) -> Result<(), ProducerError> {
        let scripted: Vec<usize> = (0..batch.len())
            .filter(|&i| checked[i].is_ok() && slots[i].is_none() && !is_fast(&batch[i]))
            .collect();
        let bindings: Vec<Enqueue> = scripted
            .iter()
            .filter_map(|&i| {
                checked[i]
                    .as_ref()
                    .ok()
                    .map(|id| self.binding(&batch[i], id))
            })
            .collect();
        if bindings.is_empty() {
            return Ok(());
        }
        let mut replies = scripts::run_all(conn, &self.keys, &bindings)
            .await?
            .into_iter();
        for &i in &scripted {
            let reply = replies.next().unwrap_or_else(|| {
                too_few_replies("pipeline returned fewer replies than commands")
            });
            if let Ok(id) = &checked[i] {
                slots[i] = Some(outcome(reply, id.clone(), &batch[i].queue));
            }
        }
        Ok(())
    }
}

/// `indices` of `batch` grouped by their job's queue, queues in the order first met.
fn by_queue(batch: &[NewJob], indices: impl Iterator<Item = usize>) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for i in indices {
        let queue = batch[i].queue.as_str();
        match groups.iter_mut().find(|(q, _)| *q == queue) {
            Some((_, group)) => group.push(i),
            None => groups.push((queue, vec![i])),
        }
    }
    groups
}

/// The reply of a job a pipeline answered no reply for.
fn too_few_replies<T>(what: &'static str) -> Result<T, ScriptError> {
    Err(ScriptError::Redis(redis::RedisError::from((
        redis::ErrorKind::Client,
        what,
    ))))
}
