//! A job to enqueue, built step by step.

use std::time::{Duration, SystemTime};

use flotilla_proto::{Backoff, ContentType, Job, Payload, ProtoError};
use serde::Serialize;

use crate::flows::Parent;

/// When a job may run, if not now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schedule {
    At(SystemTime),
    After(Duration),
}

/// One job to enqueue. Start with [`NewJob::new`] or [`NewJob::typed`], then chain options.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) job_type: String,
    pub(crate) payload: Payload,
    pub(crate) queue: String,
    pub(crate) id: Option<String>,
    /// When it may run; `None` is now.
    pub(crate) schedule: Option<Schedule>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) unique: Option<(String, Duration)>,
    pub(crate) unique_until_expiry: bool,
    /// Debounce key, delay and bound (`None`: none).
    pub(crate) debounce: Option<(String, Duration, Option<Duration>)>,
    /// When it may no longer start (`None`: never).
    pub(crate) expiry: Option<Schedule>,
    /// Its group (`None`: none).
    pub(crate) group: Option<String>,
    /// The enqueue span's trace context, set by the producer when tracing is on.
    pub(crate) trace: String,
    /// The jobs it waits for (protocol 2.19).
    pub(crate) parents: Vec<Parent>,
}

impl NewJob {
    /// A job of `job_type` with `args` encoded as msgpack, on the `default` queue.
    pub fn new<T: Serialize + ?Sized>(job_type: &str, args: &T) -> Result<Self, ProtoError> {
        Ok(Self::with_payload(
            job_type,
            Payload::encode(args, ContentType::MsgPack)?,
        ))
    }

    /// A job whose payload is already encoded (e.g. JSON text from the command line).
    pub fn with_payload(job_type: &str, payload: Payload) -> Self {
        Self {
            job_type: job_type.to_owned(),
            payload,
            queue: "default".to_owned(),
            id: None,
            schedule: None,
            max_attempts: None,
            timeout: None,
            backoff: None,
            unique: None,
            unique_until_expiry: false,
            debounce: None,
            expiry: None,
            group: None,
            trace: String::new(),
            parents: Vec::new(),
        }
    }

    /// A typed job on its type's queue, with the attempts, timeout and backoff its type
    /// declares, ready for options (`delay`, `unique`, …; an option set here wins).
    pub fn typed<J: Job>(job: &J) -> Result<Self, ProtoError> {
        let mut new = Self::new(J::TYPE, job)?.queue(J::QUEUE);
        if let Some(attempts) = J::MAX_ATTEMPTS {
            new = new.max_attempts(attempts);
        }
        if let Some(timeout) = J::TIMEOUT {
            new = new.timeout(timeout);
        }
        if let Some(backoff) = J::backoff() {
            new = new.backoff(backoff);
        }
        Ok(new)
    }

    /// The queue it goes to (default `default`, or its type's for a typed job).
    pub fn queue(mut self, queue: &str) -> Self {
        queue.clone_into(&mut self.queue);
        self
    }

    /// Your own id (e.g. a UUID), so enqueueing the same job twice creates it once.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Run no earlier than this instant. One choice with [`NewJob::delay`]: the later
    /// call replaces the earlier.
    pub fn at(mut self, when: SystemTime) -> Self {
        self.schedule = Some(Schedule::At(when));
        self
    }

    /// Run after this delay (measured on the Redis server's clock). One choice with
    /// [`NewJob::at`]: the later call replaces the earlier.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.schedule = Some(Schedule::After(delay));
        self
    }

    /// How many attempts it gets, the first included (1 to 10 000).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How long one attempt may run before it is stopped and counted as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long to wait between its attempts (else its type's, else the fleet's default).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Enqueue only if no job holds `key` in this queue; the lock lasts `ttl`, or until the
    /// job completes, is cancelled or expires. A second enqueue returns the first job's id.
    pub fn unique(mut self, key: &str, ttl: Duration) -> Self {
        self.unique = Some((key.to_owned(), ttl));
        self
    }

    /// Like [`NewJob::unique`], but the key is held for its whole TTL even after the job
    /// finishes: nothing with this key is enqueued again until it expires. Scheduled fires
    /// use it so a tick can never be enqueued twice.
    pub fn unique_until_expiry(mut self, key: &str, ttl: Duration) -> Self {
        self.unique = Some((key.to_owned(), ttl));
        self.unique_until_expiry = true;
        self
    }

    /// Debounce: jobs enqueued with the same `key` within `delay` of each other fold into
    /// one run, `delay` after the last of them, with the last one's payload (the run
    /// should see the newest state: a search index rebuilt once after a burst of edits
    /// reads the last edit). The enqueue answers [`crate::Outcome::Debounced`] with the
    /// waiting job's id for every job folded in. A job that has started no longer takes
    /// new ones: the next enqueue makes a new job. Bound the wait with
    /// [`NewJob::debounce_max`]. Not with a unique key; the job waits `delay`, whatever
    /// [`NewJob::delay`] or [`NewJob::at`] say.
    pub fn debounce(mut self, key: &str, delay: Duration) -> Self {
        let max = self.debounce.take().and_then(|(_, _, max)| max);
        self.debounce = Some((key.to_owned(), delay, max));
        self
    }

    /// The longest a debounced job waits after the first enqueue of its key, however
    /// often the key is enqueued again: a steady stream of enqueues still runs the job at
    /// least this often. Set after [`NewJob::debounce`].
    pub fn debounce_max(mut self, max: Duration) -> Self {
        if let Some((_, _, bound)) = &mut self.debounce {
            *bound = Some(max);
        }
        self
    }

    /// Never start it at or after `when`: a job not started by then (its queue was
    /// paused, backed up or throttled; its retry fell due later) ends as `expired`,
    /// without running, and is listed and counted as such. A job already running then
    /// finishes. One choice with [`NewJob::expires_in`]: the later call replaces the
    /// earlier. Judged on the Redis server's clock when an attempt would start (a worker
    /// whose own clock runs behind may start a job up to its lag late).
    pub fn expires_at(mut self, when: SystemTime) -> Self {
        self.expiry = Some(Schedule::At(when));
        self
    }

    /// Never start it later than `ttl` after it is enqueued (by this process's clock):
    /// as [`NewJob::expires_at`].
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expiry = Some(Schedule::After(ttl));
        self
    }

    /// When it may no longer start, ms since the Unix epoch, counted from now for
    /// [`NewJob::expires_in`]; `None` when it never expires.
    pub(crate) fn expires_at_ms(&self) -> Option<u64> {
        let at = match self.expiry? {
            Schedule::At(t) => t,
            Schedule::After(ttl) => SystemTime::now() + ttl,
        };
        Some(flotilla_proto::millis(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        ))
    }

    /// Puts it in a group (a tenant, an account, an API key). Where its queue limits each
    /// group (`flotilla queues limit <queue> --group-concurrency N`), at most N jobs of a
    /// group are let through to run at once and the others wait their group's turn, so a
    /// group with a long backlog never holds back another's jobs and groups take turns;
    /// elsewhere the group is only a label. A job of a group with a time (or a debounce)
    /// waits its group's turn once its time comes. It gets an id of its own if it has
    /// none.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }

    /// Waits for `parent` (a job enqueued before, or another job of the same
    /// [`crate::Flow`]) to complete before it runs; call again for each parent. Its handler
    /// reads the parents' results ([`flotilla_proto::dependencies`]). A delay or time
    /// counts from when its last parent is done. It gets an id of its own if it has none,
    /// and holds no unique or debounce key.
    pub fn after(mut self, parent: impl Into<Parent>) -> Self {
        self.parents.push(parent.into());
        self
    }

    /// Its job type.
    pub fn job_type(&self) -> &str {
        &self.job_type
    }
}

/// What [`Producer::enqueue`](crate::Producer::enqueue) takes: a [`NewJob`] with its
/// options, or a reference to a typed [`Job`] to enqueue as it is.
pub trait IntoNewJob {
    /// The job to enqueue, with its options.
    fn into_new_job(self) -> Result<NewJob, ProtoError>;
}

impl IntoNewJob for NewJob {
    fn into_new_job(self) -> Result<NewJob, ProtoError> {
        Ok(self)
    }
}

impl<J: Job> IntoNewJob for &J {
    fn into_new_job(self) -> Result<NewJob, ProtoError> {
        NewJob::typed(self)
    }
}
