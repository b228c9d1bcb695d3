//! The streams a worker reads: each queue it serves, split into that queue's partitions.
//! The count is the fleet's, kept in Redis: raised to the worker's own setting when it
//! starts, and read again every promote interval, so a count raised by an operator or
//! another worker is served without a restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use flotilla_proto::partition::{
    raise_partition_count, read_partition_count, read_partition_counts,
};
use flotilla_proto::{Keys, SharedConnection, partition_names};

use crate::QueueWeight;

/// One queue a worker serves, with the names of its partitions, partition 0 first.
#[derive(Debug, Clone)]
pub(crate) struct ServedQueue {
    pub weight: QueueWeight,
    pub partitions: Vec<String>,
}

/// The queues a worker serves and their partitions as last read.
#[derive(Debug)]
pub(crate) struct Served {
    queues: RwLock<Arc<Vec<ServedQueue>>>,
    /// Raised on every change, so the fetch loop knows to set up new consumer groups.
    version: AtomicU64,
}

impl Served {
    /// The configured queues, one partition each until the counts are read.
    pub(crate) fn new(config: &[QueueWeight]) -> Self {
        let queues = config
            .iter()
            .map(|weight| ServedQueue {
                weight: weight.clone(),
                partitions: vec![weight.name.clone()],
            })
            .collect();
        Self {
            queues: RwLock::new(Arc::new(queues)),
            version: AtomicU64::new(0),
        }
    }

    /// The queues as they are now.
    pub(crate) fn current(&self) -> Arc<Vec<ServedQueue>> {
        Arc::clone(&self.queues.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every partition of every served queue.
    pub(crate) fn streams(&self) -> Vec<String> {
        self.current()
            .iter()
            .flat_map(|queue| queue.partitions.iter().cloned())
            .collect()
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Raises each queue's stored count to what this worker was configured with, and
    /// serves the count stored (another worker or an operator may have set more).
    pub(crate) async fn raise(
        &self,
        conn: &mut SharedConnection,
        keys: &Keys,
    ) -> redis::RedisResult<()> {
        let mut counts = Vec::new();
        for queue in self.current().iter() {
            let wanted = queue.weight.partitions;
            counts.push(if wanted > 1 {
                raise_partition_count(conn, keys, &queue.weight.name, wanted).await?
            } else {
                read_partition_count(conn, keys, &queue.weight.name).await?
            });
        }
        self.serve_counts(&counts);
        Ok(())
    }

    /// Reads the stored counts again, in one call; a raised one is served from now on.
    pub(crate) async fn refresh(
        &self,
        conn: &mut SharedConnection,
        keys: &Keys,
    ) -> redis::RedisResult<()> {
        let current = self.current();
        let queues: Vec<&str> = current.iter().map(|q| q.weight.name.as_str()).collect();
        let counts = read_partition_counts(conn, keys, &queues).await?;
        self.serve_counts(&counts);
        Ok(())
    }

    /// Serves `counts[i]` partitions of queue `i`, never fewer than now: entries already
    /// in a partition must still be read.
    fn serve_counts(&self, counts: &[u16]) {
        let current = self.current();
        let grown: Vec<ServedQueue> = current
            .iter()
            .zip(counts)
            .map(|(queue, &count)| {
                let count = usize::from(count).max(queue.partitions.len());
                ServedQueue {
                    weight: queue.weight.clone(),
                    partitions: partition_names(&queue.weight.name, count as u16),
                }
            })
            .collect();
        let changed = grown
            .iter()
            .zip(current.iter())
            .any(|(new, old)| new.partitions.len() != old.partitions.len());
        if !changed {
            return;
        }
        for queue in &grown {
            tracing::info!(queue = %queue.weight.name, partitions = queue.partitions.len(),
                "serving the queue's partitions");
        }
        *self.queues.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(grown);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}
