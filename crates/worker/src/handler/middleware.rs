//! Middleware: code that runs around every handler of a registry (metrics, tracing, a
//! per-job context such as a tenant's database connection), written once rather than
//! in each handler.

use std::future::Future;
use std::sync::Arc;

use crate::{Handler, HandlerFuture, HandlerResult, JobContext};

/// Runs around a handler: it sees the job before the handler does and its answer after,
/// and may change either, or answer without calling the handler at all.
///
/// Any `async fn(JobContext, Next) -> HandlerResult` is a middleware; register it with
/// [`Registry::around`](crate::Registry::around):
///
/// ```
/// use std::time::Instant;
/// use flotilla_worker::{HandlerResult, JobContext, Next, Registry};
///
/// async fn timed(ctx: JobContext, next: Next) -> HandlerResult {
///     let (job_type, started) = (ctx.job_type.clone(), Instant::now());
///     let answer = next.run(ctx).await;
///     tracing::info!(%job_type, ms = started.elapsed().as_millis() as u64, ok = answer.is_ok(), "job ran");
///     answer
/// }
///
/// let mut registry = Registry::with_builtins();
/// registry.around(timed);
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Handles one attempt of the job `ctx` describes; `next` runs the rest of the chain
    /// (the middleware registered after this one, then the handler).
    fn call(&self, ctx: JobContext, next: Next) -> HandlerFuture;
}

impl<F, Fut> Middleware for F
where
    F: Fn(JobContext, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, ctx: JobContext, next: Next) -> HandlerFuture {
        Box::pin(self(ctx, next))
    }
}

/// The rest of a middleware chain: the middleware after the current one, then the job's
/// handler.
#[derive(Clone)]
pub struct Next {
    chain: Arc<[Arc<dyn Middleware>]>,
    /// The position in `chain` that runs next; past its end, the handler runs.
    at: usize,
    handler: Arc<dyn Handler>,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("middleware_left", &(self.chain.len() - self.at))
            .finish_non_exhaustive()
    }
}

impl Next {
    /// Runs the rest of the chain on `ctx` and answers what it answers.
    pub fn run(self, ctx: JobContext) -> HandlerFuture {
        match self.chain.get(self.at) {
            Some(middleware) => {
                let middleware = Arc::clone(middleware);
                middleware.call(
                    ctx,
                    Next {
                        at: self.at + 1,
                        ..self
                    },
                )
            }
            None => self.handler.call(ctx),
        }
    }
}

/// A handler with a middleware chain around it, as the registry hands it to the worker.
pub(crate) struct Layered {
    pub(crate) chain: Arc<[Arc<dyn Middleware>]>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Handler for Layered {
    fn call(&self, ctx: JobContext) -> HandlerFuture {
        Next {
            chain: Arc::clone(&self.chain),
            at: 0,
            handler: Arc::clone(&self.handler),
        }
        .run(ctx)
    }
}
