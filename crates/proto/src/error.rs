//! Errors of the wire contract: what cannot be decoded, and why.

/// A value read from Redis or given by a caller that does not fit the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// A `status` that names none of the job states.
    #[error("unknown job status {0:?}")]
    UnknownStatus(String),
    /// A `content_type` that is neither JSON nor msgpack.
    #[error("unknown content type {0:?}: expected \"json\" or \"msgpack\"")]
    UnknownContentType(String),
    /// A field whose value the protocol refuses.
    #[error("field {field:?} is {value:?}: expected {expected}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// The value as given (shown escaped in the message).
        value: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// An entry that carries neither a job id nor a job type.
    #[error("entry has neither an `id` of a known job nor a `type`")]
    NoType,
    /// A payload over the size limit.
    #[error("payload is {size} bytes, over the {limit}-byte limit")]
    PayloadTooLarge {
        /// The payload's size, in bytes.
        size: usize,
        /// The most a payload may hold, in bytes.
        limit: usize,
    },
    /// A payload that cannot be encoded, or decoded in its content type.
    #[error("payload is not valid {content_type}: {reason}")]
    BadPayload {
        /// The encoding tried: `json` or `msgpack`.
        content_type: &'static str,
        /// What the encoder or decoder said.
        reason: String,
    },
    /// A backoff whose wire form cannot be read, or with a delay over ten years.
    #[error(
        "backoff {0:?} is not one of fixed:MS, exponential:BASE_MS:CAP_MS, list:MS,MS,… \
         (whole milliseconds, each at most 315360000000: ten years)"
    )]
    BadBackoff(String),
}
