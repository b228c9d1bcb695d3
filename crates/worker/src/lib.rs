//! The Flotilla worker runtime: reads jobs from Redis Streams through a consumer group,
//! runs them with bounded concurrency, retries failures with backoff, dead-letters what
//! cannot succeed, keeps leases alive, reclaims the jobs of crashed peers and shuts down
//! gracefully.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla_worker::WorkerError> {
//! use flotilla_worker::{HandlerError, JobContext, Registry, Worker, WorkerConfig};
//!
//! let mut registry = Registry::with_builtins();
//! registry.register_fn("greet", |name: String, _ctx: JobContext| async move {
//!     Ok::<_, HandlerError>(Some(serde_json::json!({ "greeting": format!("hello {name}") })))
//! });
//! let worker = Worker::connect("redis://127.0.0.1:6379", WorkerConfig::default(), registry).await?;
//! worker.run(flotilla_worker::Shutdown::on_signals()).await
//! # }
//! ```

pub mod builtin;
mod completer;
mod config;
mod connections;
mod context;
mod error;
mod fetch;
mod handler;
mod heartbeat;
mod inflight;
mod lottery;
mod runner;
mod shutdown;
mod worker;

pub use config::{QueueWeight, WorkerConfig};
pub use context::JobContext;
pub use error::WorkerError;
pub use handler::{Handler, HandlerError, HandlerResult, Registry};
pub use shutdown::Shutdown;
pub use worker::Worker;
