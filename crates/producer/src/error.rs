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
