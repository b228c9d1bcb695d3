//! The Flotilla worker runtime: reads jobs from Redis Streams through a consumer group,
//! runs them with bounded concurrency, retries failures with backoff, dead-letters what
//! cannot succeed, keeps leases alive, reclaims the jobs of crashed peers and shuts down
//! gracefully.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla_worker::WorkerError> {
//! use flotilla_worker::{HandlerError, Job, JobContext, Registry, ResultExt, Worker, WorkerConfig};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { url: String, width: u32 }
//! impl Job for Resize { const TYPE: &'static str = "resize"; }
//!
//! #[derive(Serialize)]
//! struct Resized { bytes: usize }
//!
//! async fn resize(job: Resize, ctx: JobContext) -> Result<Resized, HandlerError> {
//!     // A bad URL will stay bad: give up. A failed download retries with backoff.
//!     let url: std::net::SocketAddr = job.url.parse().give_up()?;
//!     let image = std::fs::read(format!("/tmp/{url}-{}", ctx.attempt))?;
//!     Ok(Resized { bytes: image.len() / job.width as usize })
//! }
//!
//! let mut registry = Registry::with_builtins();
//! registry.job(resize);
//! let worker = Worker::connect("redis://127.0.0.1:6379", WorkerConfig::default(), registry).await?;
//! worker.run(flotilla_worker::Shutdown::on_signals()).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod builtin;
mod config;
mod error;
mod fetch;
mod flow;
mod handler;
mod metrics;
mod promoter;
mod run;
mod shared;
mod tallies;
mod worker;

pub use config::{DEFAULT_PREFETCH, MAX_PREFETCH, QueueWeight, WorkerConfig};
pub use error::WorkerError;
pub use handler::context::JobContext;
// What a worker's API takes and answers, so a user needs no other crate for it.
pub use flotilla_proto::{
    Backoff, Job, JobOutput, JobPolicy, JobRecord, Keys, Payload, ProtoError, RedisTarget,
    SharedConnection, Shutdown, Status,
};
pub use handler::error::{BoxError, HandlerError, IntoHandlerError, NextStep, ResultExt};
pub use handler::middleware::{Middleware, Next};
pub use handler::registry::Registry;
pub use handler::{Handler, HandlerFuture, HandlerResult};
pub use metrics::WorkerMetrics;
/// The token [`JobContext::cancel`] is, and [`Shutdown::from_token`] takes.
pub use tokio_util::sync::CancellationToken;
pub use worker::{Readiness, Worker};
