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

#![warn(missing_docs)]

mod control;
mod delete;
mod error;
mod find;
mod limits;
mod list;
mod purge;
mod queues;
mod remove;
mod retry;
mod text;
mod throughput;
mod workers;
mod workflows;

use flotilla_proto::SharedConnection;
use flotilla_proto::{JobDefaults, JobPolicy, Keys};

pub use delete::Deleted;
// What the actions owned for other libraries take and answer, so a front end needs no
// other crate for them.
pub use error::AdminError;
pub use flotilla_producer::Cancelled;
pub use flotilla_proto::dependencies::{
    BatchCallback, BatchState, Dependencies, Edge, ParentState,
};
pub use flotilla_proto::flow::{QueueLimit, Rate};
pub use flotilla_proto::scripts::RetryReply;
pub use flotilla_scheduler::{
    Alert, AlertEvent, CatchUp, LeaderStatus, Schedule, ScheduleState, SchedulerError, Timing,
};
pub use limits::{BUSIEST_GROUPS_SHOWN, LimitUse};
pub use list::{JobPage, JobQuery, JobRow};
pub use purge::PurgeCount;
pub use queues::QueueStats;
pub use remove::Removed;
pub use retry::{DeadFilter, DeadLetter, RetryCount};
pub use text::job_text;
pub use throughput::Minute;
pub use workers::{WorkerRow, WorkerState};
pub use workflows::{FLOW_JOBS_SHOWN, FlowJob, FlowView};

/// A handle on one namespace of one Redis, for operations.
#[derive(Clone)]
pub struct Admin {
    conn: SharedConnection,
    keys: Keys,
    /// The fleet's job policy: its `defaults` are what a job that leaves its attempts,
    /// timeout or backoff unset runs with (shown for such jobs, as a worker of this fleet
    /// would run them); its limits and retention apply to what admin enqueues or cancels.
    policy: JobPolicy,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("namespace", &self.keys.namespace())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// A handle on the namespace of `keys`, read and written over `conn`. Jobs that leave
    /// their attempts, timeout or backoff unset are shown with the built-in defaults
    /// until [`Admin::with_defaults`] gives the fleet's.
    pub fn new(conn: SharedConnection, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            policy: JobPolicy::default(),
        }
    }

    /// The fleet's `[defaults]`, for jobs that leave them unset (the built-in ones
    /// otherwise).
    pub fn with_defaults(mut self, defaults: JobDefaults) -> Self {
        self.policy.defaults = defaults;
        self
    }

    /// The fleet's whole job policy: its defaults (as [`Admin::with_defaults`]), and the
    /// limits and retention that a schedule's manual run and a cancel follow.
    pub fn with_policy(mut self, policy: JobPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The job policy this handle follows.
    pub fn policy(&self) -> &JobPolicy {
        &self.policy
    }

    /// The queues the fleet knows: every queue a job was enqueued on, or a worker served.
    /// A partitioned queue is listed once, by its own name.
    pub async fn queues(&mut self) -> Result<Vec<String>, AdminError> {
        let mut queues: Vec<String> = self
            .all_streams()
            .await?
            .iter()
            .map(|name| flotilla_proto::queue_of_partition(name).to_owned())
            .collect();
        queues.dedup();
        Ok(queues)
    }

    /// The partitions to read for `queue` (all of a queue's when it names the queue, the
    /// one when it names a partition), or for every queue; an error naming the known
    /// queues when nobody used this one.
    pub(crate) async fn streams(&mut self, queue: Option<&str>) -> Result<Vec<String>, AdminError> {
        let all = self.all_streams().await?;
        let Some(queue) = queue else {
            return Ok(all);
        };
        if all.iter().any(|name| name == queue) && flotilla_proto::split_partition(queue).1 != 0 {
            return Ok(vec![queue.to_owned()]);
        }
        let partitions: Vec<String> = all
            .into_iter()
            .filter(|name| flotilla_proto::queue_of_partition(name) == queue)
            .collect();
        if partitions.is_empty() {
            return Err(self.unknown_queue(queue).await);
        }
        Ok(partitions)
    }

    /// Every stream name the fleet knows, partitions included, sorted so that a queue's
    /// partitions follow it.
    async fn all_streams(&mut self) -> Result<Vec<String>, AdminError> {
        let mut names = flotilla_proto::known_queues(&mut self.conn, &self.keys).await?;
        names.sort_by(|a, b| {
            let (a, b) = (
                flotilla_proto::split_partition(a),
                flotilla_proto::split_partition(b),
            );
            a.cmp(&b)
        });
        Ok(names)
    }
}
