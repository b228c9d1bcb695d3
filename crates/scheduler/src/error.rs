//! Errors of schedules and of the scheduler runtime.

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A schedule definition that cannot work; the message names the field.
    #[error("schedule {name:?}: {problem}")]
    InvalidSchedule { name: String, problem: String },
    #[error("no schedule named {0:?}")]
    NoSuchSchedule(String),
    #[error("invalid scheduler configuration: {0}")]
    Config(String),
    #[error("stored schedule {name:?} cannot be read: {reason}")]
    Corrupt { name: String, reason: String },
    #[error(transparent)]
    Enqueue(#[from] flotilla_producer::ProducerError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Target(#[from] flotilla_proto::TargetError),
    #[error(transparent)]
    Script(flotilla_proto::scripts::ScriptError),
}

impl From<flotilla_proto::scripts::ScriptError> for SchedulerError {
    fn from(err: flotilla_proto::scripts::ScriptError) -> Self {
        match err {
            flotilla_proto::scripts::ScriptError::Redis(e) => SchedulerError::Redis(e),
            other => SchedulerError::Script(other),
        }
    }
}
