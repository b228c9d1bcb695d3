//! What the fetch loop, the handler tasks and the background loops of one worker share:
//! its connection, settings, handlers, in-flight jobs, the channel to the completer, and
//! the served and paused queues. A leaf: it names the parts' types and calls none of them.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fetch::served::Served;
use crate::flow::Flow;
use crate::metrics::{JobSeries, UNKNOWN_TYPE, WorkerMetrics};
use crate::run::completer::Completion;
use crate::run::inflight::InFlight;
use crate::run::slots::RunPace;
use crate::run::start_line::StartLine;
use crate::{Registry, WorkerConfig};

/// What the fetch loop and the handler tasks share.
pub(crate) struct Shared {
    pub conn: SharedConnection,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub registry: Registry,
    pub worker_id: String,
    pub inflight: InFlight,
    pub completions: mpsc::Sender<Completion>,
    /// Fired when the shutdown grace period ends: running jobs are handed back.
    pub handback: CancellationToken,
    pub tracker: TaskTracker,
    /// How quickly handlers finish: the fetch loop fetches ahead only while they are quick.
    pub pace: RunPace,
    /// Held by the batch whose entries are waiting for slots, so batches start in order.
    pub start_line: Arc<StartLine>,
    pub metrics: Arc<WorkerMetrics>,
    /// The queues served and their partitions.
    pub served: Arc<Served>,
    /// Queues paused by operators, read before the first fetch and refreshed by the
    /// promoter.
    pub paused: Arc<RwLock<HashSet<String>>>,
    /// The flow limits of the served queues and what this worker holds of them.
    pub flow: Arc<Flow>,
}

impl Shared {
    /// Whether the queue `stream` belongs to (the queue, or one of its partitions) is
    /// paused as far as this worker knows.
    pub(crate) fn is_paused(&self, stream: &str) -> bool {
        self.paused
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(flotilla_proto::queue_of_partition(stream))
    }

    /// The metrics of `queue` and `job_type`; a type without a handler here is counted
    /// as unknown, so producers cannot grow the series without bound.
    pub(crate) fn series(&self, queue: &str, job_type: &str) -> Arc<JobSeries> {
        let job_type = if self.registry.handles(job_type) {
            job_type
        } else {
            UNKNOWN_TYPE
        };
        // Partitions of one queue share its series.
        self.metrics
            .series(flotilla_proto::queue_of_partition(queue), job_type)
    }
}
