//! The `http` handler: POSTs the payload as JSON. 2xx succeeds (the body is the result),
//! 4xx gives up (except 408 and 429), 5xx and timeouts retry, and Retry-After is honoured.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::handler::HandlerFuture;
use crate::{Handler, HandlerError, JobContext};

/// Where to send a job type's payloads.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpHandler {
    pub url: String,
    /// Extra request headers, e.g. an Authorization header.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(skip, default = "reqwest::Client::new")]
    client: reqwest::Client,
}

/// Response body kept in an error message.
const BODY_TAIL: usize = 500;

impl HttpHandler {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            headers: BTreeMap::new(),
            client: reqwest::Client::new(),
        }
    }
}

impl Handler for HttpHandler {
    fn call(&self, ctx: JobContext) -> HandlerFuture {
        let this = self.clone();
        Box::pin(async move { this.post(ctx).await })
    }
}

impl HttpHandler {
    async fn post(&self, ctx: JobContext) -> crate::HandlerResult {
        let body = ctx
            .payload
            .to_json()
            .map_err(|e| HandlerError::give_up(format!("payload cannot be read: {e}")))?;
        let mut request = self
            .client
            .post(&self.url)
            .timeout(ctx.timeout)
            .header("content-type", "application/json")
            .header("x-flotilla-job-id", &ctx.id)
            .header("x-flotilla-job-type", &ctx.job_type)
            .header("x-flotilla-attempt", ctx.attempt.to_string())
            .body(body.to_string());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = tokio::select! {
            r = request.send() => r.map_err(|e| HandlerError::retry(format!("POST {}: {e}", self.url)))?,
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retry("cancelled")),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Ok(super::output_to_result(&bytes));
        }
        let message = format!(
            "POST {} answered {status}: {}",
            self.url,
            super::tail(&String::from_utf8_lossy(&bytes), BODY_TAIL)
        );
        let retryable =
            status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        match (retryable, retry_after) {
            (true, Some(delay)) => Err(HandlerError::RetryAfter(message, delay)),
            (true, None) => Err(HandlerError::Retry(message)),
            (false, _) => Err(HandlerError::GiveUp(message)),
        }
    }
}
