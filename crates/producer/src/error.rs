//! What can go wrong when enqueueing, phrased so the caller knows what to do.

use flotilla_proto::ProtoError;

/// Why an enqueue, a read or a wait failed.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The queue is at its length cap: slow down and try later (backpressure).
    #[error("queue is full: {0}")]
    QueueFull(String),
    /// The payload is over `limits.max_payload_bytes`: workers would refuse it.
    #[error("payload of {size} bytes is over the {limit}-byte limit")]
    PayloadTooLarge {
        /// The payload's size, in bytes.
        size: usize,
        /// The most a payload may hold, in bytes.
        limit: usize,
    },
    /// A job's option is out of bounds (its reason says which and what is allowed).
    #[error("invalid job: {0}")]
    Invalid(String),
    /// A name, id or value the wire contract refuses, or a payload that cannot be
    /// encoded.
    #[error(transparent)]
    Encoding(#[from] ProtoError),
    /// Redis answered with an error, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The Redis URL or target cannot be used.
    #[error(transparent)]
    Target(#[from] flotilla_proto::TargetError),
    /// The job was written, but fewer replicas than asked acknowledged it in time: it
    /// exists, and would be lost only if the primary failed before replicating it.
    #[error(
        "job {id} was enqueued but only {acknowledged} of {wanted} replicas acknowledged it in time; \
         enqueueing it again may run it twice unless it has a unique key or an id"
    )]
    NotReplicated {
        /// The job's id.
        id: String,
        /// Replicas that acknowledged the write in time.
        acknowledged: u32,
        /// Replicas asked for ([`crate::Producer::wait_for_replicas`]).
        wanted: u32,
    },
    /// A script's answer was not what the protocol says (a version mismatch, say).
    #[error(transparent)]
    Script(flotilla_proto::scripts::ScriptError),
    /// No job has this id: never enqueued, or trimmed by retention since it ended.
    #[error("no job with id {0}")]
    NoSuchJob(String),
    /// An own id given without its queue names jobs in several queues.
    #[error("job {id} is in several queues ({}): name the queue", queues.join(", "))]
    InSeveralQueues {
        /// The id as given.
        id: String,
        /// The queues holding a job of that id.
        queues: Vec<String>,
    },
    /// The job did not end within the time given to wait; `status` is where it was last.
    #[error("job {id} did not end within {waited_ms} ms (last seen {})", status.map_or("nowhere", |s| s.as_str()))]
    WaitTimedOut {
        /// The id as given.
        id: String,
        /// How long was waited, ms.
        waited_ms: u64,
        /// The job's state when the wait gave up (`None`: found nowhere).
        status: Option<flotilla_proto::Status>,
    },
    /// The job ended without a result: it died, was cancelled or expired.
    #[error("job {id} ended {} without a result: {}", status.as_str(), error.as_deref().unwrap_or("no error recorded"))]
    Failed {
        /// The id as given.
        id: String,
        /// How it ended: dead, cancelled or expired.
        status: flotilla_proto::Status,
        /// Its last error, if any was recorded.
        error: Option<String>,
    },
    /// The job completed, but its result is not of the type asked for.
    #[error("job {id} completed, but its result does not decode as asked: {reason}")]
    ResultType {
        /// The id as given.
        id: String,
        /// Why the result does not decode.
        reason: String,
    },
}

impl From<flotilla_proto::scripts::ScriptError> for ProducerError {
    fn from(err: flotilla_proto::scripts::ScriptError) -> Self {
        match err {
            flotilla_proto::scripts::ScriptError::Redis(e) => ProducerError::Redis(e),
            other => ProducerError::Script(other),
        }
    }
}
