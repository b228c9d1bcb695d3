//! What can go wrong when enqueueing, phrased so the caller knows what to do.

use flotilla_proto::ProtoError;

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The queue is at its length cap: slow down and try later (backpressure).
    #[error("queue is full: {0}")]
    QueueFull(String),
    #[error("payload of {size} bytes is over the {limit}-byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("invalid job: {0}")]
    Invalid(String),
    #[error(transparent)]
    Encoding(#[from] ProtoError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Target(#[from] flotilla_proto::TargetError),
    /// The job was written, but fewer replicas than asked acknowledged it in time: it
    /// exists, and would be lost only if the primary failed before replicating it.
    #[error(
        "job {id} was enqueued but only {acknowledged} of {wanted} replicas acknowledged it in time; \
         enqueueing it again may run it twice unless it has a unique key or an id"
    )]
    NotReplicated {
        id: String,
        acknowledged: u32,
        wanted: u32,
    },
    #[error(transparent)]
    Script(flotilla_proto::scripts::ScriptError),
    /// No job has this id: never enqueued, or trimmed by retention since it ended.
    #[error("no job with id {0}")]
    NoSuchJob(String),
    /// An own id given without its queue names jobs in several queues.
    #[error("job {id} is in several queues ({}): name the queue", queues.join(", "))]
    InSeveralQueues { id: String, queues: Vec<String> },
    /// The job did not end within the time given to wait; `status` is where it was last.
    #[error("job {id} did not end within {waited_ms} ms (last seen {})", status.map_or("nowhere", |s| s.as_str()))]
    WaitTimedOut {
        id: String,
        waited_ms: u64,
        status: Option<flotilla_proto::Status>,
    },
    /// The job ended without a result: it died or was cancelled.
    #[error("job {id} ended {} without a result: {}", status.as_str(), error.as_deref().unwrap_or("no error recorded"))]
    Failed {
        id: String,
        status: flotilla_proto::Status,
        error: Option<String>,
    },
    /// The job completed, but its result is not of the type asked for.
    #[error("job {id} completed, but its result does not decode as asked: {reason}")]
    ResultType { id: String, reason: String },
}

impl From<flotilla_proto::scripts::ScriptError> for ProducerError {
    fn from(err: flotilla_proto::scripts::ScriptError) -> Self {
        match err {
            flotilla_proto::scripts::ScriptError::Redis(e) => ProducerError::Redis(e),
            other => ProducerError::Script(other),
        }
    }
}
