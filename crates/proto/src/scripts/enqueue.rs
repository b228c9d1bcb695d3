//! The `enqueue` bindings: put a job with an id of its own on its stream (the whole job in
//! its entry, its id remembered by its id key), in `later` until its time, or, with a
//! record, in `delayed`; one job per call, or a batch of one queue's jobs that hold no
//! unique key.

use super::reply::{items, text};
use super::{Call, ENQUEUE, ENQUEUE_MANY, ScriptCall, ScriptError};
use crate::{Backoff, Keys, PROTOCOL_VERSION, Payload};

/// When a new job may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// As soon as a worker is free.
    Now,
    /// At this instant, ms since the Unix epoch.
    At(u64),
    /// This long after the enqueue, on the Redis server's clock, in ms.
    After(u64),
}

impl When {
    /// The published script's `run at` and `delay` arguments (0: not set).
    fn run_at_and_delay(self) -> (u64, u64) {
        match self {
            When::Now => (0, 0),
            When::At(ms) => (ms.max(1), 0),
            When::After(ms) => (0, ms),
        }
    }
}

/// A unique key held by the new job.
#[derive(Debug, Clone, Copy)]
pub struct UniqueLock<'a> {
    /// The key's name within the queue: while one job holds it, another that names it is
    /// a duplicate.
    pub key: &'a str,
    /// How long the key is held at most, in ms.
    pub ttl_ms: u64,
    /// Hold the key for its whole TTL even after the job finishes (scheduled ticks);
    /// otherwise it is released when the job completes, is cancelled or expires.
    pub until_expiry: bool,
}

/// How a new job is debounced: jobs enqueued with the same key while one of them waits
/// for its first run fold into that one (protocol 2.14).
#[derive(Debug, Clone, Copy)]
pub struct Debounce<'a> {
    /// The key's name within the queue.
    pub key: &'a str,
    /// How long after the last enqueue of the key the job runs, in ms (at least 1).
    pub delay_ms: u64,
    /// How long after the first enqueue the job runs at the latest, in ms (0: no bound).
    pub max_ms: u64,
}

/// One job to create.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    /// The queue (or partition) it goes to.
    pub queue: &'a str,
    /// The job's own id; one of a stream entry id's form (`<digits>-<digits>`) is refused.
    pub id: &'a str,
    /// The job's type, which picks its handler.
    pub job_type: &'a str,
    /// The encoded arguments, with their content type.
    pub payload: &'a Payload,
    /// How many attempts it gets, the first included.
    pub max_attempts: u32,
    /// How long one attempt may run before it is stopped, in ms.
    pub timeout_ms: u64,
    /// How long to wait between its attempts.
    pub backoff: &'a Backoff,
    /// When it may first run.
    pub when: When,
    /// The unique key it holds, if any; a job that holds one gets a record.
    pub unique: Option<UniqueLock<'a>>,
    /// How it is debounced, if it is (never with a unique key).
    pub debounce: Option<Debounce<'a>>,
    /// Refuse the job when the queue holds this many (0 = no cap).
    pub max_queue_len: u64,
    /// W3C trace context to carry, empty when none.
    pub trace: &'a str,
    /// When the job may no longer start, ms since the Unix epoch (0: never).
    pub expires_at_ms: u64,
    /// Its group, empty for none.
    pub group: &'a str,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueReply {
    /// The job is new.
    Created,
    /// Another job holds the unique key: nothing was created.
    Duplicate {
        /// The id of the job that holds the key.
        holder: String,
    },
    /// A job with this id exists already; nothing changed.
    Exists,
    /// Folded into the job waiting under the same debounce key, which now carries this
    /// job's fields.
    Debounced {
        /// The id of the waiting job.
        into: String,
    },
    /// The queue is at its length cap (backpressure): the script's message.
    QueueFull(String),
}

impl<'a> Enqueue<'a> {
    /// This job as one of an [`EnqueueMany`] batch (which holds no unique key).
    pub fn item(&self) -> EnqueueItem<'a> {
        EnqueueItem {
            id: self.id,
            job_type: self.job_type,
            payload: self.payload,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            backoff: self.backoff,
            when: self.when,
            trace: self.trace,
            expires_at_ms: self.expires_at_ms,
            group: self.group,
        }
    }
}

impl ScriptCall for Enqueue<'_> {
    type Reply = EnqueueReply;
    const NAME: &'static str = "enqueue";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let mut call = Call::new(&ENQUEUE)
            .key(keys.stream(q))
            .key(keys.job(q, self.id))
            .key(keys.delayed(q));
        if let Some(unique) = &self.unique {
            call = call.key(keys.unique(q, unique.key));
        } else if let Some(debounce) = &self.debounce {
            call = call.key(keys.debounce(q, debounce.key));
        }
        let hold = if self.unique.is_some_and(|u| u.until_expiry) {
            "expiry"
        } else {
            "finished"
        };
        let call = self.item().args(
            call,
            self.unique.map_or(0, |u| u.ttl_ms.max(1)),
            self.max_queue_len,
            q,
            hold,
        );
        let more = self.expires_at_ms > 0 || !self.group.is_empty();
        let call = match &self.debounce {
            Some(debounce) if self.unique.is_none() => {
                call.arg(debounce.delay_ms.max(1)).arg(debounce.max_ms)
            }
            _ if more => call.arg(0).arg(0),
            _ => call,
        };
        // ARGV[18] and ARGV[19], left out when the job never expires and has no group (a
        // call before 2.16 had neither).
        match (self.expires_at_ms > 0, self.group.is_empty()) {
            (false, true) => call,
            (_, true) => call.arg(self.expires_at_ms),
            (_, false) => call.arg(self.expires_at_ms).arg(self.group),
        }
    }

    fn parse(value: redis::Value) -> Result<EnqueueReply, ScriptError> {
        let words: Option<Vec<String>> =
            items(value.clone()).map(|items| items.iter().filter_map(text).collect());
        match words.as_deref() {
            Some([_, outcome]) if outcome == "created" => Ok(EnqueueReply::Created),
            Some([_, outcome]) if outcome == "exists" => Ok(EnqueueReply::Exists),
            Some([holder, outcome]) if outcome == "duplicate" => Ok(EnqueueReply::Duplicate {
                holder: holder.clone(),
            }),
            Some([into, outcome]) if outcome == "debounced" => {
                Ok(EnqueueReply::Debounced { into: into.clone() })
            }
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }

    fn parse_result(result: redis::RedisResult<redis::Value>) -> Result<EnqueueReply, ScriptError> {
        match result {
            Err(e) if e.code() == Some("QUEUE_FULL") => Ok(EnqueueReply::QueueFull(
                e.detail().unwrap_or("queue at its cap").to_owned(),
            )),
            other => Self::parse(other?),
        }
    }
}

/// One job of an [`EnqueueMany`] batch.
#[derive(Debug, Clone)]
pub struct EnqueueItem<'a> {
    /// The job's own id; one of a stream entry id's form (`<digits>-<digits>`) is refused.
    pub id: &'a str,
    /// The job's type, which picks its handler.
    pub job_type: &'a str,
    /// The encoded arguments, with their content type.
    pub payload: &'a Payload,
    /// How many attempts it gets, the first included.
    pub max_attempts: u32,
    /// How long one attempt may run before it is stopped, in ms.
    pub timeout_ms: u64,
    /// How long to wait between its attempts.
    pub backoff: &'a Backoff,
    /// When it may first run.
    pub when: When,
    /// W3C trace context to carry, empty when none.
    pub trace: &'a str,
    /// When the job may no longer start, ms since the Unix epoch (0: never); a job not
    /// started by then ends as `expired`.
    pub expires_at_ms: u64,
    /// Its group (protocol 2.17), empty for none: where the queue limits how many jobs
    /// of each group run at once, it waits its group's turn.
    pub group: &'a str,
}

impl EnqueueItem<'_> {
    /// Appends the published script's 15 arguments for this job to `call`: its own,
    /// then the unique key's hold (ms, 0: none), the queue's cap and name, its trace
    /// context, the protocol version and whether the unique key is held to its expiry.
    pub(super) fn args(
        &self,
        call: Call,
        unique_ms: u64,
        max_queue_len: u64,
        queue: &str,
        hold: &str,
    ) -> Call {
        let (run_at, delay) = self.when.run_at_and_delay();
        call.arg(self.id)
            .arg(self.job_type)
            .arg(&self.payload.bytes)
            .arg(self.payload.content_type.as_str())
            .arg(self.max_attempts)
            .arg(self.timeout_ms)
            .arg(self.backoff.to_string())
            .arg(run_at)
            .arg(delay)
            .arg(unique_ms)
            .arg(max_queue_len)
            .arg(queue)
            .arg(self.trace)
            .arg(PROTOCOL_VERSION)
            .arg(hold)
    }
}

/// Create a batch of one queue's jobs that hold no unique key, in one call: each gets
/// what [`Enqueue`] would give it, and its own reply.
#[derive(Debug, Clone)]
pub struct EnqueueMany<'a> {
    /// The queue (or partition) they go to.
    pub queue: &'a str,
    /// Refuse a job when the queue holds this many (0 = no cap).
    pub max_queue_len: u64,
    /// The jobs to create, each answered in order.
    pub jobs: Vec<EnqueueItem<'a>>,
}

impl ScriptCall for EnqueueMany<'_> {
    /// One reply per job, in order: what it did, or the script's refusal of it.
    type Reply = Vec<Result<EnqueueReply, ScriptError>>;
    const NAME: &'static str = "enqueue_many";

    fn call(&self, keys: &Keys) -> Call {
        let q = self.queue;
        let mut call = Call::new(&ENQUEUE_MANY)
            .key(keys.stream(q))
            .key(keys.delayed(q))
            .arg(keys.job_prefix(q));
        // Each job's arguments are the published script's first 15, in its order, then
        // its expiry and group (its ARGV[18] and ARGV[19]).
        for job in &self.jobs {
            call = job
                .args(call, 0, self.max_queue_len, q, "")
                .arg(job.expires_at_ms)
                .arg(job.group);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Self::Reply, ScriptError> {
        let words: Vec<String> = items(value.clone())
            .map(|items| items.iter().filter_map(text).collect())
            .ok_or_else(|| ScriptError::reply(Self::NAME, &value))?;
        Ok(words
            .into_iter()
            .map(|word| match word.as_str() {
                "created" => Ok(EnqueueReply::Created),
                "exists" => Ok(EnqueueReply::Exists),
                _ => match word.strip_prefix("QUEUE_FULL ") {
                    Some(detail) => Ok(EnqueueReply::QueueFull(detail.to_owned())),
                    None => Err(ScriptError::Reply {
                        script: Self::NAME,
                        reply: word,
                    }),
                },
            })
            .collect())
    }
}
