//! What every request handler shares: the operations library, a producer (cancel and
//! schedule triggers go through it), the schedule store and the sign-in state.

use std::sync::Arc;

use flotilla_admin::Admin;
use flotilla_producer::Producer;
use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_scheduler::ScheduleStore;

use crate::auth::Auth;

/// The dashboard's shared state; cheap to clone (connections are multiplexed).
#[derive(Clone)]
pub struct AppState {
    pub(crate) admin: Admin,
    pub(crate) producer: Producer,
    pub(crate) schedules: ScheduleStore,
    pub(crate) conn: SharedConnection,
    pub(crate) keys: Keys,
    pub(crate) auth: Arc<Auth>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("namespace", &self.keys.namespace())
            .field("read_only", &self.auth.read_only())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// `token` allows changes (`FLOTILLA_DASHBOARD_TOKEN`); without one the dashboard is
    /// read-only.
    pub fn new(
        admin: Admin,
        producer: Producer,
        conn: SharedConnection,
        keys: Keys,
        token: Option<String>,
    ) -> Self {
        Self {
            admin,
            producer,
            schedules: ScheduleStore::new(conn.clone(), keys.clone()),
            conn,
            keys,
            auth: Arc::new(Auth::new(token)),
        }
    }

    /// The operations library, for one request.
    pub(crate) fn admin(&self) -> Admin {
        self.admin.clone()
    }
}
