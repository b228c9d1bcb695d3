//! The `batch` binding: open a batch of jobs with callbacks, add jobs to an open one, or
//! seal it (protocol 2.19).

use std::fmt;

use super::enqueue::EnqueueItem;
use super::reply::{items, text};
use super::{BATCH, Call, ScriptCall, ScriptError};
use crate::Keys;

/// When a batch's callback runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    /// Once every job of the sealed batch completed.
    Success,
    /// Once every job of the sealed batch ended, however.
    Complete,
    /// At the first job that ends without completing (dead, cancelled, expired, deleted).
    Death,
}

impl CallbackKind {
    /// Its name in the protocol: `success`, `complete` or `death`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Success => "success",
            CallbackKind::Complete => "complete",
            CallbackKind::Death => "death",
        }
    }
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call does to the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Create it, with its callbacks and its first jobs.
    Open,
    /// Add jobs to it while it is open.
    Add,
    /// Add no job from now on.
    Seal,
}

impl BatchMode {
    fn as_str(self) -> &'static str {
        match self {
            BatchMode::Open => "open",
            BatchMode::Add => "add",
            BatchMode::Seal => "seal",
        }
    }
}

/// One call of the `batch` script.
#[derive(Debug, Clone)]
pub struct BatchCall<'a> {
    /// The queue (or partition) the batch lives in.
    pub queue: &'a str,
    /// The batch's id.
    pub id: &'a str,
    /// What the call does.
    pub mode: BatchMode,
    /// Seal it in the same call (with [`BatchMode::Open`] or [`BatchMode::Add`]).
    pub seal: bool,
    /// Its callbacks (with [`BatchMode::Open`] only), each with the queue it goes to.
    pub callbacks: Vec<(CallbackKind, &'a str, EnqueueItem<'a>)>,
    /// The jobs to add, each with the queue it goes to.
    pub jobs: Vec<(&'a str, EnqueueItem<'a>)>,
}

/// A batch's counts, as the script answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct BatchCounts {
    /// Jobs added.
    pub total: u64,
    /// Jobs not yet ended.
    pub pending: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs dead (an operator's retry may still complete them).
    pub dead: u64,
    /// Jobs cancelled, expired or deleted: over for good.
    pub ended: u64,
    /// No job may be added any more.
    pub sealed: bool,
}

impl ScriptCall for BatchCall<'_> {
    type Reply = BatchCounts;
    const NAME: &'static str = "batch";

    fn call(&self, keys: &Keys) -> Call {
        let mut call = Call::new(&BATCH)
            .key(keys.stream(self.queue))
            .arg(keys.namespace())
            .arg(self.queue)
            .arg(self.id)
            .arg(self.mode.as_str())
            .arg(if self.seal { "seal" } else { "" })
            .arg(self.callbacks.len());
        for (kind, queue, job) in &self.callbacks {
            call = job
                .args(call.arg(kind.as_str()), 0, 0, queue, "")
                .arg(0)
                .arg(0)
                .arg(job.expires_at_ms)
                .arg(job.group);
        }
        call = call.arg(self.jobs.len());
        for (queue, job) in &self.jobs {
            call = job
                .args(call, 0, 0, queue, "")
                .arg(0)
                .arg(0)
                .arg(job.expires_at_ms)
                .arg(job.group);
        }
        call
    }

    fn parse(value: redis::Value) -> Result<Self::Reply, ScriptError> {
        let numbers: Vec<u64> = items(value.clone())
            .map(|items| {
                items
                    .iter()
                    .filter_map(text)
                    .filter_map(|t| t.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        match numbers.as_slice() {
            [total, pending, completed, dead, ended, sealed] => Ok(BatchCounts {
                total: *total,
                pending: *pending,
                completed: *completed,
                dead: *dead,
                ended: *ended,
                sealed: *sealed == 1,
            }),
            _ => Err(ScriptError::reply(Self::NAME, &value)),
        }
    }
}
