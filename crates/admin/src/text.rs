//! A job as plain text, one field a line, as `flotilla jobs show` and the demo print it.

use flotilla_proto::JobRecord;

/// A time in ms since the Unix epoch as RFC 3339 text, or `-` when there is none.
fn time(ms: Option<u64>) -> String {
    ms.and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// `record` as text, one field a line (name padded to 12 columns, then the value); each
/// attempt's error on a line of its own, a multi-line error indented under it.
pub fn job_text(record: &JobRecord) -> String {
    let r = record;
    let status = r.status.map_or("unknown", |s| s.as_str());
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));
    line("id", r.full_id());
    line("type", r.job_type.clone());
    line("queue", r.queue.clone());
    line("status", status.to_owned());
    if let Some(group) = &r.group {
        line("group", group.clone());
    }
    line("attempts", r.attempts_shown());
    if r.snoozes > 0 {
        line(
            "snoozed",
            format!("{} times (not counted as attempts)", r.snoozes),
        );
    }
    line("created", time(r.created_at));
    line("run at", time(r.run_at));
    if r.next_run_at.is_some() {
        line("next run", time(r.next_run_at));
    }
    if r.expires_at.is_some() {
        line("expires", time(r.expires_at));
    }
    line("started", time(r.started_at));
    line("finished", time(r.finished_at));
    if let Some(worker) = &r.worker {
        line("worker", worker.clone());
    }
    line("payload", r.payload.to_string());
    if let Some(progress) = &r.progress {
        line("progress", progress.to_string());
    }
    if let Some(result) = &r.result {
        line("result", result.to_string());
    }
    if let Some(error) = &r.error {
        line("error", error.clone());
    }
    for (i, failed) in r.errors.iter().enumerate() {
        let name = if i == 0 { "errors" } else { "" };
        // A multi-line error stays under its own attempt.
        let error = failed.error.replace('\n', "\n                 ");
        line(
            name,
            format!("#{:<2} {}  {error}", failed.attempt, time(Some(failed.at))),
        );
    }
    let mut raw: Vec<_> = r.raw.iter().collect();
    raw.sort();
    for (name, value) in raw {
        line(&format!("raw {name}"), value.clone());
    }
    out
}
