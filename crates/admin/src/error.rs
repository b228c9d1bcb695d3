//! What can go wrong in an operation.

/// An operation's error.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Script(#[from] flotilla_proto::scripts::ScriptError),
    #[error("no queue named {queue:?}; known queues: {known}")]
    UnknownQueue { queue: String, known: String },
}
