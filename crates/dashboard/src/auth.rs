//! Who may change things. Without a token the dashboard is read-only. With one, the API
//! takes it as `Authorization: Bearer <token>`, and a browser signs in once with it and
//! a name, getting a session cookie (HttpOnly, SameSite=Strict) and a CSRF token that
//! every form carries. Every change is logged with who made it and from where.

use std::collections::HashMap;
use std::net::SocketAddr;
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

/// The token and the signed-in browser sessions.
#[derive(Debug)]
pub struct Auth {
    token: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
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
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.filter(|t| !t.trim().is_empty()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// No token was configured: nothing may be changed.
    pub fn read_only(&self) -> bool {
        self.token.is_none()
    }

    fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|token| constant_time_eq(token.as_bytes(), given.as_bytes()))
    }

    /// Checks a sign-in; on success, a new session id and its CSRF token.
    pub fn sign_in(&self, actor: &str, token: &str) -> Result<String, ApiError> {
        if self.read_only() {
            return Err(read_only());
        }
        if !self.token_matches(token) {
            return Err(ApiError::Unauthorized("wrong token".into()));
        }
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
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("changes need `Authorization: Bearer <token>`".into())
            })?;
        if !self.token_matches(given.trim()) {
            return Err(ApiError::Unauthorized("wrong token".into()));
        }
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

/// When the browser says where the request came from, it must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host == host
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
        let auth = Auth::new(Some("s3cret".into()));
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        assert!(auth.sign_in("ann", "wrong").is_err());
        let id = auth.sign_in("ann", "s3cret").expect("signs in");
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
        let elsewhere = headers(&[
            ("cookie", &cookie),
            ("host", "h:1"),
            ("origin", "http://evil"),
        ]);
        assert!(matches!(
            auth.form_actor(&elsewhere, addr, &csrf),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            auth.form_actor(&headers(&[]), addr, &csrf),
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn without_a_token_nothing_may_change() {
        let auth = Auth::new(None);
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let bearer = headers(&[("authorization", "Bearer anything")]);
        assert!(matches!(
            auth.api_actor(&bearer, addr),
            Err(ApiError::Forbidden(_))
        ));
        assert!(auth.sign_in("ann", "").is_err());
    }
}
