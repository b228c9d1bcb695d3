//! What a failed attempt asks the queue to do next, with the error that caused it.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Any error a handler can fail with; `&str` and `String` convert into it too.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What the queue does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Try again after the job's backoff.
    Retry,
    /// Try again after this delay (e.g. an HTTP Retry-After).
    RetryAfter(Duration),
    /// Retrying cannot help: dead-letter the job now.
    GiveUp,
    /// Not a failure: "not yet, run me again after this delay". The attempt is not
    /// counted and no error is recorded; past `limits.max_snoozes` snoozes of one job, a
    /// snooze counts as a failed attempt.
    Snooze(Duration),
}

/// A failed attempt: the error, its causes, and what to do next.
///
/// `?` turns any ordinary error into a retry, keeping it as the source, so a handler
/// written like any other async fn gets Sidekiq's "exceptions retry" behaviour. Say
/// otherwise with [`HandlerError::give_up`] or [`ResultExt::give_up`].
///
/// Like `anyhow::Error`, it does not itself implement `std::error::Error`: that is what
/// lets every error convert into it with `?`.
pub struct HandlerError {
    next: NextStep,
    error: BoxError,
}

impl HandlerError {
    /// Try again after the job's backoff.
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::new(NextStep::Retry, error)
    }

    /// Try again after `delay` instead of the job's backoff.
    pub fn retry_after(error: impl Into<BoxError>, delay: Duration) -> Self {
        Self::new(NextStep::RetryAfter(delay), error)
    }

    /// Dead-letter the job now: the same input will fail the same way.
    pub fn give_up(error: impl Into<BoxError>) -> Self {
        Self::new(NextStep::GiveUp, error)
    }

    /// "Not yet": run the job again after `delay` without spending an attempt (a partner
    /// not ready, a window not open). Not an error: nothing is recorded as one, and the
    /// job's `snoozes` (shown by `flotilla jobs show`, and to the next attempt's handler
    /// as [`crate::JobContext::snoozes`]) grows by one. Past
    /// `limits.max_snoozes` (100) snoozes of one job, a snooze counts as a failed attempt,
    /// so that nothing snoozes forever.
    pub fn snooze(delay: Duration) -> Self {
        Self::new(
            NextStep::Snooze(delay),
            format!("snoozed for {}ms", delay.as_millis()),
        )
    }

    fn new(next: NextStep, error: impl Into<BoxError>) -> Self {
        Self {
            next,
            error: error.into(),
        }
    }

    /// What the queue does after this failure.
    pub fn next_step(&self) -> NextStep {
        self.next
    }

    /// The error the handler failed with; its `source()` chain is intact.
    pub fn error(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.error.as_ref()
    }

    /// The error and its causes, `outer: inner: innermost`: what the job record keeps.
    pub fn message(&self) -> String {
        error_chain(self.error.as_ref())
    }
}

impl<E: Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::retry(error)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("next", &self.next)
            .field("error", &self.message())
            .finish()
    }
}

/// What a typed handler may fail with: a [`HandlerError`], which says what to do next,
/// or anything that converts into a [`BoxError`] (any `std::error::Error`, a `String`, a
/// `&str`, an `anyhow::Error`), which retries after the job's backoff. So a handler may
/// return `anyhow::Result<T>` or `Result<T, String>` as it is.
pub trait IntoHandlerError {
    /// The failure as the worker handles it.
    fn into_handler_error(self) -> HandlerError;
}

impl IntoHandlerError for HandlerError {
    fn into_handler_error(self) -> HandlerError {
        self
    }
}

impl<E: Into<BoxError>> IntoHandlerError for E {
    fn into_handler_error(self) -> HandlerError {
        HandlerError::retry(self)
    }
}

/// Picks the next step for a failing result: `parse(input).give_up()?`.
pub trait ResultExt<T> {
    /// Fails for good on error: retrying cannot help.
    fn give_up(self) -> Result<T, HandlerError>;
    /// Retries after `delay` on error, instead of the job's backoff.
    fn retry_after(self, delay: Duration) -> Result<T, HandlerError>;
}

impl<T, E: Into<BoxError>> ResultExt<T> for Result<T, E> {
    fn give_up(self) -> Result<T, HandlerError> {
        self.map_err(HandlerError::give_up)
    }

    fn retry_after(self, delay: Duration) -> Result<T, HandlerError> {
        self.map_err(|e| HandlerError::retry_after(e, delay))
    }
}

/// An error and its causes, `outer: inner: innermost`, so "connection refused" and a DNS
/// failure do not read the same.
pub(crate) fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot charge the card")]
    struct Charge(#[source] std::io::Error);

    fn charge() -> Result<(), Charge> {
        Err(Charge(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )))
    }

    fn handler() -> Result<(), HandlerError> {
        charge()?;
        Ok(())
    }

    #[test]
    fn question_mark_retries_and_keeps_the_cause() {
        let error = handler().expect_err("fails");
        assert_eq!(error.next_step(), NextStep::Retry);
        assert_eq!(
            error.message(),
            "cannot charge the card: connection refused"
        );
        assert!(error.error().source().is_some());
    }

    #[test]
    fn give_up_and_retry_after_pick_the_next_step() {
        let parsed: Result<u32, _> = "x".parse::<u32>();
        let error = parsed.give_up().expect_err("not a number");
        assert_eq!(error.next_step(), NextStep::GiveUp);
        let later = charge()
            .retry_after(Duration::from_secs(3))
            .expect_err("fails");
        assert_eq!(
            later.next_step(),
            NextStep::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            HandlerError::give_up("bad address").message(),
            "bad address"
        );
    }
}
