//! One blocking read on one stream of a Redis Cluster node, run as a task of its own:
//! never cancelled, since an entry it is handed already sits in this worker's pending
//! list, and always reporting back that it returned, even if it panics, so that its
//! node is waited on again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::Shutdown;
use crate::fetch::connections::{BlockingReads, HeldConnection};
use crate::fetch::reads::{self as fetch, FetchError};
use crate::run::dispatch::{self, Batch};
use crate::shared::Shared;

/// A node read that returned: its node, and whether it brought an entry, or its error.
pub(crate) struct ReadDone {
    pub node: String,
    pub result: Result<bool, FetchError>,
}

/// One blocking read, and what it needs to start what it delivers.
pub(crate) struct NodeRead {
    pub shared: Arc<Shared>,
    pub reads: BlockingReads,
    pub stream: String,
    /// The slot or the ticket it took along (one of the two).
    pub permits: Vec<OwnedSemaphorePermit>,
    pub ahead: Vec<OwnedSemaphorePermit>,
    pub slots: Arc<Semaphore>,
    pub shutdown: Shutdown,
    pub block: Duration,
}

impl NodeRead {
    /// Spawns the read on the worker's tracker (so draining waits for it); `done` hears
    /// of it when it returns.
    pub(crate) fn spawn(self, node: String, done: mpsc::UnboundedSender<ReadDone>) {
        let tracker = self.shared.tracker.clone();
        tracker.spawn(async move {
            let mut report = Report {
                done,
                node,
                result: None,
            };
            report.result = Some(self.run().await);
        });
    }

    async fn run(self) -> Result<bool, FetchError> {
        let shared = &self.shared;
        let sent = Instant::now();
        let mut conn = HeldConnection::new(self.reads);
        let fetched = fetch::read_blocking(
            &mut conn,
            &shared.keys,
            &[&self.stream],
            &shared.worker_id,
            1,
            self.block.as_millis() as u64,
        )
        .await?;
        if fetched.is_empty() {
            return Ok(false);
        }
        let place = (fetched.len() > self.permits.len()).then(|| shared.start_line.join());
        let batch = Batch {
            fetched,
            permits: self.permits,
            ahead: self.ahead,
            place,
            sent,
        };
        // Started beside the next read, as the fetch loop's own batches are.
        let (shared, slots, shutdown) = (Arc::clone(shared), self.slots, self.shutdown);
        shared.tracker.clone().spawn(async move {
            dispatch::dispatch(&shared, batch, &slots, &shutdown).await;
        });
        Ok(true)
    }
}

/// Tells the fetch loop that a read returned when dropped, which happens on a panic too.
struct Report {
    done: mpsc::UnboundedSender<ReadDone>,
    node: String,
    result: Option<Result<bool, FetchError>>,
}

impl Drop for Report {
    fn drop(&mut self) {
        // A read that never finished (it panicked) brought nothing this loop can use.
        let result = self.result.take().unwrap_or(Ok(false));
        // The receiver lives as long as the fetch loop; after it, nobody asks.
        let _ = self.done.send(ReadDone {
            node: std::mem::take(&mut self.node),
            result,
        });
    }
}
