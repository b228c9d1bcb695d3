//! The example service's jobs and handlers: welcome emails, checked, "sent" and timed.

use std::time::Instant;

use flotilla::{
    HandlerError, HandlerResult, Job, JobContext, JobOutput, Next, Registry, ResultExt,
};
use serde::{Deserialize, Serialize};

/// Welcome a new user by email.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendWelcome {
    /// Whom to greet.
    pub name: String,
    /// Where to write.
    pub email: String,
}

impl Job for SendWelcome {
    const TYPE: &'static str = "send_welcome"; // the name every language knows it by
    const QUEUE: &'static str = "mail"; // optional, as are these: the default is the fleet's
    const MAX_ATTEMPTS: Option<u32> = Some(5); // and TIMEOUT, backoff()
}

impl JobOutput for SendWelcome {
    type Output = Sent; // what its handler returns and `wait_output` decodes
}

/// What sending a welcome answers.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The address written to.
    pub to: String,
    /// The message's text.
    pub text: String,
}

/// Why an address cannot be written to.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an email address")]
pub struct BadAddress(String);

/// Sends one welcome. A malformed address stays malformed: the job gives up at once
/// rather than retrying.
pub async fn send_welcome(job: SendWelcome, ctx: JobContext) -> Result<Sent, HandlerError> {
    // Bad input stays bad: dead-letter now. Any other error (`?` on anything that is an
    // Error, anyhow's, a String) retries with the job's backoff.
    if !job.email.contains('@') {
        return Err(BadAddress(job.email)).give_up();
    }
    // Not an error but "not yet": `Err(HandlerError::snooze(Duration::from_secs(30)))`
    // runs the job again then without spending an attempt (at most limits.max_snoozes).
    // Also at hand: ctx.cancel (cancelled within a second of a cancel), ctx.progress(…).
    tracing::debug!(attempt = ctx.attempt, of = ctx.max_attempts, "writing");
    Ok(Sent {
        text: format!("Welcome aboard, {}!", job.name),
        to: job.email,
    })
}

/// Middleware: one log line per attempt, with its type, outcome and time.
pub async fn timed(ctx: JobContext, next: Next) -> HandlerResult {
    let (job_type, attempt, started) = (ctx.job_type.clone(), ctx.attempt, Instant::now());
    let answer = next.run(ctx).await;
    tracing::info!(%job_type, attempt, ok = answer.is_ok(),
        micros = started.elapsed().as_micros() as u64, "attempt ended");
    answer
}

/// Every handler of the service, inside its middleware.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.job_with_output(send_welcome); // or .job(f) for any Serialize result
    registry.around(timed); // middleware, around every handler
    registry
}
