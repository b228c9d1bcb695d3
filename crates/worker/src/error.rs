//! Errors that stop a worker from starting or running.

/// Why a worker could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A setting that can never work; the message names it and what it expects.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// Redis answered with an error, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The Redis URL or target cannot be used.
    #[error(transparent)]
    Target(#[from] flotilla_proto::TargetError),
}
