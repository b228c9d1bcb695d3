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
    const TYPE: &'static str = "send_welcome";
    const QUEUE: &'static str = "mail";
    const MAX_ATTEMPTS: Option<u32> = Some(5);
}

impl JobOutput for SendWelcome {
    type Output = Sent;
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
pub async fn send_welcome(job: SendWelcome, _ctx: JobContext) -> Result<Sent, HandlerError> {
    if !job.email.contains('@') {
        return Err(BadAddress(job.email)).give_up();
    }
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
    registry.job_with_output(send_welcome).around(timed);
    registry
}
