//! The registry: job type name → handler, filled with typed fns or raw handlers.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use flotilla_proto::{Job, JobOutput};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::handler::into_handler_result;
use crate::handler::middleware::Layered;
use crate::{Handler, HandlerError, IntoHandlerError, JobContext, Middleware};

/// Job type name → handler, and the middleware that runs around every handler.
#[derive(Clone)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
    /// Outermost first. Rebuilt on each [`Registry::around`] (rare), so that handing out a
    /// handler shares it rather than copying it.
    middleware: Arc<[Arc<dyn Middleware>]>,
    /// The queues the [`Job`] types registered with [`Registry::job`] name.
    job_queues: BTreeSet<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            handlers: HashMap::new(),
            middleware: Arc::new([]),
            job_queues: BTreeSet::new(),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.types())
            .field("middleware", &self.middleware.len())
            .finish()
    }
}

impl Registry {
    /// A registry with no handlers ([`Registry::with_builtins`] has `noop`, `sleep` and
    /// `fail`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in test handlers `noop`, `sleep` and `fail`.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        crate::builtin::register_test_handlers(&mut registry);
        registry
    }

    /// Registers the handler for a [`Job`] type, under [`Job::TYPE`]; the type comes from
    /// the handler's first argument:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct SendEmail { to: String }
    /// # impl flotilla_worker::Job for SendEmail { const TYPE: &'static str = "send_email"; }
    /// # #[derive(Debug, thiserror::Error)] #[error("mail server down")] struct MailError;
    /// use flotilla_worker::{JobContext, Registry};
    ///
    /// async fn send_email(email: SendEmail, ctx: JobContext) -> Result<String, MailError> {
    ///     Ok(format!("sent to {} on attempt {}", email.to, ctx.attempt))
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry.job(send_email);
    /// ```
    ///
    /// The handler returns anything that serializes to JSON (`()` stores no result) or an
    /// error: any error retries with the job's backoff, a [`HandlerError`] says otherwise.
    /// A payload that does not decode into the type dead-letters the job at once:
    /// retrying cannot make it decode.
    pub fn job<J, F, Fut, R, E>(&mut self, handler: F) -> &mut Self
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: IntoHandlerError,
    {
        self.job_queues.insert(J::QUEUE.to_owned());
        self.register_fn(J::TYPE, handler)
    }

    /// Like [`Registry::job`], for a [`JobOutput`] type: the handler must return the
    /// type's declared output, which producers read back with `Producer::wait_output`.
    pub fn job_with_output<J, F, Fut, E>(&mut self, handler: F) -> &mut Self
    where
        J: JobOutput,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
        E: IntoHandlerError,
    {
        self.job(handler)
    }

    /// Like [`Registry::job`], for a type name not tied to a [`Job`] type (e.g. one
    /// enqueued from another language with plain JSON arguments).
    pub fn register_fn<Args, F, Fut, R, E>(&mut self, job_type: &str, handler: F) -> &mut Self
    where
        Args: DeserializeOwned + Send + 'static,
        F: Fn(Args, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: IntoHandlerError,
    {
        let handler = Arc::new(handler);
        self.register(job_type, move |ctx: JobContext| {
            let handler = Arc::clone(&handler);
            async move {
                let args: Args = ctx.args().map_err(|e| {
                    HandlerError::give_up(format!("payload does not fit {}: {e}", ctx.job_type))
                })?;
                into_handler_result(handler(args, ctx)).await
            }
        })
    }

    /// Registers an untyped handler for `job_type`, replacing any earlier one.
    pub fn register(&mut self, job_type: &str, handler: impl Handler) -> &mut Self {
        self.handlers.insert(job_type.to_owned(), Arc::new(handler));
        self
    }

    /// Runs `middleware` around every handler of this registry, those registered before
    /// and after alike. The first added runs outermost: it sees a job first and its answer
    /// last. See [`Middleware`] for an example.
    pub fn around(&mut self, middleware: impl Middleware) -> &mut Self {
        let mut chain: Vec<Arc<dyn Middleware>> = self.middleware.iter().cloned().collect();
        chain.push(Arc::new(middleware));
        self.middleware = chain.into();
        self
    }

    /// The handler of `job_type`, if one is registered, inside the registry's middleware.
    pub fn get(&self, job_type: &str) -> Option<Arc<dyn Handler>> {
        let handler = self.handlers.get(job_type)?;
        if self.middleware.is_empty() {
            return Some(Arc::clone(handler));
        }
        Some(Arc::new(Layered {
            chain: Arc::clone(&self.middleware),
            handler: Arc::clone(handler),
        }))
    }

    /// The queues named by the [`Job`] types registered with [`Registry::job`], sorted: a
    /// worker serving this registry should serve at least these.
    pub fn job_queues(&self) -> Vec<String> {
        self.job_queues.iter().cloned().collect()
    }

    /// Whether `job_type` has a handler here.
    pub fn handles(&self, job_type: &str) -> bool {
        self.handlers.contains_key(job_type)
    }

    /// The job types with a handler, sorted.
    pub fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.handlers.keys().cloned().collect();
        types.sort();
        types
    }
}
