//! What every request handler shares: the operations library, a producer (cancel and
//! schedule triggers go through it), the schedule store, the sign-in state, the messages
//! pages show after a change, and how the dashboard guards itself.

use std::sync::Arc;
use std::time::Duration;

use flotilla_admin::Admin;

use crate::auth::{Auth, Reads};
use crate::flash::Flashes;

/// How the dashboard guards itself and the network it listens on.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Allows changes, and reads when `reads` is [`Reads::NeedToken`]
    /// (`FLOTILLA_DASHBOARD_TOKEN`); without one the dashboard is read-only.
    pub token: Option<String>,
    /// Who may read.
    pub reads: Reads,
    /// Host names the dashboard answers to besides `localhost` and IP addresses: the
    /// names a reverse proxy or DNS gives it. A request naming any other host is refused,
    /// so a page elsewhere cannot reach it through a name it rebinds to this address.
    pub allowed_hosts: Vec<String>,
    /// The limits on connections and requests.
    pub limits: ServeLimits,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            token: None,
            reads: Reads::Open,
            allowed_hosts: Vec::new(),
            limits: ServeLimits::default(),
        }
    }
}

/// The limits on connections and requests that keep a slow or flooding client from
/// holding the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// How long a request's headers may take to arrive, counted from when the connection
    /// is ready for one (so it also ends an idle kept-alive connection).
    pub header_read_timeout: Duration,
    /// How long a request may take, its body included, before it is answered 408.
    pub request_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A dashboard that could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reads were to need a token, and none is set.
    #[error(
        "reads need a token, but FLOTILLA_DASHBOARD_TOKEN is not set: set it, or let anyone \
         who reaches the dashboard read (--auth changes, for a loopback address only)"
    )]
    ReadsNeedToken,
    /// The connection limit was 0.
    #[error("--max-connections must be at least 1")]
    NoConnections,
}

/// The dashboard's shared state; cheap to clone (connections are multiplexed).
#[derive(Clone)]
pub struct AppState {
    pub(crate) admin: Admin,
    pub(crate) auth: Arc<Auth>,
    pub(crate) flashes: Arc<Flashes>,
    pub(crate) allowed_hosts: Arc<[String]>,
    pub(crate) limits: ServeLimits,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("namespace", &self.admin.keys().namespace())
            .field("read_only", &self.auth.read_only())
            .field("reads", &self.auth.reads())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state the pages and the API share: every read and action goes through
    /// `admin`, in its namespace. Fails when `config` asks for what cannot be: reads that need a token without one.
    pub fn new(admin: Admin, config: DashboardConfig) -> Result<Self, ConfigError> {
        let token = config.token.filter(|t| !t.trim().is_empty());
        if config.reads == Reads::NeedToken && token.is_none() {
            return Err(ConfigError::ReadsNeedToken);
        }
        if config.limits.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        Ok(Self {
            admin,
            auth: Arc::new(Auth::new(token, config.reads)),
            flashes: Arc::default(),
            allowed_hosts: config.allowed_hosts.into(),
            limits: config.limits,
        })
    }

    /// The operations library, for one request.
    pub(crate) fn admin(&self) -> Admin {
        self.admin.clone()
    }
}
