//! The trait that makes a Rust type a job's arguments, shared by producers and workers so
//! a job type's name is written once, on the type.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Backoff;

/// A Rust type that is a job's arguments. Producers enqueue it and workers register a
/// handler for it by type; [`Job::TYPE`] is the name other languages use. The type may
/// also say how its jobs run unless an enqueue says otherwise: attempts, timeout and
/// backoff (else the fleet's `[defaults]` apply).
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl flotilla_proto::Job for SendEmail {
///     const TYPE: &'static str = "send_email";
///     const QUEUE: &'static str = "critical";
///     const MAX_ATTEMPTS: Option<u32> = Some(5);
///     const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The job type, e.g. `"send_email"`.
    const TYPE: &'static str;
    /// The queue it goes to unless the caller picks another.
    const QUEUE: &'static str = "default";
    /// Attempts its jobs get unless an enqueue says otherwise; `None`: the fleet's default.
    const MAX_ATTEMPTS: Option<u32> = None;
    /// How long each attempt may run unless an enqueue says otherwise; `None`: the
    /// fleet's default.
    const TIMEOUT: Option<Duration> = None;

    /// The backoff between its attempts unless an enqueue says otherwise; `None`: the
    /// fleet's default.
    fn backoff() -> Option<Backoff> {
        None
    }
}

/// A [`Job`] whose handler's result has a Rust type, declared once on the job type: a
/// worker registers a handler that must return it (`Registry::job_with_output`) and a
/// producer reads it back decoded (`Producer::wait_output`).
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Resize { url: String, width: u32 }
/// # impl flotilla_proto::Job for Resize { const TYPE: &'static str = "resize"; }
/// #[derive(Serialize, Deserialize)]
/// struct Resized { bytes: usize }
///
/// impl flotilla_proto::JobOutput for Resize {
///     type Output = Resized;
/// }
/// ```
pub trait JobOutput: Job {
    /// What a completed job's result decodes into.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}
