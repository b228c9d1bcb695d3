//! What an enqueue answers: the job's id and queue, and whether it is new.

/// What happened to an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new job was created.
    Created,
    /// Another job holds the unique key; `id` is that job's.
    Duplicate,
    /// A job with this id already exists; nothing was changed.
    Exists,
    /// Folded into the job waiting under the same debounce key; `id` is that job's, and
    /// it now carries this job's payload.
    Debounced,
    /// A new job that waits for its parents (protocol 2.19) before it runs.
    Waiting,
}

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id within its queue: its own id, or its entry id.
    pub id: String,
    /// The queue (or partition) that holds it.
    pub queue: String,
    /// Whether the job is new, or one that was there already.
    pub outcome: Outcome,
}

impl Enqueued {
    /// The id that names the job in the whole namespace: its own id, or
    /// `<queue>:<entry id>` ([`flotilla_proto::full_id`]).
    pub fn full_id(&self) -> String {
        flotilla_proto::full_id(&self.queue, &self.id)
    }
}
