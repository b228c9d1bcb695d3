//! Which partition of its queue a job goes to: by its group, unique key or debounce key,
//! else by its id, so that every enqueue of one group, key or id meets the same group
//! line, lock, waiting job and record; a fast-path job, which has none, goes to each
//! partition in turn.

use std::sync::atomic::{AtomicUsize, Ordering};

use flotilla_proto::{
    Keys, PartitionCounts, SharedConnection, partition_for, partition_name, split_partition,
};

use crate::{NewJob, ProducerError};

/// Partition counts as last read, and whose turn the next fast-path job is.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    counts: PartitionCounts,
    turn: AtomicUsize,
}

impl Placement {
    /// Renames `job.queue` to the partition the job goes to. A queue of one partition is
    /// left as it is, and so is a partition's own name, when the queue has that partition:
    /// a job in a partition past the count would wait where no worker reads.
    pub(crate) async fn place(
        &self,
        conn: &mut SharedConnection,
        keys: &Keys,
        job: &mut NewJob,
    ) -> Result<(), ProducerError> {
        let (queue, named) = split_partition(&job.queue);
        let count = self.counts.count(conn, keys, queue).await?;
        if named != 0 {
            if named >= count {
                return Err(ProducerError::Invalid(format!(
                    "{} names partition {named} of {queue}, which has {count}",
                    job.queue
                )));
            }
            return Ok(());
        }
        if count <= 1 {
            return Ok(());
        }
        // Jobs that share a group, a unique key or a debounce key share a partition, where
        // the group's line and window (or that key) live. A group comes first: a unique or
        // debounced job of a group waits its turn in its group's partition, and its key
        // is unique there.
        let key = job
            .group
            .as_ref()
            .or(job.unique.as_ref().map(|(unique_key, _)| unique_key))
            .or(job
                .debounce
                .as_ref()
                .map(|(debounce_key, _, _)| debounce_key));
        let index = match (key, &job.id) {
            (Some(key), _) => partition_for(key, count),
            (None, Some(id)) => partition_for(id, count),
            (None, None) => {
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                (turn % usize::from(count)) as u16
            }
        };
        job.queue = partition_name(&job.queue, index);
        Ok(())
    }

    /// Every partition `id` of `queue` may be in, the one its id places it in first.
    pub(crate) async fn candidates(
        &self,
        conn: &mut SharedConnection,
        keys: &Keys,
        queue: &str,
        id: &str,
    ) -> redis::RedisResult<Vec<String>> {
        if split_partition(queue).1 != 0 {
            return Ok(vec![queue.to_owned()]);
        }
        let count = self.counts.count(conn, keys, queue).await?;
        let first = partition_for(id, count);
        Ok(std::iter::once(first)
            .chain((0..count).filter(|&i| i != first))
            .map(|index| partition_name(queue, index))
            .collect())
    }
}
