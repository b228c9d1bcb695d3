//! Flotilla from one crate: enqueue jobs and read them back, serve them with plain async
//! fns, operate the queues, and test all of it against a throwaway Redis.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use flotilla::{HandlerError, Job, JobContext, Producer, Registry, Shutdown, Worker, WorkerConfig};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
//!
//! async fn send_email(email: SendEmail, ctx: JobContext) -> Result<String, HandlerError> {
//!     Ok(format!("sent to {} on attempt {}", email.to, ctx.attempt))
//! }
//!
//! // A service enqueues…
//! let producer = Producer::connect("redis://127.0.0.1:6379").await?;
//! let enqueued = producer.enqueue(&SendEmail { to: "a@b.c".into() }).await?;
//!
//! // …a worker (here or in another process) serves…
//! let mut registry = Registry::new();
//! registry.job(send_email);
//! let worker = Worker::connect("redis://127.0.0.1:6379", WorkerConfig::default(), registry).await?;
//! let shutdown = Shutdown::new();
//! tokio::spawn(worker.run(shutdown.clone()));
//!
//! // …and the service reads the result back, woken by the job's completion.
//! let sent: String = producer.wait_result(&enqueued.full_id(), Duration::from_secs(10)).await?;
//! shutdown.trigger();
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `producer` | yes | [`Producer`], [`NewJob`]: enqueue, read back, wait, cancel |
//! | `worker` | yes | [`Worker`], [`Registry`], [`JobContext`], [`Middleware`]: serve jobs |
//! | `exec`, `http` | yes | the worker's built-in `exec` and `http` handlers (any language serves jobs) |
//! | `otel` | no | trace context carried in jobs, and `telemetry::init`: logs, and spans over OTLP |
//! | `admin` | no | `admin`: queue stats, listing, retrying and deleting jobs, pausing queues |
//! | `testing` | no | `testing`: a throwaway `redis-server` and an in-process fleet |
//!
//! A service that only enqueues depends on `flotilla` with `default-features = false,
//! features = ["producer"]` and leaves the worker and its handlers' dependencies out.

#![warn(missing_docs)]

mod client;

pub use client::{Client, ClientError};
// The job model, shared by every side.
pub use flotilla_proto::{
    AttemptError, Backoff, Job, JobOutput, JobPolicy, JobRecord, Keys, ProtoError, RedisTarget,
    SharedConnection, Shutdown, Status, full_id,
};

#[cfg(feature = "producer")]
pub use flotilla_producer::{
    Cancelled, Enqueued, IntoNewJob, NewJob, Outcome, Producer, ProducerError, Replication,
};

#[cfg(feature = "worker")]
pub use flotilla_worker::{
    BoxError, CancellationToken, Handler, HandlerError, HandlerFuture, HandlerResult,
    IntoHandlerError, JobContext, Middleware, Next, NextStep, Payload, QueueWeight, Readiness,
    Registry, ResultExt, Worker, WorkerConfig, WorkerError, WorkerMetrics,
};

/// Operations: what the `flotilla` command and the dashboard do, from code.
#[cfg(feature = "admin")]
pub use flotilla_admin as admin;

#[cfg(feature = "otel")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
