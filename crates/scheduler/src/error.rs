//! Errors of schedules and of the scheduler runtime.

/// Why a schedule operation or the scheduler failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A schedule definition that cannot work; the message names the field.
    #[error("schedule {name:?}: {problem}")]
    InvalidSchedule {
        /// The schedule's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No schedule is stored under this name.
    #[error("no schedule named {0:?}")]
    NoSuchSchedule(String),
    /// The scheduler's settings are invalid; the message names the setting.
    #[error("invalid scheduler configuration: {0}")]
    Config(String),
    /// A stored definition that cannot be read as a schedule.
    #[error("stored schedule {name:?} cannot be read: {reason}")]
    Corrupt {
        /// The schedule's name.
        name: String,
        /// Why its definition cannot be read.
        reason: String,
    },
    /// Enqueueing a schedule's job failed.
    #[error(transparent)]
    Enqueue(#[from] flotilla_producer::ProducerError),
    /// Redis answered with an error, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The Redis URL or target cannot be used.
    #[error(transparent)]
    Target(#[from] flotilla_proto::TargetError),
    /// A script answered what this version does not understand.
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
