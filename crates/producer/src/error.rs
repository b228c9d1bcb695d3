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
}

impl From<flotilla_proto::scripts::ScriptError> for ProducerError {
    fn from(err: flotilla_proto::scripts::ScriptError) -> Self {
        match err {
            flotilla_proto::scripts::ScriptError::Redis(e) => ProducerError::Redis(e),
            other => ProducerError::Script(other),
        }
    }
}
