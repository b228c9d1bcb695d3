//! What a handler knows about the job it runs, and how it talks back.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use flotilla_proto::SharedConnection;
use flotilla_proto::dependencies::Dependencies;
use flotilla_proto::scripts::{self, FastJob, Progress, ScriptError};
use flotilla_proto::{Keys, Payload, ProtoError};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// Handed to every handler call.
#[derive(Clone)]
pub struct JobContext {
    /// The job's id within its queue: its own id, or its entry id (see
    /// [`JobContext::full_id`] for the one unique across queues).
    pub id: String,
    /// The job's type.
    pub job_type: String,
    /// The queue (or partition) it was read from.
    pub queue: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// How many attempts the job gets, this one included.
    pub max_attempts: u32,
    /// How many times the job was snoozed before this attempt
    /// ([`crate::HandlerError::snooze`]; none of them counted in `attempt`).
    pub snoozes: u32,
    /// How long this attempt may run.
    pub timeout: Duration,
    /// The job's arguments, as its producer encoded them.
    pub payload: Payload,
    /// The largest result this attempt may return, in bytes of JSON
    /// (`limits.max_result_bytes`); a larger one fails the attempt and never reaches Redis.
    pub max_result_bytes: usize,
    /// Cancelled when the job is cancelled (within a second of the cancel), its lease is
    /// lost, or shutdown's grace ends: a long handler selects on it, or checks it between
    /// steps.
    pub cancel: CancellationToken,
    /// The job's span: job id, type, queue and attempt.
    pub span: tracing::Span,
    pub(crate) conn: SharedConnection,
    pub(crate) keys: Keys,
    /// This attempt's lease: progress is recorded only while it is current.
    pub(crate) lease: String,
    pub(crate) entry_id: String,
    /// This worker's consumer name.
    pub(crate) consumer: String,
    /// A fast-path job's fields: its first progress writes its record.
    pub(crate) fast: Option<Arc<FastJob>>,
    pub(crate) delivery: Arc<AtomicU32>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id)
            .field("job_type", &self.job_type)
            .field("queue", &self.queue)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// The id that names this job in the whole namespace: its own id, or
    /// `<queue>:<entry id>` for a job without one ([`flotilla_proto::full_id`]).
    pub fn full_id(&self) -> String {
        flotilla_proto::full_id(&self.queue, &self.id)
    }

    /// Decodes the payload into the handler's argument type.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, ProtoError> {
        self.payload.decode()
    }

    /// Records progress (any JSON: a percentage, a step name, counts) on the job record,
    /// where `flotilla jobs show` and the dashboard read it. Answers whether it was
    /// recorded: `false` once this attempt is no longer the job's (cancelled, reclaimed by
    /// another worker, finished), when the handler should stop; [`JobContext::cancel`]
    /// fires then too.
    pub async fn progress(&self, progress: &serde_json::Value) -> Result<bool, ScriptError> {
        if self.cancel.is_cancelled() {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let text = progress.to_string();
        let call = Progress {
            queue: &self.queue,
            job_id: &self.id,
            entry_id: &self.entry_id,
            lease: &self.lease,
            consumer: &self.consumer,
            fast: self.fast.as_deref(),
            delivery: self.delivery.load(Ordering::Acquire),
            progress: &text,
        };
        let recorded = scripts::run(&mut conn, &self.keys, &call).await?;
        if recorded && call.delivery > 0 {
            // The job has its record now: the rest of the attempt is fenced by its lease,
            // as an attempt that began with a record is.
            self.delivery.store(0, Ordering::Release);
        }
        Ok(recorded)
    }

    /// What this job waited for (protocol 2.19): each parent, how it ended and its result
    /// (`deps.result_of("fetch-1")` decodes one as JSON). `None` for a job enqueued
    /// without parents, or whose record of them was let go (a week after it was).
    pub async fn dependencies(&self) -> Result<Option<Dependencies>, redis::RedisError> {
        let mut conn = self.conn.clone();
        flotilla_proto::dependencies::dependencies(&mut conn, &self.keys, &self.queue, &self.id)
            .await
    }
}
