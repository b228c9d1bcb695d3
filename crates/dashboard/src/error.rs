//! One error type for the API and the pages: each kind has its HTTP status, and the API
//! answers `{"error": "..."}` with it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flotilla_admin::AdminError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// Redis did not answer.
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let text = e.to_string();
        match e {
            AdminError::Redis(e) => redis_error(&e),
            AdminError::UnknownQueue { .. }
            | AdminError::NoSuchJob(_)
            | AdminError::NoSuch { .. } => ApiError::NotFound(text),
            AdminError::EmptyId
            | AdminError::BadSince
            | AdminError::BadCursor { .. }
            | AdminError::Ambiguous { .. }
            | AdminError::SearchStopped { .. }
            | AdminError::Proto(_)
            | AdminError::Flow(_)
            | AdminError::NotAQueue(_) => ApiError::BadRequest(text),
            AdminError::UnreadableLimit { .. } => ApiError::Internal(text),
            AdminError::InSeveralQueues { .. }
            | AdminError::SeveralQueues { .. }
            | AdminError::Running(_)
            | AdminError::QueueServed { .. }
            | AdminError::QueueNotEmpty(_)
            | AdminError::FewerPartitions { .. } => ApiError::Conflict(text),
            AdminError::Script(e) => match e.redis() {
                Some(e) => redis_error(e),
                None => ApiError::Internal(text),
            },
            AdminError::Schedule(e) => ApiError::from(e),
            AdminError::Producer(e) => ApiError::Internal(e.to_string()),
            AdminError::TooFewWorkers { .. } => ApiError::Unavailable(text),
            AdminError::Describe(e) => match e {
                flotilla_proto::DescribeError::Redis(e) => redis_error(&e),
                flotilla_proto::DescribeError::Proto(e) => ApiError::Internal(e.to_string()),
            },
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        redis_error(&e)
    }
}

impl From<flotilla_admin::SchedulerError> for ApiError {
    fn from(e: flotilla_admin::SchedulerError) -> Self {
        use flotilla_admin::SchedulerError;
        let text = e.to_string();
        match e {
            SchedulerError::Redis(e) => redis_error(&e),
            SchedulerError::NoSuchSchedule(_) => ApiError::NotFound(text),
            SchedulerError::InvalidSchedule { .. } => ApiError::BadRequest(text),
            _ => ApiError::Internal(text),
        }
    }
}

/// A Redis error: unavailable when Redis is away, otherwise a fault of ours.
fn redis_error(e: &redis::RedisError) -> ApiError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        ApiError::Unavailable(e.to_string())
    } else {
        // Redis's own words stay in the log: they may name keys and internals.
        tracing::warn!("redis refused a dashboard request: {e}");
        ApiError::Internal("Redis refused the request; the dashboard's log says why".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(error = %self, "dashboard request failed");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
