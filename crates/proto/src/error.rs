//! Errors of the wire contract: what cannot be decoded, and why.

/// A value read from Redis or given by a caller that does not fit the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("unknown job status {0:?}")]
    UnknownStatus(String),
    #[error("unknown content type {0:?}: expected \"json\" or \"msgpack\"")]
    UnknownContentType(String),
    #[error("field {field:?} is {value:?}: expected {expected}")]
    BadField {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("entry has neither an `id` of a known job nor a `type`")]
    NoType,
    #[error("payload is {size} bytes, over the {limit}-byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("payload is not valid {content_type}: {reason}")]
    BadPayload {
        content_type: &'static str,
        reason: String,
    },
    #[error(
        "backoff {0:?} is not one of fixed:MS, exponential:BASE_MS:CAP_MS, list:MS,MS,… \
         (whole milliseconds, each at most 315360000000: ten years)"
    )]
    BadBackoff(String),
}
