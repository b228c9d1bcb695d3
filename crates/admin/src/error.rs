//! What can go wrong in an operation.

/// An operation's error.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Script(#[from] flotilla_proto::scripts::ScriptError),
    #[error(transparent)]
    Describe(#[from] flotilla_proto::DescribeError),
    #[error("no queue named {queue:?}; known queues: {known}")]
    UnknownQueue { queue: String, known: String },
    #[error(transparent)]
    Proto(#[from] flotilla_proto::ProtoError),
    #[error("{0:?} names a partition; give the queue's own name")]
    NotAQueue(String),
    #[error(
        "{queue} has {now} partitions; a count can only grow (jobs in the partitions past {wanted} would wait where no worker reads)"
    )]
    FewerPartitions {
        queue: String,
        now: u16,
        wanted: u16,
    },
    #[error("give a job id, or the first characters of one (an empty prefix matches every job)")]
    EmptyId,
    #[error("no job with id or id prefix {0:?}")]
    NoSuchJob(String),
    #[error("{prefix:?} matches several jobs; give more of the id:\n  {}", matches.join("\n  "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error(
        "the search for ids starting with {prefix:?} stopped after {budget} ids in one queue \
         without telling one job apart: give more of the id, or the whole id and its queue"
    )]
    SearchStopped { prefix: String, budget: usize },
    #[error(
        "job {id} is in several queues: name the one you mean, by its full id:\n  {}",
        full_ids.join("\n  ")
    )]
    InSeveralQueues { id: String, full_ids: Vec<String> },
    #[error(
        "queue {queue} is served by live workers ({}): take it out of their [queues] and \
         restart them first, or they list it again",
        workers.join(", ")
    )]
    QueueServed { queue: String, workers: Vec<String> },
    #[error(
        "{0} still holds jobs waiting, running or scheduled: drain it (flotilla queues drain) \
         or cancel them first"
    )]
    QueueNotEmpty(String),
    #[error("job {0} is running: cancel it first, so its worker stops it")]
    Running(String),
    #[error("a time to list from must be at or after the Unix epoch")]
    BadSince,
    #[error("bad cursor {cursor:?}: {why}; pass the `next_cursor` of an earlier page")]
    BadCursor { cursor: String, why: &'static str },
}
