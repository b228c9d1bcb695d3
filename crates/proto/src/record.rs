//! The job record: one hash per job holding everything known about it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{ContentType, Payload, ProtoError, Status};

/// Field names of the job record and of stream entries.
pub mod field {
    /// The job's id within its queue. On an entry, an id of the job's own; without one the
    /// entry id is the job id.
    pub const ID: &str = "id";
    /// On a retry's entry of a job without an id of its own (protocol 2.7): the job's id,
    /// its first entry's. Not `id`, which only ever names an id of a job's own, so an
    /// older worker runs the entry as a job of its own rather than refusing it.
    pub const RETRY_OF: &str = "retry_of";
    /// On an entry the scripts wrote together with the id key naming it (protocol 2.8):
    /// `1`. A worker runs such an entry at its first delivery without claiming the id.
    pub const HELD: &str = "held";
    /// The job type, which workers dispatch on.
    pub const TYPE: &str = "type";
    /// The queue (or partition) that holds the job.
    pub const QUEUE: &str = "queue";
    /// The job's arguments, encoded as `content_type` says; empty means JSON `null`.
    pub const PAYLOAD: &str = "payload";
    /// How the payload is encoded: `json` (also when missing) or `msgpack`.
    pub const CONTENT_TYPE: &str = "content_type";
    /// Where the job is in its life: one of the job states, by name.
    pub const STATUS: &str = "status";
    /// Attempts started so far; on an entry, those spent before the entry was written.
    pub const ATTEMPTS: &str = "attempts";
    /// Times the job's handler snoozed it ("not yet"), attempts not counted (2.13).
    pub const SNOOZES: &str = "snoozes";
    /// Attempts the job gets, the first included.
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    /// When the job was created, ms since the Unix epoch.
    pub const CREATED_AT: &str = "created_at";
    /// When the job became or becomes due, ms since the Unix epoch.
    pub const RUN_AT: &str = "run_at";
    /// Never start the job at or after this time, ms since the Unix epoch (2.16): a job
    /// not started by then ends as `expired`.
    pub const EXPIRES_AT: &str = "expires_at";
    /// The job's group (2.17): a tenant, an account. Where its queue limits how many jobs
    /// of each group run at once, it waits its group's turn.
    pub const GROUP: &str = "group";
    /// An entry field only: run this long after the XADD (the entry id's time).
    pub const DELAY: &str = "delay";
    /// An entry field only, refused: a raw XADD cannot hold a unique key atomically.
    pub const UNIQUE: &str = "unique";
    /// When a failed job's retry is due, ms since the Unix epoch.
    pub const NEXT_RUN_AT: &str = "next_run_at";
    /// When the current or last attempt started, ms since the Unix epoch.
    pub const STARTED_AT: &str = "started_at";
    /// When the job ended, ms since the Unix epoch.
    pub const FINISHED_AT: &str = "finished_at";
    /// In a stream entry: milliseconds or a duration with a unit.
    pub const TIMEOUT: &str = "timeout";
    /// In a record: milliseconds.
    pub const TIMEOUT_MS: &str = "timeout_ms";
    /// The retry policy in its wire form (`fixed:MS`, `exponential:BASE_MS:CAP_MS` or
    /// `list:MS,MS,…`).
    pub const BACKOFF: &str = "backoff";
    /// The last error.
    pub const ERROR: &str = "error";
    /// The last attempts' errors, as a JSON array of [`AttemptError`](super::AttemptError).
    pub const ERRORS: &str = "errors";
    /// The handler's result, as JSON text.
    pub const RESULT: &str = "result";
    /// The last progress the handler reported, as JSON text.
    pub const PROGRESS: &str = "progress";
    /// The worker running the job, or the one that last ran it.
    pub const WORKER: &str = "worker";
    /// The current attempt's lease token: the attempt's outcome counts only while the
    /// record still holds it.
    pub const LEASE: &str = "lease";
    /// The id of the stream entry that carries the job now.
    pub const ENTRY: &str = "entry";
    /// The Redis key of the unique lock the job holds, released when it completes or is
    /// cancelled.
    pub const UNIQUE_KEY: &str = "unique_key";
    /// The producer's trace context (`traceparent`, then `tracestate` on a second line); on
    /// an entry, the older name of `traceparent`.
    pub const TRACE: &str = "trace";
    /// The protocol version that wrote the record or entry (its major version, `2`).
    pub const VERSION: &str = "v";
}

/// Field names of a worker's registry hash (`{global}:worker:<id>`).
pub mod worker_field {
    /// Comma-separated queue names the worker serves.
    pub const QUEUES: &str = "queues";
    /// How long the worker's entries may go unrefreshed, in ms.
    pub const LEASE_MS: &str = "lease_ms";
    /// Its last heartbeat, ms on the server's clock: written by every heartbeat.
    pub const HEARTBEAT_AT: &str = "heartbeat_at";
}

/// One attempt that ended in an error, as the record's history (`errors`) keeps it: the
/// scripts append one when an attempt fails, times out or is interrupted because its
/// worker stopped responding, and keep the last ten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Which attempt, counting from 1 (0: before any attempt started).
    pub attempt: u32,
    /// When the attempt ended, ms since the Unix epoch.
    pub at: u64,
    /// What went wrong (cut at 2 000 bytes).
    pub error: String,
}

/// A job record as read with HGETALL. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// The job's id within its queue: its own id, or its entry id.
    pub id: String,
    /// The job type.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The queue (or partition) that holds it.
    pub queue: String,
    /// Where the job is in its life; `None` when the hash has no `status`.
    pub status: Option<Status>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed; 0 when not known (a job of which only its completion is kept).
    pub max_attempts: u32,
    /// Times its handler snoozed it ("not yet"), none of them counted as an attempt.
    pub snoozes: u32,
    /// When the job was created; `None` when not known.
    pub created_at: Option<u64>,
    /// When the job became, or becomes, due.
    pub run_at: Option<u64>,
    /// When a failed job's retry is due.
    pub next_run_at: Option<u64>,
    /// When the job expires if it has not started by then.
    pub expires_at: Option<u64>,
    /// Its group, if it has one.
    pub group: Option<String>,
    /// When the current or last attempt started.
    pub started_at: Option<u64>,
    /// When the job ended; `None` while it has not.
    pub finished_at: Option<u64>,
    /// How long one attempt may run, in ms.
    pub timeout_ms: Option<u64>,
    /// The retry policy in its wire form (`fixed:MS`, …); `None` when the hash has none.
    pub backoff: Option<String>,
    /// The last error; `errors` holds each attempt's.
    pub error: Option<String>,
    /// The errors of the last attempts that failed, oldest first.
    pub errors: Vec<AttemptError>,
    /// The handler's result, as JSON.
    pub result: Option<serde_json::Value>,
    /// The last progress the handler reported, as JSON.
    pub progress: Option<serde_json::Value>,
    /// The worker running the job, or the one that last ran it.
    pub worker: Option<String>,
    /// The payload's encoding as stored (`json` or `msgpack`; empty when the hash does not
    /// say, which reads as JSON).
    pub content_type: String,
    /// The payload decoded to JSON, or a string saying why it could not be.
    pub payload: serde_json::Value,
    /// Fields of a malformed entry kept for inspection (`raw_*` in the hash).
    pub raw: HashMap<String, String>,
}

impl JobRecord {
    /// The id that names this job in the whole namespace ([`crate::full_id`]).
    pub fn full_id(&self) -> String {
        crate::full_id(&self.queue, &self.id)
    }

    /// The attempts as a person reads them: `2 of 3`, or `1` when the most it may have
    /// is not known (a job whose completion is all that is kept: `done` holds its
    /// attempts, not its limit).
    pub fn attempts_shown(&self) -> String {
        if self.max_attempts == 0 {
            self.attempts.to_string()
        } else {
            format!("{} of {}", self.attempts, self.max_attempts)
        }
    }

    /// Reads a record from the hash's fields; `None` when the hash is empty (no such job).
    pub fn from_hash(hash: &HashMap<String, Vec<u8>>) -> Result<Option<Self>, ProtoError> {
        if hash.is_empty() {
            return Ok(None);
        }
        let text = |name: &str| {
            hash.get(name)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        // A number that is not a whole one (written by hand, or by an older version from
        // an absurd input, such as `1.8446744073709552e+19`) reads as unknown rather than
        // failing the whole record: the job can still be shown, cancelled and deleted.
        // What was stored is kept under `raw` as `unreadable_<field>`.
        let mut unreadable: Vec<(String, String)> = Vec::new();
        let mut number = |name: &'static str| -> Option<u64> {
            let s = text(name).filter(|s| !s.is_empty())?;
            match s.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    unreadable.push((format!("unreadable_{name}"), s));
                    None
                }
            }
        };
        let json = |name: &str| {
            text(name)
                .filter(|s| !s.is_empty())
                .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
        };
        let content_type = text(field::CONTENT_TYPE).unwrap_or_default();
        let payload = match content_type.parse::<ContentType>() {
            Ok(ct) => Payload {
                content_type: ct,
                bytes: hash.get(field::PAYLOAD).cloned().unwrap_or_default(),
            }
            .to_json()
            .unwrap_or_else(|e| serde_json::Value::String(format!("<undecodable: {e}>"))),
            Err(e) => serde_json::Value::String(format!("<undecodable: {e}>")),
        };
        let attempts = number(field::ATTEMPTS).unwrap_or(0) as u32;
        let max_attempts = number(field::MAX_ATTEMPTS).unwrap_or(0) as u32;
        let snoozes = u32::try_from(number(field::SNOOZES).unwrap_or(0)).unwrap_or(u32::MAX);
        let created_at = number(field::CREATED_AT);
        let run_at = number(field::RUN_AT);
        let next_run_at = number(field::NEXT_RUN_AT);
        let expires_at = number(field::EXPIRES_AT);
        let started_at = number(field::STARTED_AT);
        let finished_at = number(field::FINISHED_AT);
        let timeout_ms = number(field::TIMEOUT_MS);
        let raw = hash
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("raw_")
                    .map(|name| (name.to_owned(), String::from_utf8_lossy(v).into_owned()))
            })
            .chain(unreadable)
            .collect();
        Ok(Some(Self {
            id: text(field::ID).unwrap_or_default(),
            job_type: text(field::TYPE).unwrap_or_default(),
            queue: text(field::QUEUE).unwrap_or_default(),
            status: text(field::STATUS).map(|s| s.parse()).transpose()?,
            attempts,
            max_attempts,
            snoozes,
            created_at,
            run_at,
            next_run_at,
            expires_at,
            group: text(field::GROUP).filter(|s| !s.is_empty()),
            started_at,
            finished_at,
            timeout_ms,
            backoff: text(field::BACKOFF).filter(|s| !s.is_empty()),
            error: text(field::ERROR).filter(|s| !s.is_empty()),
            errors: text(field::ERRORS)
                .map(|history| attempt_errors(&history))
                .unwrap_or_default(),
            result: json(field::RESULT),
            progress: json(field::PROGRESS),
            worker: text(field::WORKER).filter(|s| !s.is_empty()),
            content_type,
            payload,
            raw,
        }))
    }
}

/// Reads the history of attempt errors. One that cannot be read (written by hand, say)
/// becomes a single entry saying so rather than failing the whole record.
fn attempt_errors(history: &str) -> Vec<AttemptError> {
    serde_json::from_str(history).unwrap_or_else(|e| {
        vec![AttemptError {
            attempt: 0,
            at: 0,
            error: format!("<unreadable history of errors: {e}>"),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_from_its_hash() {
        let hash: HashMap<String, Vec<u8>> = [
            ("id", "j1"),
            ("type", "noop"),
            ("queue", "default"),
            ("status", "completed"),
            ("attempts", "2"),
            ("max_attempts", "3"),
            ("content_type", "json"),
            ("payload", r#"{"a":1}"#),
            ("result", r#"{"ok":true}"#),
            ("raw_junk", "x"),
            (
                "errors",
                r#"[{"attempt":1,"at":1700000000000,"error":"boom"}]"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        let record = JobRecord::from_hash(&hash)
            .expect("valid")
            .expect("present");
        assert_eq!(record.status, Some(Status::Completed));
        assert_eq!(record.attempts, 2);
        assert_eq!(record.payload["a"], 1);
        assert_eq!(record.result, Some(serde_json::json!({"ok": true})));
        assert_eq!(record.raw.get("junk").map(String::as_str), Some("x"));
        assert_eq!(
            record.errors,
            vec![AttemptError {
                attempt: 1,
                at: 1_700_000_000_000,
                error: "boom".into()
            }]
        );
        assert!(
            JobRecord::from_hash(&HashMap::new())
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn an_unreadable_history_of_errors_says_so() {
        let errors = attempt_errors("not json");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].error.starts_with("<unreadable history of errors"));
    }
}
