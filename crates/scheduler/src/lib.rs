//! The Flotilla scheduler: one of several replicas leads at a time (a Redis lease with a
//! fencing epoch); the leader fires cron, interval and one-time schedules exactly once
//! per tick across failovers, and promotes due delayed jobs.
//!
//! ```no_run
//! # async fn example() -> Result<(), flotilla_scheduler::SchedulerError> {
//! use flotilla_scheduler::{Scheduler, SchedulerConfig, Shutdown};
//! let scheduler = Scheduler::connect("redis://127.0.0.1:6379", SchedulerConfig::default()).await?;
//! scheduler.run(Shutdown::on_signals()).await
//! # }
//! ```

#![warn(missing_docs)]

mod alerts;
mod checks;
mod config;
mod error;
mod firing;
mod leader;
mod metrics;
mod reconcile;
mod sampler;
mod schedule;
mod scheduler;
mod state;
mod store;

pub use alerts::{Alert, AlertConfig, AlertEvent, Alerter, list_alerts};
pub use config::SchedulerConfig;
pub use error::SchedulerError;
pub use firing::{Plan, plan_fires, scheduled_job_id, trigger};
pub use flotilla_proto::Shutdown;
pub use leader::{LeaderStatus, Leadership, status as leader_status};
pub use metrics::SchedulerMetrics;
pub use reconcile::{Finding, FindingKind, ReconcileConfig, Reconciler, Report};
pub use schedule::{CatchUp, Schedule, Timing};
pub use scheduler::Scheduler;
pub use state::{Pause, ScheduleState};
pub use store::ScheduleStore;
