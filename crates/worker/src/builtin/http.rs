//! The `http` handler: POSTs the payload as JSON. 2xx succeeds (the body is the result),
//! 4xx gives up (except 408 and 429), 5xx and timeouts retry, and Retry-After is honoured.
//! 425 Too Early snoozes the job ("not yet", the attempt not counted) for its Retry-After
//! seconds (60 without one).
//! A request that can never be sent (bad URL or header) gives up at once, and every
//! error keeps its cause (connection refused, DNS failure, TLS …). Wherever the URL is
//! shown (errors, logs, the dead-letter queue) its userinfo and query values are hidden,
//! since they often carry credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::handler::HandlerFuture;
use crate::handler::error::error_chain;
use crate::{Handler, HandlerError, JobContext};

/// The status that snoozes a job rather than failing it: 425 Too Early, "not yet".
pub const SNOOZE_STATUS: u16 = 425;

/// Where to send a job type's payloads. Build with [`HttpHandler::new`], which checks the
/// URL and headers, so a bad one is a settings error rather than a failing job.
#[derive(Clone)]
pub struct HttpHandler {
    url: reqwest::Url,
    /// The URL as errors and logs show it: without userinfo or query values.
    shown_url: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpHandler {
    /// Header values (an Authorization header, say) and the URL's secrets stay hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("url", &self.shown_url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A handler setting that can never work.
#[derive(Debug, thiserror::Error)]
pub enum InvalidHttpHandler {
    /// The URL is not an http:// or https:// URL.
    #[error("url {url:?}: expected an http:// or https:// URL ({reason})")]
    Url {
        /// The URL as shown (without credentials or query values).
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A header's name or value cannot be sent.
    #[error("header {name:?}: {reason}")]
    Header {
        /// The header's name.
        name: String,
        /// Why it cannot be sent.
        reason: String,
    },
}

/// Response body kept in an error message, in characters.
const BODY_TAIL: usize = 500;

impl HttpHandler {
    /// POSTs to `url` with these extra headers (e.g. an Authorization header).
    pub fn new(url: &str, headers: &BTreeMap<String, String>) -> Result<Self, InvalidHttpHandler> {
        let bad_url = |reason: String| InvalidHttpHandler::Url {
            url: redact_http_url(url),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(bad_url("no http(s) scheme or host".to_owned()));
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let bad = |reason: String| InvalidHttpHandler::Header {
                name: name.clone(),
                reason,
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| bad("value must be visible ASCII, without CR or LF".to_owned()))?;
            map.insert(header, value);
        }
        Ok(Self {
            shown_url: redact_http_url(parsed.as_str()),
            url: parsed,
            headers: map,
            client: reqwest::Client::new(),
        })
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
        let request = self
            .client
            .post(self.url.clone())
            .timeout(ctx.timeout)
            .headers(self.headers.clone())
            .header("content-type", "application/json")
            .header("x-flotilla-job-id", &ctx.id)
            .header("x-flotilla-job-full-id", ctx.full_id())
            .header("x-flotilla-job-type", &ctx.job_type)
            .header("x-flotilla-attempt", ctx.attempt.to_string())
            .body(body.to_string());
        let url = &self.shown_url;
        let response = tokio::select! {
            r = request.send() => r.map_err(|e| {
                // reqwest puts the whole URL in its message; the shown one stands instead.
                let e = e.without_url();
                let message = format!("POST {url}: {}", error_chain(&e));
                // A request that cannot even be built fails the same way every time.
                if e.is_builder() { HandlerError::give_up(message) } else { HandlerError::retry(message) }
            })?,
            _ = ctx.cancel.cancelled() => return Err(HandlerError::retry("cancelled")),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let limit = ctx.max_result_bytes;
        let bytes = match read_body(response, limit).await {
            Ok(bytes) => bytes,
            Err(BodyError::OverLimit) if status.is_success() => {
                return Err(HandlerError::give_up(format!(
                    "POST {url} answered {status} with a body over the result limit of \
                     {limit} bytes (limits.max_result_bytes)"
                )));
            }
            Err(BodyError::OverLimit) => Vec::new(),
            Err(BodyError::Http(e)) => {
                return Err(HandlerError::retry(format!(
                    "POST {url} answered {status}, then reading its body failed: {}",
                    error_chain(&e.without_url())
                )));
            }
        };
        if status.is_success() {
            return Ok(super::output_to_result(&bytes));
        }
        if status.as_u16() == SNOOZE_STATUS {
            return Err(HandlerError::snooze(
                retry_after.unwrap_or(super::DEFAULT_SNOOZE),
            ));
        }
        let message = format!(
            "POST {url} answered {status}: {}",
            super::tail(&String::from_utf8_lossy(&bytes), BODY_TAIL)
        );
        let retryable =
            status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        match (retryable, retry_after) {
            (true, Some(delay)) => Err(HandlerError::retry_after(message, delay)),
            (true, None) => Err(HandlerError::retry(message)),
            (false, _) => Err(HandlerError::give_up(message)),
        }
    }
}

/// `url` as it may be shown: any userinfo becomes `***`, each query value `***`, and the
/// fragment is left out. Text without `://` is not a URL: it is cut at its first `?` and
/// everything before its last `@` is hidden, so it is never echoed whole.
fn redact_http_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        let text = url.split(['?', '#']).next().unwrap_or_default();
        return match text.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => text.to_owned(),
        };
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let mut shown = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None if param.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

/// Why a response body was not read.
#[derive(Debug)]
enum BodyError {
    Http(reqwest::Error),
    OverLimit,
}

/// Reads the body chunk by chunk, stopping at the first byte over `limit`.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::OverLimit);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::redact_http_url;

    #[test]
    fn userinfo_and_query_values_are_hidden() {
        assert_eq!(
            redact_http_url("http://user:pw@host:8080/hook?api_key=k3y&x=1#frag"),
            "http://***@host:8080/hook?api_key=***&x=***"
        );
        assert_eq!(
            redact_http_url("https://host/a/b"),
            "https://host/a/b",
            "nothing secret, nothing changed"
        );
        for url in [
            "http://s3cret@host/",
            "http://u:s3cret@host/p?q=s3cret",
            "http//u:s3cret@host",
            "https://host/?s3cret",
            "https://host/p?token=s3cret#s3cret",
        ] {
            let shown = redact_http_url(url);
            assert!(!shown.contains("s3cret"), "{url} shown as {shown}");
        }
    }
}
