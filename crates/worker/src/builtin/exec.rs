//! The `exec` handler: runs a command per job, payload as JSON on stdin, stdout as the
//! result. A non-zero exit fails the attempt, except [`SNOOZE_EXIT_CODE`] (75,
//! `EX_TEMPFAIL`), which snoozes the job: "not yet", the attempt not counted, for the
//! seconds the command printed on stdout (60 when it printed no number). The child gets a clean environment (a few
//! harmless variables, the job's own, and what the handler's settings name), so a
//! worker's secrets never reach a job's output. It leads its own process group, and the
//! whole group ends with the job, however the job ends: what the command left running in
//! the background never outlives it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::process_group::ProcessGroup;
use crate::handler::HandlerFuture;
use crate::{Handler, HandlerError, JobContext};

/// The exit status that snoozes a job rather than failing it (`EX_TEMPFAIL` of
/// sysexits.h): the command says "not yet", and the job runs again after the seconds it
/// printed on stdout.
pub const SNOOZE_EXIT_CODE: i32 = 75;

/// How to run a command for a job type.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ExecHandler {
    /// Program and arguments, e.g. `["python3", "resize.py"]`.
    pub command: Vec<String>,
    /// Working directory; the worker's own when absent.
    #[serde(default)]
    pub dir: Option<String>,
    /// Variables set for the command, beside the base variables (PATH, HOME, LANG and the like) and the job's own `FLOTILLA_*`.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Names of the worker's own variables passed on as they are. Nothing else of the
    /// worker's environment is: it holds the Redis URL and tokens.
    #[serde(default)]
    pub inherit_env: Vec<String>,
    /// How long the process group gets after SIGTERM before SIGKILL.
    #[serde(default = "default_kill_grace", with = "humantime_serde")]
    pub kill_grace: Duration,
}

/// The default for [`ExecHandler::kill_grace`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

fn default_kill_grace() -> Duration {
    DEFAULT_KILL_GRACE
}

impl ExecHandler {
    /// Runs `command` (program first) with no extra settings.
    pub fn new<S: Into<String>>(command: impl IntoIterator<Item = S>) -> Self {
        Self {
            command: command.into_iter().map(Into::into).collect(),
            dir: None,
            env: Default::default(),
            inherit_env: Vec::new(),
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}

/// The worker's variables every command gets when the worker has them: where programs
/// are, the home directory, the locale and the time zone. They carry no secret.
pub const BASE_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// Stderr kept in an error message, in characters.
const STDERR_TAIL: usize = 500;
/// Stderr held in memory while the child runs, in bytes (only its end is shown).
const STDERR_KEPT: usize = 16 * 1024;

impl Handler for ExecHandler {
    fn call(&self, ctx: JobContext) -> HandlerFuture {
        let spec = Arc::new(self.clone());
        Box::pin(async move { spec.run(ctx).await })
    }
}

impl ExecHandler {
    async fn run(&self, ctx: JobContext) -> crate::HandlerResult {
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| HandlerError::give_up("exec handler has an empty command"))?;
        let input = ctx
            .payload
            .to_json()
            .map_err(|e| HandlerError::give_up(format!("payload cannot be read: {e}")))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.passed_env())
            .envs(&self.env)
            .env("FLOTILLA_JOB_ID", &ctx.id)
            .env("FLOTILLA_JOB_FULL_ID", ctx.full_id())
            .env("FLOTILLA_JOB_TYPE", &ctx.job_type)
            .env("FLOTILLA_QUEUE", &ctx.queue)
            .env("FLOTILLA_ATTEMPT", ctx.attempt.to_string())
            .env("FLOTILLA_MAX_ATTEMPTS", ctx.max_attempts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so ending the job ends what the command started too.
            .process_group(0);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|e| HandlerError::retry(format!("cannot start {program}: {e}")))?;
        // From here on the group ends with the job: when the command exits (whatever it
        // left in the background goes too, which also closes the pipes it held), and when
        // this function is left early (an error, or the future dropped on timeout, cancel
        // or shutdown).
        let mut group = ProcessGroup::new(child.id(), self.kill_grace);
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(HandlerError::retry("child process has no pipes"));
        };
        let bytes = input.to_string().into_bytes();
        let feed = async move {
            // A child that exits without reading its input is not an error of ours.
            let _ = stdin.write_all(&bytes).await;
            Ok::<(), ReadError>(())
        };
        let limit = ctx.max_result_bytes;
        let exited = async {
            let status = child.wait().await.map_err(ReadError::Wait)?;
            group.end();
            Ok(status)
        };
        // Stops at the first byte over the limit, without waiting for stderr to close.
        let run = async {
            tokio::try_join!(
                feed,
                read_bounded(stdout, limit),
                async { Ok(read_tail(stderr).await) },
                exited,
            )
        };
        let read = tokio::select! {
            read = run => read,
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retry("cancelled")),
        };
        let (_, stdout, stderr, status) = read.map_err(|e| match e {
            ReadError::OverLimit => HandlerError::give_up(format!(
                "{program} wrote more than {limit} bytes to stdout, over the result limit \
                 (limits.max_result_bytes); the process was stopped"
            )),
            ReadError::Io(e) => HandlerError::retry(format!("reading {program}'s output: {e}")),
            ReadError::Wait(e) => HandlerError::retry(format!("{program} failed to run: {e}")),
        })?;
        if status.success() {
            return Ok(super::output_to_result(&stdout));
        }
        if status.code() == Some(SNOOZE_EXIT_CODE) {
            return Err(HandlerError::snooze(super::snooze_delay(
                String::from_utf8_lossy(&stdout).trim(),
            )));
        }
        let stderr = super::tail(&String::from_utf8_lossy(&stderr), STDERR_TAIL);
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        Err(HandlerError::retry(format!("{program} {how}: {stderr}")))
    }

    /// The worker's own variables the command gets: [`BASE_ENV`] and `inherit_env`, those
    /// of them the worker has.
    fn passed_env(&self) -> impl Iterator<Item = (String, std::ffi::OsString)> + '_ {
        BASE_ENV
            .iter()
            .copied()
            .chain(self.inherit_env.iter().map(String::as_str))
            .filter_map(|name| std::env::var_os(name).map(|value| (name.to_owned(), value)))
    }
}

/// Why a child's output could not be taken.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    OverLimit,
    /// Waiting for the command to exit failed.
    Wait(std::io::Error),
}

/// Reads to the end, failing as soon as more than `limit` bytes arrive.
async fn read_bounded(reader: impl AsyncRead + Unpin, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .await
        .map_err(ReadError::Io)?;
    if out.len() > limit {
        return Err(ReadError::OverLimit);
    }
    Ok(out)
}

/// Reads to the end, keeping only the last [`STDERR_KEPT`] bytes.
async fn read_tail(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > STDERR_KEPT * 2 {
                    kept.drain(..kept.len() - STDERR_KEPT);
                }
            }
        }
    }
}
