//! Scheduler settings: plain values with no I/O. The `[scheduler]` section of the
//! settings file deserializes straight into [`SchedulerConfig`].

use std::time::Duration;

use flotilla_proto::{DEFAULT_NAMESPACE, JobPolicy};
use serde::Deserialize;

use crate::{AlertConfig, ReconcileConfig};

/// How the scheduler elects its leader and how often the leader acts.
///
/// The namespace, reconciliation, alerts and job policy have sections of their own in
/// the settings file, so the `[scheduler]` section leaves them out.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Key namespace (default `flotilla`).
    #[serde(skip)]
    pub namespace: String,
    /// How long a leader's lease lasts without renewal.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// The leader acts only while more than this remains of its lease (rule 6).
    #[serde(with = "humantime_serde")]
    pub safety_margin: Duration,
    /// How often a standby tries to take the lease.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// How often the leader looks for due ticks.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A tick fired within this long of its time is on time; older ones are missed and
    /// follow their schedule's catch-up policy.
    #[serde(with = "humantime_serde")]
    pub misfire_grace: Duration,
    /// How often the leader promotes due delayed jobs.
    #[serde(with = "humantime_serde")]
    pub promote_interval: Duration,
    /// How long the guard against firing a tick twice is kept.
    #[serde(skip)]
    pub fire_guard_ttl: Duration,
    /// Reconciliation settings: the `[reconcile]` section.
    #[serde(skip)]
    pub reconcile: ReconcileConfig,
    /// Alert thresholds: the `[alerts]` section.
    #[serde(skip)]
    pub alerts: AlertConfig,
    /// Limits and defaults for the jobs that schedules fire.
    #[serde(skip)]
    pub jobs: JobPolicy,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            lease_ttl: Duration::from_secs(10),
            safety_margin: Duration::from_secs(2),
            retry_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(100),
            misfire_grace: Duration::from_secs(1),
            promote_interval: Duration::from_millis(250),
            fire_guard_ttl: Duration::from_secs(7 * 24 * 3600),
            reconcile: ReconcileConfig::default(),
            alerts: AlertConfig::default(),
            jobs: JobPolicy::default(),
        }
    }
}

impl SchedulerConfig {
    /// Checks the relations between settings; the message names the setting to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.safety_margin * 2 >= self.lease_ttl {
            return Err(format!(
                "scheduler.safety_margin: {:?} must be under half of lease_ttl ({:?})",
                self.safety_margin, self.lease_ttl
            ));
        }
        if self.poll_interval.is_zero() || self.retry_interval.is_zero() {
            return Err(
                "scheduler.poll_interval and scheduler.retry_interval: must be above zero".into(),
            );
        }
        if self.misfire_grace < self.poll_interval {
            return Err("scheduler.misfire_grace: must be at least scheduler.poll_interval".into());
        }
        self.jobs.check()
    }

    /// How often a leader renews: three times per lease, so one lost renewal is survivable.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }
}
