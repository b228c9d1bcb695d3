//! What can go wrong while setting up or driving a test fleet.

use std::time::Duration;

/// A test fleet's failure, naming what it waited for or which part failed.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// `redis-server` could not be started or did not answer.
    #[error("test redis-server: {0}")]
    RedisServer(String),
    /// Enqueueing or reading a job back failed.
    #[error(transparent)]
    Producer(#[from] flotilla_producer::ProducerError),
    /// The worker failed to start or to stop cleanly.
    #[error(transparent)]
    Worker(#[from] flotilla_worker::WorkerError),
    /// A worker's task panicked or was cancelled.
    #[error("a worker task ended abnormally: {0}")]
    WorkerTask(String),
    /// Reading the queues failed.
    #[error(transparent)]
    Admin(#[from] flotilla_admin::AdminError),
    /// Something did not happen in time.
    #[error("{what} did not happen within {waited:?}")]
    TimedOut {
        /// What was awaited, with what was seen last.
        what: String,
        /// How long the fleet waited.
        waited: Duration,
    },
}
