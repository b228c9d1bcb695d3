//! Who may read and who may change things. Without a token the dashboard is read-only.
//! With one, the API takes it as `Authorization: Bearer <token>`, and a browser signs in
//! once with it and a name, getting a session cookie (HttpOnly, SameSite=Strict) and a
//! CSRF token that every form carries. Reads are open, or need the token too
//! ([`Reads::NeedToken`]). Every change is logged with who made it and from where; an
//! address that keeps giving a wrong token is refused for a while.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};

use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "flotilla_session";
/// How long a browser session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The header an API client may name itself with, for the audit log.
const ACTOR_HEADER: &str = "x-flotilla-actor";
/// Names are cut to this length in the log.
const MAX_ACTOR_LEN: usize = 64;
/// Wrong tokens one address may give within [`FAILURE_WINDOW`] before it is refused
/// until the window ends.
pub const MAX_FAILURES: u32 = 10;
/// The window in which wrong tokens are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose wrong tokens are remembered at once, at most: a flood from many
/// addresses cannot grow the table without bound.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Who may read the pages and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Anyone who reaches the dashboard: for one that listens on loopback only.
    Open,
    /// Only a signed-in browser or an API client with the bearer token.
    NeedToken,
}

/// The token, who may read, the signed-in browser sessions, and recent wrong tokens.
#[derive(Debug)]
pub struct Auth {
    token: Option<String>,
    reads: Reads,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

/// Wrong tokens from one address in the current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

#[derive(Debug, Clone)]
struct Session {
    actor: String,
    csrf: String,
    expires: Instant,
}

/// A signed-in browser, as a page sees it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub actor: String,
    pub csrf: String,
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    /// `token` (the API) or `session` (a signed-in browser).
    pub via: &'static str,
    pub addr: SocketAddr,
}

impl Auth {
    /// `reads` other than [`Reads::Open`] needs a token: the caller checks that.
    pub fn new(token: Option<String>, reads: Reads) -> Self {
        Self {
            token: token.filter(|t| !t.trim().is_empty()),
            reads,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// No token was configured: nothing may be changed.
    pub fn read_only(&self) -> bool {
        self.token.is_none()
    }

    /// Whether reads need the token.
    pub fn reads(&self) -> Reads {
        self.reads
    }

    /// Whether this request may read: reads are open, or it comes from a signed-in
    /// browser or carries the bearer token. A wrong bearer token counts as a failure.
    pub fn may_read(&self, headers: &HeaderMap, addr: SocketAddr) -> bool {
        if self.reads == Reads::Open || self.viewer(headers).is_some() {
            return true;
        }
        bearer(headers).is_some_and(|given| self.check_token(given, addr).is_ok())
    }

    /// Compares `given` with the token, refusing an address that gave too many wrong
    /// ones lately; a wrong one is counted against its address.
    fn check_token(&self, given: &str, addr: SocketAddr) -> Result<(), ApiError> {
        let ip = addr.ip();
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let current = failures
            .get(&ip)
            .filter(|f| now.duration_since(f.since) < FAILURE_WINDOW)
            .copied();
        if current.is_some_and(|f| f.count >= MAX_FAILURES) {
            return Err(ApiError::TooManyRequests(format!(
                "{MAX_FAILURES} wrong tokens from this address within {}s: wait before trying again",
                FAILURE_WINDOW.as_secs()
            )));
        }
        let matches = self
            .token
            .as_deref()
            .is_some_and(|token| constant_time_eq(token.as_bytes(), given.as_bytes()));
        if matches {
            return Ok(());
        }
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            failures.retain(|_, f| now.duration_since(f.since) < FAILURE_WINDOW);
        }
        if failures.len() < MAX_TRACKED_ADDRESSES || current.is_some() {
            let mut counted = current.unwrap_or(Failures {
                since: now,
                count: 0,
            });
            counted.count += 1;
            failures.insert(ip, counted);
        }
        Err(ApiError::Unauthorized("wrong token".into()))
    }

    /// Checks a sign-in; on success, a new session id and its CSRF token.
    pub fn sign_in(&self, actor: &str, token: &str, addr: SocketAddr) -> Result<String, ApiError> {
        if self.read_only() {
            return Err(read_only());
        }
        self.check_token(token, addr)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = Session {
            actor: clean_actor(actor).unwrap_or_else(|| "browser".to_owned()),
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            expires: Instant::now() + SESSION_TTL,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > Instant::now());
        sessions.insert(id.clone(), session);
        Ok(id)
    }

    pub fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.lock().remove(&id);
        }
    }

    /// The signed-in browser making this request, if any.
    pub fn viewer(&self, headers: &HeaderMap) -> Option<Viewer> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let sessions = self.lock();
        let session = sessions.get(&id).filter(|s| s.expires > Instant::now())?;
        Some(Viewer {
            actor: session.actor.clone(),
            csrf: session.csrf.clone(),
        })
    }

    /// Who may make this API change: the bearer token is required.
    pub fn api_actor(&self, headers: &HeaderMap, addr: SocketAddr) -> Result<Actor, ApiError> {
        if self.read_only() {
            return Err(read_only());
        }
        let given = bearer(headers).ok_or_else(|| {
            ApiError::Unauthorized("changes need `Authorization: Bearer <token>`".into())
        })?;
        self.check_token(given, addr)?;
        let name = headers
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(clean_actor)
            .unwrap_or_else(|| "api".to_owned());
        Ok(Actor {
            name,
            via: "token",
            addr,
        })
    }

    /// Who may make this change from a form: a session whose CSRF token the form
    /// carries, from a page of this dashboard.
    pub fn form_actor(
        &self,
        headers: &HeaderMap,
        addr: SocketAddr,
        csrf: &str,
    ) -> Result<Actor, ApiError> {
        if self.read_only() {
            return Err(read_only());
        }
        let viewer = self
            .viewer(headers)
            .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
        if !constant_time_eq(viewer.csrf.as_bytes(), csrf.as_bytes()) {
            return Err(ApiError::Forbidden(
                "the form's CSRF token does not match this session: reload the page".into(),
            ));
        }
        if !same_origin(headers) {
            return Err(ApiError::Forbidden(
                "a change must come from this dashboard's own pages".into(),
            ));
        }
        Ok(Actor {
            name: viewer.actor,
            via: "session",
            addr,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves the map whole: go on with it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Logs a change: who, from where, what, and how it went.
pub fn audit(actor: &Actor, action: &str, target: &str, outcome: &str) {
    tracing::info!(
        target: "flotilla::audit",
        actor = %actor.name,
        via = actor.via,
        addr = %actor.addr,
        action,
        subject = target,
        outcome,
        "dashboard change"
    );
}

/// Logs a change the dashboard refused (no or a wrong token, a bad CSRF token, another
/// origin, too many wrong tokens): who tried, and what.
pub fn audit_refusal(addr: SocketAddr, method: &str, path: &str, status: u16) {
    tracing::warn!(
        target: "flotilla::audit",
        addr = %addr,
        action = %format!("{method} {path}").escape_debug(),
        status,
        outcome = "refused",
        "dashboard change refused"
    );
}

fn read_only() -> ApiError {
    ApiError::Forbidden(
        "the dashboard is read-only: start it with FLOTILLA_DASHBOARD_TOKEN to allow changes"
            .into(),
    )
}

/// A name fit for the log: printable, without spaces at the ends, not too long.
fn clean_actor(name: &str) -> Option<String> {
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ACTOR_LEN)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The bearer token a request carries, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// When the browser says where the request came from, it must be this dashboard, scheme
/// and all: `http://<Host>`, or `https://<Host>` behind a proxy that says
/// `X-Forwarded-Proto: https`. An opaque origin (`null`) is never this dashboard.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .unwrap_or("http");
    !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn a_session_needs_its_own_csrf_token_and_origin() {
        let auth = Auth::new(Some("s3cret".into()), Reads::Open);
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        assert!(auth.sign_in("ann", "wrong", addr).is_err());
        let id = auth.sign_in("ann", "s3cret", addr).expect("signs in");
        let cookie = format!("other=1; {SESSION_COOKIE}={id}");
        let csrf = auth
            .viewer(&headers(&[("cookie", &cookie)]))
            .expect("a viewer")
            .csrf;
        let ok = headers(&[
            ("cookie", &cookie),
            ("host", "h:1"),
            ("origin", "http://h:1"),
        ]);
        assert_eq!(
            auth.form_actor(&ok, addr, &csrf).map(|a| a.name).ok(),
            Some("ann".into())
        );
        assert!(matches!(
            auth.form_actor(&ok, addr, "forged"),
            Err(ApiError::Forbidden(_))
        ));
        for origin in ["http://evil", "https://h:1", "null", "ftp://h:1"] {
            let elsewhere = headers(&[("cookie", &cookie), ("host", "h:1"), ("origin", origin)]);
            assert!(
                matches!(
                    auth.form_actor(&elsewhere, addr, &csrf),
                    Err(ApiError::Forbidden(_))
                ),
                "{origin}"
            );
        }
        let proxied = headers(&[
            ("cookie", &cookie),
            ("host", "h:1"),
            ("origin", "https://h:1"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(auth.form_actor(&proxied, addr, &csrf).is_ok());
        assert!(matches!(
            auth.form_actor(&headers(&[]), addr, &csrf),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn an_address_that_keeps_guessing_is_refused_for_a_while() {
        let auth = Auth::new(Some("s3cret".into()), Reads::NeedToken);
        let guesser: SocketAddr = "10.0.0.1:1".parse().expect("an address");
        let other: SocketAddr = "10.0.0.2:1".parse().expect("an address");
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                auth.sign_in("eve", "guess", guesser),
                Err(ApiError::Unauthorized(_))
            ));
        }
        // Even the right token is refused from there until the window ends.
        assert!(matches!(
            auth.sign_in("eve", "s3cret", guesser),
            Err(ApiError::TooManyRequests(_))
        ));
        let bearer = headers(&[("authorization", "Bearer s3cret")]);
        assert!(!auth.may_read(&bearer, guesser));
        assert!(auth.may_read(&bearer, other));
        assert!(auth.sign_in("ann", "s3cret", other).is_ok());
        assert!(!auth.may_read(&headers(&[]), other), "reads need the token");
    }

    #[test]
    fn without_a_token_nothing_may_change() {
        let auth = Auth::new(None, Reads::Open);
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let bearer = headers(&[("authorization", "Bearer anything")]);
        assert!(matches!(
            auth.api_actor(&bearer, addr),
            Err(ApiError::Forbidden(_))
        ));
        assert!(auth.sign_in("ann", "", addr).is_err());
    }
}
