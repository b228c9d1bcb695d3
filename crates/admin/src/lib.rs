//! Flotilla's operations library: what an operator reads and steers, for the `flotilla`
//! ops commands and the dashboard alike. It reads and writes the Redis model only
//! through `flotilla-proto`, so a change of the model touches one place.
//!
//! ```no_run
//! # async fn demo(conn: flotilla_proto::SharedConnection) -> Result<(), flotilla_admin::AdminError> {
//! use flotilla_admin::Admin;
//! use flotilla_proto::Keys;
//!
//! let mut admin = Admin::new(conn, Keys::new("flotilla"));
//! for queue in admin.queue_stats().await? {
//!     println!("{}: {} waiting, {} running", queue.queue, queue.state.pending, queue.state.running);
//! }
//! admin.pause("low").await?;
//! # Ok(()) }
//! ```

mod delete;
mod error;
mod find;
mod list;
mod purge;
mod queues;
mod retry;
mod throughput;
mod workers;

use flotilla_proto::SharedConnection;
use flotilla_proto::{JobDefaults, Keys};

pub use delete::Deleted;
pub use error::AdminError;
pub use flotilla_proto::scripts::RetryReply;
pub use list::{JobPage, JobQuery, JobRow};
pub use purge::PurgeCount;
pub use queues::QueueStats;
pub use retry::{DeadFilter, DeadLetter, RetryCount};
pub use throughput::Minute;
pub use workers::{WorkerRow, WorkerState};

/// A handle on one namespace of one Redis, for operations.
#[derive(Clone)]
pub struct Admin {
    conn: SharedConnection,
    keys: Keys,
    /// What a job that leaves its attempts, timeout or backoff unset runs with: shown
    /// for such jobs, as a worker of this fleet would run them.
    defaults: JobDefaults,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("namespace", &self.keys.namespace())
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub fn new(conn: SharedConnection, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            defaults: JobDefaults::default(),
        }
    }

    /// The fleet's `[defaults]`, for jobs that leave them unset (the built-in ones
    /// otherwise).
    pub fn with_defaults(mut self, defaults: JobDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// The queues the fleet knows: every queue a job was enqueued on, or a worker served.
    pub async fn queues(&mut self) -> Result<Vec<String>, AdminError> {
        let mut queues: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.queues())
            .query_async(&mut self.conn)
            .await?;
        queues.sort();
        Ok(queues)
    }
}
