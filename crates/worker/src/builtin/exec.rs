//! The `exec` handler: runs a command per job, payload as JSON on stdin, stdout as the
//! result. A non-zero exit fails the attempt; the child is killed on timeout or cancel.

use std::process::Stdio;
use std::sync::Arc;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::handler::HandlerFuture;
use crate::{Handler, HandlerError, JobContext};

/// How to run a command for a job type.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ExecHandler {
    /// Program and arguments, e.g. `["python3", "resize.py"]`.
    pub command: Vec<String>,
    /// Working directory; the worker's own when absent.
    #[serde(default)]
    pub dir: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

/// Stderr kept in an error message.
const STDERR_TAIL: usize = 500;

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
            .envs(&self.env)
            .env("FLOTILLA_JOB_ID", &ctx.id)
            .env("FLOTILLA_JOB_TYPE", &ctx.job_type)
            .env("FLOTILLA_QUEUE", &ctx.queue)
            .env("FLOTILLA_ATTEMPT", ctx.attempt.to_string())
            .env("FLOTILLA_MAX_ATTEMPTS", ctx.max_attempts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the future (timeout, cancel, shutdown) must not leave the child behind.
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|e| HandlerError::retry(format!("cannot start {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let bytes = input.to_string().into_bytes();
            // A child that exits without reading its input is not an error of ours.
            let _ = stdin.write_all(&bytes).await;
        }
        let output = tokio::select! {
            output = child.wait_with_output() => output
                .map_err(|e| HandlerError::retry(format!("{program} failed to run: {e}")))?,
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retry("cancelled")),
        };
        if output.status.success() {
            return Ok(super::output_to_result(&output.stdout));
        }
        let stderr = super::tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL);
        let how = match output.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        Err(HandlerError::Retry(format!("{program} {how}: {stderr}")))
    }
}
