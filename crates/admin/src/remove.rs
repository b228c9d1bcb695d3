//! Removing a queue: a name enqueued by mistake (a typo) must not stay listed, alerted on
//! and counted for ever. Only a queue with nothing to run goes, and only when no live
//! worker serves it (it would list it again); its finished history goes with it.

use flotilla_proto::scripts::{self, RemoveQueue};
use serde::Serialize;

use crate::workers::WorkerState;
use crate::{Admin, AdminError};

/// What a removal took away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The queue removed.
    pub queue: String,
    /// The partitions (streams) deleted: the queue itself and its `#k` ones.
    pub partitions: Vec<String>,
}

impl Admin {
    /// Removes `queue` (every partition of it) from the fleet: its streams, delayed set,
    /// completions, dead jobs and indexes, and its name from the known queues, the paused
    /// set, the flow limits and the partition counts. Refused while a live worker serves it, or while any
    /// job waits, runs or is scheduled on it.
    pub async fn remove_queue(&mut self, queue: &str) -> Result<Removed, AdminError> {
        if flotilla_proto::split_partition(queue).1 != 0 {
            return Err(AdminError::NotAQueue(queue.to_owned()));
        }
        let partitions = self.streams(Some(queue)).await?;
        let serving: Vec<String> = self
            .workers()
            .await?
            .into_iter()
            .filter(|w| w.state == WorkerState::Alive && w.queues.iter().any(|q| q == queue))
            .map(|w| w.id)
            .collect();
        if !serving.is_empty() {
            return Err(AdminError::QueueServed {
                queue: queue.to_owned(),
                workers: serving,
            });
        }
        // Each partition is checked and deleted in one script: a job that arrives in
        // between makes it busy, never lost.
        for partition in &partitions {
            let removed = scripts::run(
                &mut self.conn,
                &self.keys,
                &RemoveQueue { queue: partition },
            )
            .await?;
            if !removed {
                return Err(AdminError::QueueNotEmpty(partition.clone()));
            }
        }
        flotilla_proto::forget_queue(&mut self.conn, &self.keys, queue, &partitions).await?;
        Ok(Removed {
            queue: queue.to_owned(),
            partitions,
        })
    }
}
