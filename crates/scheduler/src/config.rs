//! Scheduler settings: plain values with no I/O.

use std::time::Duration;

use flotilla_producer::ProducerLimits;

use crate::{AlertConfig, ReconcileConfig};

/// How the scheduler elects its leader and how often the leader acts.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Key namespace (default `flotilla`).
    pub namespace: String,
    /// How long a leader's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// The leader acts only while more than this remains of its lease (rule 6).
    pub safety_margin: Duration,
    /// How often a standby tries to take the lease.
    pub retry_interval: Duration,
    /// How often the leader looks for due ticks.
    pub poll_interval: Duration,
    /// A tick fired within this long of its time is on time; older ones are missed and
    /// follow their schedule's catch-up policy.
    pub misfire_grace: Duration,
    /// How often the leader promotes due delayed jobs.
    pub promote_interval: Duration,
    /// How long the guard against firing a tick twice is kept.
    pub fire_guard_ttl: Duration,
    pub reconcile: ReconcileConfig,
    pub alerts: AlertConfig,
    /// Limits and defaults for the jobs that schedules fire (`[limits]`, `[defaults]`).
    pub job_limits: ProducerLimits,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            namespace: "flotilla".to_owned(),
            lease_ttl: Duration::from_secs(10),
            safety_margin: Duration::from_secs(2),
            retry_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(100),
            misfire_grace: Duration::from_secs(1),
            promote_interval: Duration::from_millis(250),
            fire_guard_ttl: Duration::from_secs(7 * 24 * 3600),
            reconcile: ReconcileConfig::default(),
            alerts: AlertConfig::default(),
            job_limits: ProducerLimits::default(),
        }
    }
}

impl SchedulerConfig {
    /// Checks the relations between settings; the message names the setting to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.safety_margin * 2 >= self.lease_ttl {
            return Err(format!(
                "safety_margin: {:?} must be under half of lease_ttl ({:?})",
                self.safety_margin, self.lease_ttl
            ));
        }
        if self.poll_interval.is_zero() || self.retry_interval.is_zero() {
            return Err("poll_interval and retry_interval must be above zero".into());
        }
        if self.misfire_grace < self.poll_interval {
            return Err("misfire_grace: must be at least poll_interval".into());
        }
        Ok(())
    }

    /// How often a leader renews: three times per lease, so one lost renewal is survivable.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }
}
