//! The `enqueue` binding: put a job with an id of its own on its stream (the whole job in
//! its entry, its id remembered by its id key) or, with a record, in `delayed`.

use super::reply::{items, text};
use super::{Call, ENQUEUE, ScriptCall, ScriptError};
use crate::{Backoff, Keys, PROTOCOL_VERSION, Payload};

/// When a new job may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    /// At this instant, ms since the Unix epoch.
    At(u64),
    /// This long after the enqueue, on the Redis server's clock, in ms.
    After(u64),
}

/// A unique key held by the new job.
#[derive(Debug, Clone, Copy)]
pub struct UniqueLock<'a> {
    pub key: &'a str,
    pub ttl_ms: u64,
    /// Hold the key for its whole TTL even after the job finishes (scheduled ticks);
    /// otherwise it is released when the job completes or is cancelled.
    pub until_expiry: bool,
}

/// One job to create.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    pub queue: &'a str,
    pub id: &'a str,
    pub job_type: &'a str,
    pub payload: &'a Payload,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff: &'a Backoff,
    pub when: When,
    pub unique: Option<UniqueLock<'a>>,
    /// Refuse the job when the queue holds this many (0 = no cap).
    pub max_queue_len: u64,
    /// W3C trace context to carry, empty when none.
    pub trace: &'a str,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueReply {
    Created,
    /// Another job holds the unique key: this is its id.
    Duplicate {
        holder: String,
    },
    /// A job with this id exists already; nothing changed.
    Exists,
    /// The queue is at its length cap (backpressure): the script's message.
    QueueFull(String),
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
        }
        let (run_at, delay) = match self.when {
            When::Now => (0, 0),
            When::At(ms) => (ms.max(1), 0),
            When::After(ms) => (0, ms),
        };
        call.arg(self.id)
            .arg(self.job_type)
            .arg(&self.payload.bytes)
            .arg(self.payload.content_type.as_str())
            .arg(self.max_attempts)
            .arg(self.timeout_ms)
            .arg(self.backoff.to_string())
            .arg(run_at)
            .arg(delay)
            .arg(self.unique.map_or(0, |u| u.ttl_ms.max(1)))
            .arg(self.max_queue_len)
            .arg(q)
            .arg(self.trace)
            .arg(PROTOCOL_VERSION)
            .arg(if self.unique.is_some_and(|u| u.until_expiry) {
                "expiry"
            } else {
                "finished"
            })
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
