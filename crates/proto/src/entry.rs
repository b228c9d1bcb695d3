//! Stream entries: what a producer XADDs, and how a worker reads it.
//!
//! An entry carries either a job id (`id`; its record holds the rest) or the whole job
//! (`type`, `payload`, and optionally `content_type`, `max_attempts`, `timeout`,
//! `backoff`, `run_at` or `delay`, `expires_at`, `attempts`, `traceparent`). An entry with the whole job and no `id` is
//! on the fast path: its job id is its entry id and it has no record unless it fails, is
//! handed back, reports progress or is cancelled.

use std::collections::HashMap;

use crate::{
    Backoff, ContentType, Payload, ProtoError, check_max_attempts, check_name, check_timeout_ms,
    field,
};

/// One entry as read from a stream: its id and raw fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its stream entry id, `<ms>-<seq>`.
    pub entry_id: String,
    /// Its fields by name, values as the raw bytes Redis holds.
    pub fields: HashMap<String, Vec<u8>>,
}

/// The fields of an entry, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFields {
    /// The producer's job id, if it gave one.
    pub job_id: Option<String>,
    /// Present when the entry carries the whole job (a raw XADD).
    pub job_type: Option<String>,
    /// The job's arguments (empty when the entry names only a job id).
    pub payload: Payload,
    /// How many attempts the job gets, the first included; `None` when the entry does not
    /// say.
    pub max_attempts: Option<u32>,
    /// How long one attempt may run, in ms; `None` when the entry does not say.
    pub timeout_ms: Option<u64>,
    /// How long to wait between attempts; `None` when the entry does not say.
    pub backoff: Option<Backoff>,
    /// When to run, ms since the Unix epoch: a later time waits in `delayed`.
    pub run_at_ms: Option<u64>,
    /// Never start at or after this time, ms since the Unix epoch: the job ends as
    /// `expired` instead (protocol 2.16).
    pub expires_at_ms: Option<u64>,
    /// Its group (protocol 2.17), when it has one.
    pub group: Option<String>,
    /// Attempts the job spent before this entry was written (a copy put back by
    /// reconciliation carries them).
    pub attempts: Option<u32>,
    /// Times the job was snoozed before this entry was written (none of them attempts);
    /// a number that is not a whole one reads as 0, as the scripts read it.
    pub snoozes: u32,
    /// The producer's trace context, passed on to the run: `traceparent`, then
    /// `tracestate` on a second line when there is one.
    pub trace: Option<String>,
}

impl EntryFields {
    /// Whether the entry may run on the fast path at `now_ms`: it carries the whole job
    /// and is due. One that names a job id runs so only once claimed (see
    /// [`StreamEntry::own_id_to_claim`]); any other entry starts through its record: one
    /// that names only a job id, or waits for its time.
    pub fn is_fast(&self, now_ms: u64) -> bool {
        self.job_type.is_some() && self.run_at_ms.is_none_or(|due| due <= now_ms)
    }

    /// Whether the job may no longer start at `now_ms`: its `expires_at` has come.
    pub fn has_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

impl StreamEntry {
    /// The fields that are text, by name (a binary payload, say, is left out): what a
    /// reader of dead letters or completions looks at.
    pub fn text_fields(&self) -> std::collections::HashMap<String, String> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                std::str::from_utf8(v)
                    .ok()
                    .map(|v| (k.clone(), v.to_owned()))
            })
            .collect()
    }

    /// Builds an entry from what the redis crate returns for one stream id.
    pub fn from_stream_id(id: &redis::streams::StreamId) -> Self {
        let fields = id
            .map
            .iter()
            .map(|(name, value)| {
                let bytes = match value {
                    redis::Value::BulkString(b) => b.clone(),
                    redis::Value::SimpleString(s) => s.clone().into_bytes(),
                    redis::Value::Int(i) => i.to_string().into_bytes(),
                    _ => Vec::new(),
                };
                (name.clone(), bytes)
            })
            .collect();
        Self {
            entry_id: id.id.clone(),
            fields,
        }
    }

    fn text(&self, name: &'static str) -> Result<Option<&str>, ProtoError> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| ProtoError::BadField {
                    field: name,
                    value: String::from_utf8_lossy(bytes).into_owned(),
                    expected: "UTF-8 text",
                }),
        }
    }

    /// The job id named by the whole job this entry carries (it has a `type`), when that
    /// id is a valid name: the id a worker claims before the entry runs, so that one entry
    /// per id runs. An id of an entry id's form is a retried job's without an id of its own
    /// (its id key names the entry), or a copy whose record leads (the claim says so).
    pub fn own_id_to_claim(&self) -> Option<&str> {
        if !self.fields.contains_key(field::TYPE) {
            return None;
        }
        let Some(id) = self.fields.get(field::ID) else {
            return self
                .fields
                .get(field::RETRY_OF)
                .and_then(|id| std::str::from_utf8(id).ok())
                .filter(|id| crate::is_entry_id(id));
        };
        let id = std::str::from_utf8(id).ok()?;
        check_name(field::ID, id).is_ok().then_some(id)
    }

    /// Whether the whole job this entry carries (it has a `type`) may no longer start at
    /// `now_ms`: its `expires_at` has come (0 is never). An `expires_at` that does not
    /// read as a time is not an expiry: decoding the entry refuses it.
    pub fn has_expired(&self, now_ms: u64) -> bool {
        self.fields.contains_key(field::TYPE)
            && self
                .fields
                .get(field::EXPIRES_AT)
                .and_then(|at| std::str::from_utf8(at).ok())
                .and_then(|at| at.trim().parse::<u64>().ok())
                .is_some_and(|at| at > 0 && at <= now_ms)
    }

    /// Whether a script wrote this entry together with the id key naming it (`held`), so
    /// that at its first delivery it runs without a claim: no other entry can hold its
    /// id. A producer that writes `held` by hand skips the duplicate check, but never
    /// takes the id from the job that holds it (the completion checks the key).
    pub fn holds_its_id(&self) -> bool {
        self.fields.get(field::HELD).is_some_and(|v| v == b"1")
    }

    /// The job id a retry's entry carries for a job without an id of its own (an entry
    /// id's form; anything else is ignored, and the entry is a job of its own).
    fn retry_of(&self) -> Option<String> {
        let id = std::str::from_utf8(self.fields.get(field::RETRY_OF)?).ok()?;
        crate::is_entry_id(id).then(|| id.to_owned())
    }

    /// The job id this entry stands for: the producer's `id` when it is a valid name, else
    /// the entry id (so a malformed id never becomes part of a key or a log line).
    pub fn job_id(&self) -> String {
        match self.text(field::ID) {
            Ok(Some(id)) if check_name(field::ID, id).is_ok() => id.to_owned(),
            _ => self.retry_of().unwrap_or_else(|| self.entry_id.clone()),
        }
    }

    /// Decodes and checks the fields. A payload over `payload_limit` bytes, or one that
    /// does not decode in its content type, is an error: retrying cannot help.
    pub fn decode(&self, payload_limit: usize) -> Result<EntryFields, ProtoError> {
        let job_id = match self.name(field::ID)? {
            Some(id) => Some(id),
            None => self.retry_of(),
        };
        let job_type = self.name(field::TYPE)?;
        if job_id.is_none() && job_type.is_none() {
            return Err(ProtoError::NoType);
        }
        let payload = self.payload()?;
        if job_type.is_some() {
            payload.validate(payload_limit)?;
        }
        // Checked in this order, so an entry with several bad fields names the first.
        let max_attempts = self.max_attempts()?;
        let timeout_ms = self.timeout_ms()?;
        let backoff = self
            .text(field::BACKOFF)?
            .map(str::parse::<Backoff>)
            .transpose()?;
        let run_at_ms = self.run_at_ms()?;
        let expires_at_ms = self.expires_at_ms()?;
        let group = self.group()?;
        self.refuse_unique()?;
        Ok(EntryFields {
            job_id,
            attempts: self.attempts()?,
            snoozes: self
                .text(crate::record::field::SNOOZES)
                .ok()
                .flatten()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0),
            trace: self.trace()?,
            job_type,
            payload,
            max_attempts,
            timeout_ms,
            backoff,
            run_at_ms,
            expires_at_ms,
            group,
        })
    }

    /// The payload with its content type (JSON when none is named).
    fn payload(&self) -> Result<Payload, ProtoError> {
        let content_type = self
            .text(field::CONTENT_TYPE)?
            .unwrap_or("")
            .parse::<ContentType>()?;
        Ok(Payload {
            content_type,
            bytes: self.fields.get(field::PAYLOAD).cloned().unwrap_or_default(),
        })
    }

    /// `max_attempts`, if given: a whole number within the protocol's bounds.
    fn max_attempts(&self) -> Result<Option<u32>, ProtoError> {
        let Some(text) = self.text(field::MAX_ATTEMPTS)? else {
            return Ok(None);
        };
        match text.trim().parse::<u64>() {
            Ok(n) => Ok(Some(check_max_attempts(n)?)),
            Err(_) => Err(ProtoError::BadField {
                field: field::MAX_ATTEMPTS,
                value: text.to_owned(),
                expected: crate::MAX_ATTEMPTS_RULE,
            }),
        }
    }

    /// `timeout`, if given: milliseconds, or a number with a unit.
    fn timeout_ms(&self) -> Result<Option<u64>, ProtoError> {
        let Some(text) = self.text(field::TIMEOUT)? else {
            return Ok(None);
        };
        let ms = parse_duration_ms(text).ok_or_else(|| ProtoError::BadField {
            field: field::TIMEOUT,
            value: text.to_owned(),
            expected: "milliseconds, or a number with a unit: 500ms, 30s, 5m, 1h",
        })?;
        Ok(Some(check_timeout_ms(ms)?))
    }

    /// When the job may run: its `run_at`, or its `delay` after the XADD; never both.
    fn run_at_ms(&self) -> Result<Option<u64>, ProtoError> {
        let run_at_ms = match self.text(field::RUN_AT)? {
            None => None,
            Some(text) => Some(crate::check_run_at_ms(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| ProtoError::BadField {
                        field: field::RUN_AT,
                        value: text.to_owned(),
                        expected: "milliseconds since the Unix epoch",
                    })?,
            )?),
        };
        match (run_at_ms, self.delay_due_ms()?) {
            (Some(_), Some(_)) => Err(ProtoError::BadField {
                field: field::DELAY,
                value: "given with run_at".to_owned(),
                expected: "either `run_at` or `delay`, not both",
            }),
            (run_at, delayed) => Ok(run_at.or(delayed)),
        }
    }

    /// `expires_at`, if given: milliseconds since the Unix epoch, within the bound of a
    /// run time; 0 is never, as the scripts read it.
    fn expires_at_ms(&self) -> Result<Option<u64>, ProtoError> {
        let Some(text) = self.text(field::EXPIRES_AT)? else {
            return Ok(None);
        };
        let ms = text
            .trim()
            .parse::<u64>()
            .map_err(|_| ProtoError::BadField {
                field: field::EXPIRES_AT,
                value: text.to_owned(),
                expected: crate::checks::EXPIRES_AT_RULE,
            })?;
        Ok(Some(crate::check_expires_at_ms(ms)?).filter(|&at| at > 0))
    }

    /// `group`, if given: a name. Only the published script keeps a group's turn (it
    /// writes the entry once the group's window has room); on a raw XADD the field is
    /// carried but the job runs when read.
    fn group(&self) -> Result<Option<String>, ProtoError> {
        self.name(field::GROUP)
    }

    /// Refuses a `unique` field: a worker reads an entry after it was added, so a duplicate
    /// could already be queued or running; only the enqueue script holds a unique key
    /// atomically.
    fn refuse_unique(&self) -> Result<(), ProtoError> {
        match self.fields.get(field::UNIQUE) {
            None => Ok(()),
            Some(key) => Err(ProtoError::BadField {
                field: field::UNIQUE,
                value: String::from_utf8_lossy(key).into_owned(),
                expected: "no `unique` on a raw entry: enqueue a unique job with the \
                           published script protocol/v2/enqueue.lua",
            }),
        }
    }

    /// `attempts`, if given: attempts already spent (a retry's entry says so).
    fn attempts(&self) -> Result<Option<u32>, ProtoError> {
        let Some(text) = self.text(field::ATTEMPTS)? else {
            return Ok(None);
        };
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= crate::MAX_ATTEMPTS)
            .map(Some)
            .ok_or_else(|| ProtoError::BadField {
                field: field::ATTEMPTS,
                value: text.to_owned(),
                expected: "a whole number of attempts already spent",
            })
    }

    /// The trace context: W3C `traceparent` (and `tracestate`), or the older `trace` field.
    fn trace(&self) -> Result<Option<String>, ProtoError> {
        let parent = self
            .text(crate::trace_context::TRACEPARENT)?
            .or(self.text(field::TRACE)?)
            .filter(|t| !t.is_empty());
        let state = self
            .text(crate::trace_context::TRACESTATE)?
            .filter(|t| !t.is_empty());
        Ok(parent.map(|parent| crate::trace_context::join(parent, state)))
    }

    /// When a `delay` entry is due: its entry id's time (the Redis server's clock at the
    /// XADD) plus the delay, so the wait is the same however late a worker reads it.
    fn delay_due_ms(&self) -> Result<Option<u64>, ProtoError> {
        let Some(text) = self.text(field::DELAY)? else {
            return Ok(None);
        };
        let added_ms = self
            .entry_id
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        let delay = parse_duration_ms(text).ok_or_else(|| ProtoError::BadField {
            field: field::DELAY,
            value: text.to_owned(),
            expected: "milliseconds, or a number with a unit: 500ms, 30s, 5m, 1h",
        })?;
        crate::check_duration_ms(field::DELAY, delay)?;
        Ok(Some(added_ms.saturating_add(delay)))
    }

    /// An `id` or `type` field: absent or empty is `None`; anything else must be a valid
    /// name (no control characters that could forge a log line).
    fn name(&self, name: &'static str) -> Result<Option<String>, ProtoError> {
        match self.text(name)? {
            None | Some("") => Ok(None),
            Some(value) => {
                check_name(name, value)?;
                Ok(Some(value.to_owned()))
            }
        }
    }
}

/// A job written whole into its stream entry (protocol 2's fast path): one XADD, no
/// record, and its entry id becomes its job id.
#[derive(Debug, Clone)]
pub struct FastEntry<'a> {
    /// The queue (or partition) whose stream it is added to.
    pub queue: &'a str,
    /// Its job type.
    pub job_type: &'a str,
    /// Its arguments; a content type other than JSON is written into the entry.
    pub payload: &'a Payload,
    /// The job's own attempts, timeout and backoff. One it does not set is left out of
    /// the entry, and the worker that runs the job applies its `[defaults]`, as for an
    /// entry from any other producer: every field left out is one less to write, store,
    /// read and parse for each job.
    pub max_attempts: Option<u32>,
    /// How long one attempt may run, in ms, if the job sets it.
    pub timeout_ms: Option<u64>,
    /// How long to wait between attempts, if the job sets it.
    pub backoff: Option<&'a Backoff>,
    /// The producer's trace context (`traceparent`, then `tracestate` on a second line);
    /// empty for none.
    pub trace: &'a str,
    /// When the job may no longer start, ms since the Unix epoch, if it expires.
    pub expires_at_ms: Option<u64>,
}

impl FastEntry<'_> {
    /// The XADD that enqueues it; its reply is the job id.
    pub fn xadd(&self, keys: &crate::Keys) -> redis::Cmd {
        let stream = keys.stream(self.queue);
        // Sized once for the usual fields, rather than grown argument by argument.
        let bytes = stream.len() + self.job_type.len() + self.payload.bytes.len() + 128;
        let mut cmd = redis::Cmd::with_capacity(12, bytes);
        cmd.arg("XADD")
            .arg(stream)
            .arg("*")
            .arg(field::TYPE)
            .arg(self.job_type)
            .arg(field::PAYLOAD)
            .arg(&self.payload.bytes);
        // JSON is what an entry without a content type holds.
        if self.payload.content_type != crate::ContentType::Json {
            cmd.arg(field::CONTENT_TYPE)
                .arg(self.payload.content_type.as_str());
        }
        if let Some(max_attempts) = self.max_attempts {
            cmd.arg(field::MAX_ATTEMPTS).arg(max_attempts);
        }
        if let Some(timeout_ms) = self.timeout_ms {
            cmd.arg(field::TIMEOUT).arg(timeout_ms);
        }
        if let Some(backoff) = self.backoff {
            cmd.arg(field::BACKOFF).arg(backoff.to_string());
        }
        if let Some(expires_at_ms) = self.expires_at_ms {
            cmd.arg(field::EXPIRES_AT).arg(expires_at_ms);
        }
        let (parent, state) = crate::trace_context::split(self.trace);
        if let Some(parent) = parent {
            cmd.arg(crate::trace_context::TRACEPARENT).arg(parent);
        }
        if let Some(state) = state {
            cmd.arg(crate::trace_context::TRACESTATE).arg(state);
        }
        cmd
    }
}

/// Parses `1500`, `1500ms`, `30s`, `5m` or `1h` into milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> StreamEntry {
        StreamEntry {
            entry_id: "1-0".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_raw_entry_with_type_and_payload_decodes() {
        let e = entry(&[("type", b"send_email"), ("payload", br#"{"to":"a@b.c"}"#)]);
        let fields = e.decode(1024).expect("decodes");
        assert_eq!(fields.job_type.as_deref(), Some("send_email"));
        assert_eq!(fields.payload.content_type, ContentType::Json);
        assert_eq!(e.job_id(), "1-0");
    }

    #[test]
    fn a_delay_counts_from_the_entrys_own_time() {
        let mut e = entry(&[("type", b"t"), ("delay", b"30s")]);
        e.entry_id = "1700000000000-3".into();
        let fields = e.decode(1024).expect("decodes");
        assert_eq!(fields.run_at_ms, Some(1_700_000_030_000));
        assert!(!fields.is_fast(1_700_000_000_001), "waits for its time");
        assert!(fields.is_fast(1_700_000_030_000), "runs at its time");
    }

    #[test]
    fn a_job_expires_at_its_time_and_not_before() {
        let fields = entry(&[("type", b"t"), ("expires_at", b"1700000000000")])
            .decode(1024)
            .expect("decodes");
        assert_eq!(fields.expires_at_ms, Some(1_700_000_000_000));
        assert!(!fields.has_expired(1_699_999_999_999));
        assert!(fields.has_expired(1_700_000_000_000));
        let forever = entry(&[("type", b"t")]).decode(1024).expect("decodes");
        assert!(!forever.has_expired(u64::MAX));
    }

    #[test]
    fn a_whole_job_naming_an_id_is_on_the_fast_path_once_claimed() {
        let own = entry(&[("id", b"order-7"), ("type", b"t")]);
        assert!(own.decode(1024).expect("decodes").is_fast(0));
        assert_eq!(own.own_id_to_claim(), Some("order-7"));
        let named_only = entry(&[("id", b"order-7")]);
        assert!(!named_only.decode(1024).expect("decodes").is_fast(0));
        assert_eq!(named_only.own_id_to_claim(), None);
        // A copy whose record leads: the claim tells.
        let copy = entry(&[("id", b"1700000000000-3"), ("type", b"t")]);
        assert_eq!(copy.own_id_to_claim(), Some("1700000000000-3"));
        // A retry of a job without an id of its own names it in `retry_of`.
        let retry = entry(&[("retry_of", b"1700000000000-3"), ("type", b"t")]);
        assert_eq!(retry.own_id_to_claim(), Some("1700000000000-3"));
        assert_eq!(retry.job_id(), "1700000000000-3");
        let decoded = retry.decode(1024).expect("decodes");
        assert_eq!(decoded.job_id.as_deref(), Some("1700000000000-3"));
        let odd = entry(&[("retry_of", b"order-7"), ("type", b"t")]);
        assert_eq!(odd.own_id_to_claim(), None, "only an entry id's form");
        assert_eq!(odd.job_id(), "1-0");
    }

    #[test]
    fn bad_entries_name_their_problem() {
        type Fields<'a> = &'a [(&'a str, &'a [u8])];
        let cases: [(Fields, &str); 15] = [
            (&[("payload", b"{}")], "neither"),
            (&[("type", b"t"), ("payload", b"{oops")], "json"),
            (
                &[
                    ("type", b"t"),
                    ("content_type", b"msgpack"),
                    ("payload", b"\xc1"),
                ],
                "msgpack",
            ),
            (&[("type", b"t"), ("max_attempts", b"zero")], "max_attempts"),
            (&[("type", b"t"), ("timeout", b"soon")], "timeout"),
            (&[("type", b"t"), ("timeout", b"0")], "at least 1ms"),
            (
                &[("type", b"t"), ("max_attempts", b"99999")],
                "from 1 to 10000",
            ),
            (&[("type", b"a\r\nforged")], "control characters"),
            (&[("id", b"x\ny"), ("type", b"t")], "control characters"),
            (
                &[("type", b"t"), ("run_at", b"tomorrow")],
                "milliseconds since",
            ),
            (
                &[("type", b"t"), ("delay", b"later")],
                "a number with a unit",
            ),
            (
                &[("type", b"t"), ("delay", b"5s"), ("run_at", b"9")],
                "not both",
            ),
            (&[("type", b"t"), ("unique", b"k")], "published script"),
            (
                &[("type", b"t"), ("expires_at", b"10m")],
                "since the Unix epoch",
            ),
            (
                &[("type", b"t"), ("expires_at", b"99999999999999999")],
                "the year 3000",
            ),
        ];
        for (fields, needle) in cases {
            let err = entry(fields).decode(1024).expect_err("refused").to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        let big = entry(&[("type", b"t"), ("payload", b"\"0123456789\"")]);
        assert!(
            big.decode(8)
                .expect_err("too big")
                .to_string()
                .contains("limit")
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ms("1500"), Some(1500));
        assert_eq!(parse_duration_ms("30s"), Some(30_000));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
