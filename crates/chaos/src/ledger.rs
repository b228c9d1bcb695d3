//! The drill's ledger: the `chaos` handler appends a line for every execution it begins
//! and ends, to a file of its own process, outside Redis, so what ran is known even when
//! Redis forgets; the verdict reads every file back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde::Deserialize;

/// The job type the drill enqueues and its workers serve.
pub const JOB_TYPE: &str = "chaos";

/// What a line says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The handler began.
    Began,
    /// The handler finished; the worker then reports the completion (which Redis may
    /// refuse, if the attempt was taken over meanwhile).
    Finished,
    /// The handler was stopped (cancelled, lease lost, shutdown) before finishing.
    Stopped,
}

impl Mark {
    fn letter(self) -> char {
        match self {
            Mark::Began => 'B',
            Mark::Finished => 'F',
            Mark::Stopped => 'S',
        }
    }

    fn from_letter(letter: &str) -> Option<Self> {
        match letter {
            "B" => Some(Mark::Began),
            "F" => Some(Mark::Finished),
            "S" => Some(Mark::Stopped),
            _ => None,
        }
    }
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub mark: Mark,
    /// `<queue>/<id>`: an id from a plain XADD is its entry id, unique in its stream
    /// only, and after a Redis restart two queues' streams can hand out the same one.
    pub job: String,
    pub attempt: u32,
    pub pid: u32,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: i64,
}

#[derive(Deserialize)]
struct StepArgs {
    ms: u64,
}

/// This process's ledger file in `dir`, opened for appending: what a `chaos-worker`
/// process (a worker from its settings plus [`register_ledger`]) writes to.
pub fn open_ledger(dir: &Path) -> anyhow::Result<Arc<File>> {
    let path = dir.join(format!("{}.ledger", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the ledger {}", path.display()))?;
    Ok(Arc::new(file))
}

/// Registers the drill's `chaos` handler, which notes in `ledger` each execution it
/// begins, finishes or is stopped in.
pub fn register_ledger(registry: &mut Registry, ledger: Arc<File>) {
    registry.register_fn(JOB_TYPE, move |args: StepArgs, ctx: JobContext| {
        let ledger = Arc::clone(&ledger);
        async move {
            append(&ledger, Mark::Began, &ctx);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(args.ms)) => {
                    append(&ledger, Mark::Finished, &ctx);
                    Ok(None::<()>)
                }
                _ = ctx.cancel.cancelled() => {
                    append(&ledger, Mark::Stopped, &ctx);
                    Err(HandlerError::retry("stopped"))
                }
            }
        }
    });
}

/// Appends one line in one write, so lines of concurrent jobs never interleave and a
/// SIGKILL leaves at most the last line cut short.
fn append(mut ledger: &File, mark: Mark, ctx: &JobContext) {
    let line = format!(
        "{} {} {} {} {}\n",
        mark.letter(),
        job_key(&ctx.queue, &ctx.id),
        ctx.attempt,
        std::process::id(),
        now_ms()
    );
    // A full disk must not fail the job; the verdict would show the gap.
    if let Err(e) = ledger.write_all(line.as_bytes()) {
        tracing::warn!(job = %ctx.id, "cannot write the chaos ledger: {e}");
    }
}

/// How the drill names a job: its queue and id.
pub fn job_key(queue: &str, id: &str) -> String {
    format!("{queue}/{id}")
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Every line of every ledger file in `dir`, oldest first; lines cut short by a kill are
/// skipped.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Execution>> {
    let mut executions = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the ledger {}", dir.display()))?;
    for entry in entries {
        let path: PathBuf = entry?.path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        executions.extend(text.lines().filter_map(parse_line));
    }
    executions.sort_by_key(|e| e.at_ms);
    Ok(executions)
}

fn parse_line(line: &str) -> Option<Execution> {
    let mut fields = line.split(' ');
    let mark = Mark::from_letter(fields.next()?)?;
    let job = fields.next()?.to_owned();
    let attempt = fields.next()?.parse().ok()?;
    let pid = fields.next()?.parse().ok()?;
    let at_ms = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some(Execution {
        mark,
        job,
        attempt,
        pid,
        at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_and_a_torn_one_is_skipped() {
        let line = "B low/1700000000000-0 2 4242 1700000000123";
        assert_eq!(
            parse_line(line),
            Some(Execution {
                mark: Mark::Began,
                job: "low/1700000000000-0".to_owned(),
                attempt: 2,
                pid: 4242,
                at_ms: 1_700_000_000_123,
            })
        );
        assert_eq!(parse_line("B low/1700000000000-0 2 42"), None);
        assert_eq!(parse_line("Q 1 1 1 1"), None);
    }
}
