//! The handler API: what a job type runs, what it may answer, and the registry that maps
//! type names to handlers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::JobContext;

/// A handler's answer to a failed attempt: what the queue should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Try again after the job's backoff.
    #[error("{0}")]
    Retry(String),
    /// Try again after this delay (e.g. an HTTP Retry-After).
    #[error("{0} (retry after {1:?})")]
    RetryAfter(String, Duration),
    /// Retrying cannot help: dead-letter the job now.
    #[error("{0}")]
    GiveUp(String),
}

impl HandlerError {
    pub fn retry(err: impl std::fmt::Display) -> Self {
        HandlerError::Retry(err.to_string())
    }

    pub fn give_up(err: impl std::fmt::Display) -> Self {
        HandlerError::GiveUp(err.to_string())
    }
}

/// Success with an optional JSON result, or what to do about the failure.
pub type HandlerResult = Result<Option<serde_json::Value>, HandlerError>;

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// Runs one job type.
pub trait Handler: Send + Sync + 'static {
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

/// Job type name → handler.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<&String> = self.handlers.keys().collect();
        types.sort();
        f.debug_struct("Registry").field("types", &types).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in test handlers `noop`, `sleep` and `fail`.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        crate::builtin::register_test_handlers(&mut registry);
        registry
    }

    /// Registers a handler for `job_type`, replacing any earlier one.
    pub fn register(&mut self, job_type: &str, handler: impl Handler) -> &mut Self {
        self.handlers.insert(job_type.to_owned(), Arc::new(handler));
        self
    }

    /// Registers an async fn of typed arguments. A payload that does not decode into
    /// `Args` dead-letters the job: retrying cannot make it decode.
    pub fn register_fn<Args, F, Fut>(&mut self, job_type: &str, f: F) -> &mut Self
    where
        Args: DeserializeOwned + Send + 'static,
        F: Fn(Args, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let f = Arc::new(f);
        self.register(job_type, move |ctx: JobContext| {
            let f = Arc::clone(&f);
            async move {
                let args: Args = ctx.args().map_err(|e| {
                    HandlerError::GiveUp(format!("payload does not fit {}: {e}", ctx.job_type))
                })?;
                f(args, ctx).await
            }
        })
    }

    pub fn get(&self, job_type: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(job_type).cloned()
    }

    pub fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.handlers.keys().cloned().collect();
        types.sort();
        types
    }
}
