//! The job policy every process shares: the `[limits]`, `[retention]` and `[defaults]`
//! sections of the settings file, each default written here once.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::{Backoff, MAX_ATTEMPTS_RULE, check_max_attempts};

/// Sizes checked before anything reaches Redis (rule 10).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest encoded payload accepted, in bytes; a bigger one is refused or dead-lettered.
    pub max_payload_bytes: usize,
    /// Largest result kept, in bytes of JSON; a bigger one fails its attempt for good.
    pub max_result_bytes: usize,
    /// A queue holding this many jobs (ready plus delayed) refuses new ones; 0 = no cap.
    pub max_queue_len: u64,
    /// Times a job may be snoozed (its handler said "not yet" without failing); a snooze
    /// past them counts as a failed attempt, so that no job snoozes forever.
    pub max_snoozes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 512 * 1024,
            max_result_bytes: 64 * 1024,
            max_queue_len: 1_000_000,
            max_snoozes: 100,
        }
    }
}

/// How long finished work is kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Completed and cancelled records.
    #[serde(with = "humantime_serde")]
    pub completed: Duration,
    /// Completed records kept per queue at most, whatever their age (oldest go first):
    /// with the age limit alone, memory would grow with throughput.
    pub completed_max_len: u64,
    /// Dead records, and dead-letter entries (trimmed by age).
    #[serde(with = "humantime_serde")]
    pub dead: Duration,
    /// Dead records, and entries of each dead-letter stream, kept per queue at most
    /// (the stream's trim is approximate; oldest dropped first).
    pub dead_max_len: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed: Duration::from_secs(24 * 3600),
            completed_max_len: 100_000,
            dead: Duration::from_secs(30 * 24 * 3600),
            dead_max_len: 10_000,
        }
    }
}

/// What a job that does not say gets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaults {
    /// Attempts a job gets, the first included.
    pub max_attempts: u32,
    /// Attempt timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `fixed:MS`, `exponential:BASE_MS:CAP_MS` or `list:MS,MS,…`.
    #[serde(deserialize_with = "backoff_from_text")]
    pub backoff: Backoff,
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            timeout: Duration::from_secs(30 * 60),
            backoff: Backoff::default(),
        }
    }
}

fn backoff_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Backoff, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// The three sections together, as producers, workers and the scheduler take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPolicy {
    /// The `[limits]` section: sizes checked before anything reaches Redis.
    pub limits: Limits,
    /// The `[retention]` section: how long finished work is kept.
    pub retention: Retention,
    /// The `[defaults]` section: what a job that does not say gets.
    pub defaults: JobDefaults,
}

impl JobPolicy {
    /// Refuses values that would quietly break every job; the message names the
    /// settings key and what it means.
    pub fn check(&self) -> Result<(), String> {
        if self.limits.max_payload_bytes == 0 {
            return Err(
                "limits.max_payload_bytes: expected at least 1 byte (0 would refuse every job)"
                    .into(),
            );
        }
        if self.limits.max_result_bytes == 0 {
            return Err("limits.max_result_bytes: expected at least 1 byte (0 would fail every job that returns a result)".into());
        }
        if self.limits.max_snoozes == 0 {
            return Err("limits.max_snoozes: expected at least 1 (a snooze past this many counts as a failed attempt)".into());
        }
        for (key, value) in [
            ("retention.completed", self.retention.completed),
            ("retention.dead", self.retention.dead),
        ] {
            if value < Duration::from_secs(1) {
                return Err(format!(
                    "{key}: expected a duration of at least 1s such as \"24h\" (finished records are kept this long, then expire)"
                ));
            }
        }
        for (key, value) in [
            (
                "retention.completed_max_len",
                self.retention.completed_max_len,
            ),
            ("retention.dead_max_len", self.retention.dead_max_len),
        ] {
            if value == 0 {
                return Err(format!(
                    "{key}: expected at least 1 record (this many are kept per queue)"
                ));
            }
        }
        check_max_attempts(u64::from(self.defaults.max_attempts))
            .map_err(|_| format!("defaults.max_attempts: expected {MAX_ATTEMPTS_RULE}"))?;
        if self.defaults.timeout.is_zero()
            || crate::millis(self.defaults.timeout) > crate::MAX_DURATION_MS
        {
            return Err(format!(
                "defaults.timeout: expected a duration of at least 1ms such as \"30m\", {}",
                crate::DURATION_RULE
            ));
        }
        self.defaults
            .backoff
            .check()
            .map_err(|e| format!("defaults.backoff: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        assert_eq!(JobPolicy::default().check(), Ok(()));
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let mut zero_payload = JobPolicy::default();
        zero_payload.limits.max_payload_bytes = 0;
        let mut no_attempts = JobPolicy::default();
        no_attempts.defaults.max_attempts = 0;
        let mut instant_expiry = JobPolicy::default();
        instant_expiry.retention.completed = Duration::ZERO;
        let mut keep_none = JobPolicy::default();
        keep_none.retention.completed_max_len = 0;
        for (policy, key) in [
            (keep_none, "retention.completed_max_len"),
            (zero_payload, "limits.max_payload_bytes"),
            (no_attempts, "defaults.max_attempts"),
            (instant_expiry, "retention.completed"),
        ] {
            let error = policy.check().expect_err(key);
            assert!(error.starts_with(key), "{error}");
        }
    }
}
