//! Testing jobs end to end: a throwaway `redis-server` and an in-process fleet in a
//! namespace of its own, with helpers to run a job, drain the queues and assert.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla::testing::TestError> {
//! use flotilla::testing::TestFleet;
//! use flotilla::{HandlerError, Job, JobContext, Registry, Status};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add { a: i64, b: i64 }
//! impl Job for Add { const TYPE: &'static str = "add"; }
//!
//! async fn add(job: Add, _ctx: JobContext) -> Result<i64, HandlerError> {
//!     Ok(job.a + job.b)
//! }
//!
//! let mut registry = Registry::new();
//! registry.job(add);
//! let fleet = TestFleet::start(registry).await?;
//! let record = fleet.run(&Add { a: 2, b: 40 }).await?;
//! assert_eq!(record.status, Some(Status::Completed));
//! assert_eq!(record.result, Some(serde_json::json!(42)));
//! fleet.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Each [`TestFleet`] starts its own `redis-server` (it must be on the `PATH`), listening
//! on a unix socket in a temporary directory only, with nothing saved to disk; set
//! `FLOTILLA_TEST_REDIS_URL` to use a Redis of your own instead. Either way each fleet
//! works in a namespace of its own, so tests in one binary run in parallel without
//! taking each other's jobs.

mod error;
mod fleet;
mod redis_server;

pub use error::TestError;
pub use fleet::{DEFAULT_WAIT, TestFleet, fast_config, fast_policy};
pub use redis_server::TestRedis;
