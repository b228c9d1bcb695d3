//! The trait that makes a Rust type a job's arguments, shared by producers and workers so
//! a job type's name is written once, on the type.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Rust type that is a job's arguments. Producers enqueue it and workers register a
/// handler for it by type; [`Job::TYPE`] is the name other languages use.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl flotilla_proto::Job for SendEmail {
///     const TYPE: &'static str = "send_email";
///     const QUEUE: &'static str = "critical";
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The job type, e.g. `"send_email"`.
    const TYPE: &'static str;
    /// The queue it goes to unless the caller picks another.
    const QUEUE: &'static str = "default";
}
