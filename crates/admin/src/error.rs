//! What can go wrong in an operation.

/// An operation's error.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Redis answered with an error, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script call failed, or answered what this version does not understand.
    #[error(transparent)]
    Script(#[from] flotilla_proto::scripts::ScriptError),
    /// A job's record or stream entry could not be read as a job.
    #[error(transparent)]
    Describe(#[from] flotilla_proto::DescribeError),
    /// No job was enqueued on this queue and no worker served it.
    #[error("no queue named {queue:?}; known queues: {known}")]
    UnknownQueue {
        /// The queue as given.
        queue: String,
        /// The known queues, comma-separated, or `none yet`.
        known: String,
    },
    /// A value read from Redis or given by the caller does not fit the protocol (a
    /// partition count out of range, say).
    #[error(transparent)]
    Proto(#[from] flotilla_proto::ProtoError),
    /// A flow limit out of bounds.
    #[error(transparent)]
    Flow(#[from] flotilla_proto::flow::FlowError),
    /// A stored flow limit this version cannot read (workers do not serve its queue).
    #[error("the flow limit of {queue} cannot be read ({why}): set it again, or clear it")]
    UnreadableLimit {
        /// The queue.
        queue: String,
        /// Why not.
        why: flotilla_proto::flow::FlowError,
    },
    /// A partition's name was given where the queue's own name is needed.
    #[error("{0:?} names a partition; give the queue's own name")]
    NotAQueue(String),
    /// A partition count below the queue's current one: a count can only grow.
    #[error(
        "{queue} has {now} partitions; a count can only grow (jobs in the partitions past {wanted} would wait where no worker reads)"
    )]
    FewerPartitions {
        /// The queue as given.
        queue: String,
        /// The partition count stored now.
        now: u16,
        /// The partition count asked for.
        wanted: u16,
    },
    /// No flow, or no batch, has this id in any known queue.
    #[error("no {kind} {id:?} in any queue (a finished one is forgotten a week after it ended)")]
    NoSuch {
        /// `flow` or `batch`.
        kind: &'static str,
        /// The id as given.
        id: String,
    },
    /// A flow or batch id names one in more than one queue.
    #[error("{kind} {id:?} is in several queues ({}): name the queue", queues.join(", "))]
    SeveralQueues {
        /// `flow` or `batch`.
        kind: &'static str,
        /// The id as given.
        id: String,
        /// The queues holding one.
        queues: Vec<String>,
    },
    /// An empty (or blank) job id was given.
    #[error("give a job id, or the first characters of one (an empty prefix matches every job)")]
    EmptyId,
    /// No job has this id, or an id that starts with it.
    #[error("no job with id or id prefix {0:?}")]
    NoSuchJob(String),
    /// The id prefix matches more than one job.
    #[error("{prefix:?} matches several jobs; give more of the id:\n  {}", matches.join("\n  "))]
    Ambiguous {
        /// The prefix as given.
        prefix: String,
        /// The full ids of the first matching jobs, ten at most.
        matches: Vec<String>,
    },
    /// The search by prefix reached its budget in one queue before it could tell one
    /// job apart.
    #[error(
        "the search for ids starting with {prefix:?} stopped after {budget} ids in one queue \
         without telling one job apart: give more of the id, or the whole id and its queue"
    )]
    SearchStopped {
        /// The prefix as given.
        prefix: String,
        /// Ids and entries one search examines in one queue at most.
        budget: usize,
    },
    /// An id without its queue names a job in more than one queue.
    #[error(
        "job {id} is in several queues: name the one you mean, by its full id:\n  {}",
        full_ids.join("\n  ")
    )]
    InSeveralQueues {
        /// The id as given.
        id: String,
        /// How to name each of the jobs: its full id, or its own id with `--queue`.
        full_ids: Vec<String>,
    },
    /// The queue cannot be removed while live workers serve it.
    #[error(
        "queue {queue} is served by live workers ({}): take it out of their [queues] and \
         restart them first, or they list it again",
        workers.join(", ")
    )]
    QueueServed {
        /// The queue as given.
        queue: String,
        /// The ids of the live workers that serve it.
        workers: Vec<String>,
    },
    /// The queue still holds jobs that wait, run or are scheduled, so it cannot be removed;
    /// names the partition that holds them.
    #[error(
        "{0} still holds jobs waiting, running or scheduled: drain it (flotilla queues drain) \
         or cancel them first"
    )]
    QueueNotEmpty(String),
    /// The job is running, so it cannot be deleted; names the job's id.
    #[error("job {0} is running: cancel it first, so its worker stops it")]
    Running(String),
    /// A schedule could not be read, saved or run (no such schedule, an invalid one).
    #[error(transparent)]
    Schedule(#[from] flotilla_scheduler::SchedulerError),
    /// A job could not be cancelled or a schedule's run enqueued.
    #[error(transparent)]
    Producer(#[from] flotilla_producer::ProducerError),
    /// A list was asked to start before the Unix epoch.
    #[error("a time to list from must be at or after the Unix epoch")]
    BadSince,
    /// A list's cursor cannot be read.
    #[error("bad cursor {cursor:?}: {why}; pass the `next_cursor` of an earlier page")]
    BadCursor {
        /// The cursor as given, or the position in it that is wrong.
        cursor: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Fewer workers than awaited registered in time.
    #[error("only {up} of {wanted} worker processes registered within {} s", within.as_secs())]
    TooFewWorkers {
        /// How many were up when the wait ended.
        up: usize,
        /// How many were awaited.
        wanted: usize,
        /// How long the wait was.
        within: std::time::Duration,
    },
}
