//! What a worker passes for an attempt of a fast-path job (protocol 2: the job lives whole
//! in its stream entry and has no record), so that a script can fence the attempt by its
//! entry's delivery count and write the job's record when it must have one.

use super::Call;

/// A fast-path attempt, as the scripts that may write its record need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastJob {
    pub job_type: String,
    pub payload: Vec<u8>,
    pub content_type: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff: String,
    pub trace: String,
    /// When the attempt began, ms since the Unix epoch on the worker's clock.
    pub started_at_ms: u64,
}

/// Appends the block of arguments `adopt` (in `common.lua`) reads: the entry's delivery
/// count the attempt is current at (the attempt is current while its entry is pending
/// under its worker at this count), then the job; a count of 0 and empty fields for an
/// attempt that has a record.
pub(crate) fn fast_args(call: Call, delivery: u32, fast: Option<&FastJob>) -> Call {
    match fast {
        None => call.arg(0).arg(&["", "", "", "", "", "", "", "", ""][..]),
        Some(f) => call
            .arg(delivery)
            .arg(&f.job_type)
            .arg(&f.payload)
            .arg(&f.content_type)
            .arg(f.attempt)
            .arg(f.max_attempts)
            .arg(f.timeout_ms)
            .arg(&f.backoff)
            .arg(&f.trace)
            .arg(f.started_at_ms),
    }
}
