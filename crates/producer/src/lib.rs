//! The Flotilla producer: enqueue jobs now, at a time or after a delay, in bulk, as
//! unique jobs, or from typed values.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla_producer::ProducerError> {
//! use flotilla_producer::{Job, Producer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
//!
//! let producer = Producer::connect("redis://127.0.0.1:6379").await?;
//! let job = producer.typed(&SendEmail { to: "a@b.c".into() })?;
//! let enqueued = producer.enqueue(job.delay(std::time::Duration::from_secs(30))).await?;
//! println!("enqueued {}", enqueued.id);
//! # Ok(()) }
//! ```

mod error;
mod job;
mod producer;

pub use error::ProducerError;
pub use job::{Job, NewJob};
pub use producer::{Cancelled, Enqueued, Outcome, Producer};
