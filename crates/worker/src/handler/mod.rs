//! The handler API: what a job type runs and what it may answer. Handlers are plain async
//! fns of their typed arguments; [`Handler`] is the untyped form the worker calls. Here
//! too: the job's context (`context`), handler errors (`error`), the registry of handlers
//! by type (`registry`) and the middleware around them (`middleware`).

pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod middleware;
pub(crate) mod registry;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::{HandlerError, IntoHandlerError, JobContext};

/// Success with an optional JSON result, or what to do about the failure.
pub type HandlerResult = Result<Option<serde_json::Value>, HandlerError>;

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// Runs one job type, given the whole job. Most handlers are better written as typed
/// fns and registered with [`Registry::job`](crate::Registry::job).
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of the job `ctx` describes.
    fn call(&self, ctx: JobContext) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, ctx: JobContext) -> HandlerFuture {
        Box::pin(self(ctx))
    }
}

/// A typed handler's answer as the worker stores it: the value as JSON, where `()` and
/// `None` store no result, or the error with its next step.
pub(crate) async fn into_handler_result<R, E>(
    answer: impl Future<Output = Result<R, E>>,
) -> HandlerResult
where
    R: Serialize,
    E: IntoHandlerError,
{
    let value = answer.await.map_err(IntoHandlerError::into_handler_error)?;
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(json) => Ok(Some(json)),
        // The same value would fail the same way on every attempt.
        Err(e) => Err(HandlerError::give_up(format!(
            "the result cannot be written as JSON: {e}"
        ))),
    }
}
