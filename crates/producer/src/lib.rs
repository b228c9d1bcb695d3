//! The Flotilla producer: enqueue jobs now, at a time or after a delay, in bulk, as
//! unique jobs, or from typed values; read them back and wait for them to end.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla_producer::ProducerError> {
//! use std::time::Duration;
//! use flotilla_producer::{Job, NewJob, Producer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
//!
//! let producer = Producer::connect("redis://127.0.0.1:6379").await?;
//! // As it is, on the type's queue:
//! producer.enqueue(&SendEmail { to: "a@b.c".into() }).await?;
//! // With options:
//! let later = NewJob::typed(&SendEmail { to: "d@e.f".into() })?.delay(Duration::from_secs(30));
//! let enqueued = producer.enqueue(later).await?;
//! println!("enqueued {}", enqueued.full_id());
//! // Read it back now, or wait for it to end (woken by its completion, not by polling):
//! let now = producer.status(&enqueued.full_id()).await?;
//! let record = producer.wait(&enqueued.full_id(), Duration::from_secs(60)).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod batches;
mod bulk;
mod enqueued;
mod error;
mod fast;
mod flows;
mod job;
mod placement;
mod producer;
mod read_back;

pub use error::ProducerError;
pub use flotilla_proto::connect::Replication;
// What a producer's API takes and answers, so a user needs no other crate for it.
pub use batches::{BATCH_CALL_JOBS, Batch};
pub use enqueued::{Enqueued, Outcome};
pub use flotilla_proto::dependencies::{BatchCallback, BatchState, Dependencies, ParentState};
pub use flotilla_proto::scripts::{BatchCounts, CallbackKind};
pub use flotilla_proto::{
    AttemptError, Backoff, Job, JobOutput, JobPolicy, JobRecord, Keys, ProtoError, RedisTarget,
    SharedConnection, Status, full_id,
};
pub use flows::{Flow, OnParentEnd, Parent};
pub use job::{IntoNewJob, NewJob};
pub use producer::{Cancelled, Producer};
