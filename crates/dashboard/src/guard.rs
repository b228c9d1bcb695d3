//! What every request passes before its handler: the Host it names must be one this
//! dashboard answers to, reads may need the token, the request has a deadline, every
//! response carries the headers that keep a browser from framing, sniffing, caching or
//! leaking it, and a change that is refused is written to the audit log.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HOST, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::audit_refusal;

/// No script, no resource from elsewhere, no framing; the pages' one stylesheet is inline.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                      form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Paths anyone may read, even when reads need the token: the health check, and signing
/// in and out.
const OPEN_PATHS: [&str; 3] = ["/healthz", "/login", "/logout"];

/// The middleware: see the module's description.
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = checked(&state, addr, request, next).await;
    secure(response.headers_mut());
    response
}

async fn checked(state: &AppState, addr: SocketAddr, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok())
        && !host_allowed(host, &state.allowed_hosts)
    {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this dashboard does not answer to the host {host:?}: start it with \
                 --allowed-host NAME for each name it is reached by"
            ),
        )
            .into_response();
    }
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if !OPEN_PATHS.contains(&path.as_str()) && !state.auth.may_read(headers, addr) {
        return refused_read(&path, &method);
    }
    let is_change = !matches!(method, Method::GET | Method::HEAD);
    let response = match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await
    {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {}s",
                state.limits.request_timeout.as_secs()
            ),
        )
            .into_response(),
    };
    let status = response.status();
    if is_change
        && matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        )
    {
        audit_refusal(addr, method.as_str(), &path, status.as_u16());
    }
    response
}

/// A read without the token where reads need it: the API says so in JSON, a page sends
/// the browser to sign in.
fn refused_read(path: &str, method: &Method) -> Response {
    if path.starts_with("/api/") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "this dashboard's reads need the token: `Authorization: Bearer <token>`"
            })),
        )
            .into_response();
    }
    if *method == Method::GET {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
    }
    (StatusCode::UNAUTHORIZED, "sign in first").into_response()
}

/// Headers every response carries.
fn secure(headers: &mut HeaderMap) {
    let set = [
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "same-origin"),
        // Pages and answers hold payloads and results: no cache keeps them.
        (CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Whether `host` (a Host header: a name or address, with or without a port) is one this
/// dashboard answers to: an IP address or `localhost`, which no page elsewhere can
/// rebind, or a name the operator allowed.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// A Host header without its port: `[::1]:80` → `::1`, `example.com:80` → `example.com`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_addresses_localhost_and_allowed_names_are_answered() {
        let allowed = ["jobs.example.com".to_owned()];
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "10.1.2.3",
            "jobs.example.com",
            "Jobs.Example.com:443",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }
}
