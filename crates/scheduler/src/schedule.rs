//! Schedule definitions: cron (with optional seconds, L/W/# and `@hourly` aliases),
//! interval and one-time timings in a time zone, and the job each tick enqueues.

use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::SchedulerError;

/// What happens to ticks missed while no leader ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Fire none of them.
    Skip,
    /// Fire the most recent one.
    #[default]
    Latest,
    /// Fire all of them, up to `catch_up_limit`.
    All,
}

/// A schedule as stored in Redis (JSON) and written in the settings file.
// Unknown fields are tolerated in what is stored: a newer version may add some during a
// rolling upgrade. The settings file has its own strict form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The schedule's name: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// A cron expression: 5 or 6 fields (seconds first), or `@hourly`, `@daily`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An interval like `30m`; ticks fall on multiples of it since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// One instant, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// IANA time zone for cron; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// The job each tick enqueues.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The queue each tick's job goes to (`default` when absent).
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The payload of each tick's job, sent as JSON; null sends an empty object.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Attempts each job may make; `None` leaves it to the job defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Attempt timeout, e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What happens to ticks missed while no leader ran.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// How many due ticks one pass considers at most, the most recent ones; older ones
    /// are dropped. At least 1; 100 when absent.
    #[serde(default = "default_catch_up_limit")]
    pub catch_up_limit: u32,
    /// Whether the schedule is paused: it fires nothing while it is.
    #[serde(default)]
    pub paused: bool,
    /// `config` for schedules from the settings file (removed when they leave it),
    /// `runtime` for ones added with `flotilla schedules add`.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_queue() -> String {
    "default".to_owned()
}

fn default_catch_up_limit() -> u32 {
    100
}

fn default_source() -> String {
    "runtime".to_owned()
}

/// A schedule's timing, checked and ready to compute ticks.
#[derive(Debug, Clone)]
pub enum Timing {
    /// A cron expression, read in a time zone.
    Cron(Box<Cron>, TimeZone),
    /// Ticks on every multiple of this period since the Unix epoch.
    Every(Duration),
    /// One tick, at this instant.
    At(Timestamp),
}

impl Schedule {
    /// A schedule with the given timing fields left for the caller to set.
    pub fn new(name: &str, job_type: &str) -> Self {
        Self {
            name: name.to_owned(),
            cron: None,
            every: None,
            at: None,
            tz: None,
            job_type: job_type.to_owned(),
            queue: default_queue(),
            payload: serde_json::Value::Null,
            max_attempts: None,
            timeout: None,
            catch_up: CatchUp::default(),
            catch_up_limit: default_catch_up_limit(),
            paused: false,
            source: default_source(),
        }
    }

    fn invalid(&self, problem: impl Into<String>) -> SchedulerError {
        SchedulerError::InvalidSchedule {
            name: self.name.clone(),
            problem: problem.into(),
        }
    }

    /// Checks every field; the error names the field and the expected form.
    pub fn validate(&self) -> Result<Timing, SchedulerError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return Err(self.invalid("name: expected 1-128 letters, digits, '-', '_' or '.'"));
        }
        let queue_ok = !self.queue.is_empty()
            && self.queue.len() <= 128
            && !self
                .queue
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}');
        if !queue_ok {
            return Err(
                self.invalid("queue: expected 1-128 printable characters without spaces or braces")
            );
        }
        if self.job_type.trim().is_empty() {
            return Err(self.invalid("type: expected the job type to enqueue"));
        }
        if self.catch_up_limit == 0 {
            return Err(self.invalid("catch_up_limit: expected at least 1"));
        }
        if let Some(timeout) = &self.timeout {
            humantime::parse_duration(timeout).map_err(|e| {
                self.invalid(format!(
                    "timeout: {timeout:?} is not a duration like 10m ({e})"
                ))
            })?;
        }
        if self.max_attempts == Some(0) {
            return Err(self.invalid("max_attempts: expected at least 1"));
        }
        self.timing()
    }

    /// The timing: exactly one of `cron`, `every`, `at`.
    pub fn timing(&self) -> Result<Timing, SchedulerError> {
        let tz = match &self.tz {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| {
                self.invalid(format!(
                    "tz: {name:?} is not an IANA time zone like Europe/Berlin ({e})"
                ))
            })?,
        };
        match (&self.cron, &self.every, &self.at) {
            (Some(expr), None, None) => {
                let cron = Cron::from_str(expr).map_err(|e| {
                    self.invalid(format!("cron: {expr:?} is not a cron expression ({e})"))
                })?;
                Ok(Timing::Cron(Box::new(cron), tz))
            }
            (None, Some(every), None) => {
                let period = humantime::parse_duration(every).map_err(|e| {
                    self.invalid(format!("every: {every:?} is not a duration like 30m ({e})"))
                })?;
                if period < Duration::from_secs(1) || period > Duration::from_secs(366 * 24 * 3600)
                {
                    return Err(self.invalid("every: expected between 1s and 366 days"));
                }
                Ok(Timing::Every(period))
            }
            (None, None, Some(at)) => {
                let instant: Timestamp = at.parse().map_err(|e| {
                    self.invalid(format!("at: {at:?} is not an RFC 3339 instant ({e})"))
                })?;
                Ok(Timing::At(instant))
            }
            _ => Err(self.invalid("expected exactly one of cron, every or at")),
        }
    }

    /// The attempt timeout, if the schedule sets one.
    pub fn timeout_duration(&self) -> Option<Duration> {
        self.timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
    }
}

impl Timing {
    /// Up to `limit` ticks in `(after, until]` (milliseconds since the epoch), oldest
    /// first; when there are more, the most recent ones.
    pub fn ticks_between(&self, after: i64, until: i64, limit: usize) -> Vec<i64> {
        let mut ticks = Vec::new();
        match self {
            Timing::Cron(cron, tz) => {
                let Some(mut cursor) = zoned(until, tz) else {
                    return ticks;
                };
                let mut inclusive = true;
                while ticks.len() < limit {
                    let Ok(tick) = cron.find_previous_occurrence(&cursor, inclusive) else {
                        break;
                    };
                    let ms = tick.timestamp().as_millisecond();
                    if ms <= after {
                        break;
                    }
                    ticks.push(ms);
                    cursor = tick;
                    inclusive = false;
                }
            }
            Timing::Every(period) => {
                let step = period.as_millis() as i64;
                let mut tick = until.div_euclid(step) * step;
                while tick > after && ticks.len() < limit {
                    ticks.push(tick);
                    tick -= step;
                }
            }
            Timing::At(instant) => {
                let ms = instant.as_millisecond();
                if ms > after && ms <= until && limit > 0 {
                    ticks.push(ms);
                }
            }
        }
        ticks.reverse();
        ticks
    }

    /// The first tick after `after` (ms), if there is one.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Timing::Cron(cron, tz) => {
                let from = zoned(after, tz)?;
                cron.find_next_occurrence(&from, false)
                    .ok()
                    .map(|t| t.timestamp().as_millisecond())
            }
            Timing::Every(period) => {
                let step = period.as_millis() as i64;
                Some((after.div_euclid(step) + 1) * step)
            }
            Timing::At(instant) => Some(instant.as_millisecond()).filter(|ms| *ms > after),
        }
    }
}

fn zoned(ms: i64, tz: &TimeZone) -> Option<jiff::Zoned> {
    Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_zoned(tz.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339
            .parse::<Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or(i64::MIN)
    }

    fn show(ticks: &[i64], tz: &str) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap_or(TimeZone::UTC);
        ticks
            .iter()
            .filter_map(|t| Timestamp::from_millisecond(*t).ok())
            .map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%m-%d %H:%M:%S%:z")
                    .to_string()
            })
            .collect()
    }

    fn cron(expr: &str, tz: &str) -> Timing {
        let mut s = Schedule::new("t", "noop");
        s.cron = Some(expr.into());
        s.tz = Some(tz.into());
        s.validate().expect("valid schedule")
    }

    #[test]
    fn new_york_spring_forward_fires_a_skipped_time_once_at_the_gap() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
        let daily = cron("30 2 * * *", "America/New_York");
        let ticks =
            daily.ticks_between(ms("2026-03-06T12:00:00Z"), ms("2026-03-10T12:00:00Z"), 100);
        assert_eq!(
            show(&ticks, "America/New_York"),
            [
                "03-07 02:30:00-05:00",
                "03-08 03:00:00-04:00",
                "03-09 02:30:00-04:00",
                "03-10 02:30:00-04:00",
            ]
        );
        // An interval schedule simply has no ticks in the missing hour.
        let half_hourly = cron("*/30 * * * *", "America/New_York");
        let ticks =
            half_hourly.ticks_between(ms("2026-03-08T06:15:00Z"), ms("2026-03-08T07:45:00Z"), 100);
        assert_eq!(
            show(&ticks, "America/New_York"),
            [
                "03-08 01:30:00-05:00",
                "03-08 03:00:00-04:00",
                "03-08 03:30:00-04:00"
            ]
        );
    }

    #[test]
    fn new_york_fall_back_fires_a_repeated_time_once() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice.
        let daily = cron("30 1 * * *", "America/New_York");
        let ticks =
            daily.ticks_between(ms("2026-10-31T12:00:00Z"), ms("2026-11-02T12:00:00Z"), 100);
        assert_eq!(
            show(&ticks, "America/New_York"),
            ["11-01 01:30:00-04:00", "11-02 01:30:00-05:00"]
        );
        assert_eq!(
            daily.next_after(ms("2026-11-01T05:30:00Z")),
            Some(ms("2026-11-02T06:30:00Z"))
        );
    }

    #[test]
    fn extended_cron_forms_parse() {
        for expr in [
            "* * * * * *",
            "@hourly",
            "@daily",
            "0 0 L * *",
            "0 0 * * 5#2",
            "0 0 15W * *",
            "0 9 * * MON-FRI",
        ] {
            let mut s = Schedule::new("t", "noop");
            s.cron = Some(expr.into());
            assert!(s.validate().is_ok(), "{expr}");
        }
        let last_day = cron("0 12 L * *", "UTC");
        assert_eq!(
            last_day.next_after(ms("2026-02-01T00:00:00Z")),
            Some(ms("2026-02-28T12:00:00Z"))
        );
    }

    #[test]
    fn only_the_most_recent_ticks_are_returned_when_limited() {
        let every_second = cron("* * * * * *", "UTC");
        let ticks =
            every_second.ticks_between(ms("2026-01-01T00:00:00Z"), ms("2026-01-02T00:00:00Z"), 3);
        assert_eq!(
            ticks,
            [
                ms("2026-01-01T23:59:58Z"),
                ms("2026-01-01T23:59:59Z"),
                ms("2026-01-02T00:00:00Z")
            ]
        );
    }

    #[test]
    fn intervals_fall_on_multiples_of_the_period() {
        let mut s = Schedule::new("t", "noop");
        s.every = Some("15m".into());
        let every = s.validate().expect("valid");
        let ticks = every.ticks_between(ms("2026-01-01T00:05:00Z"), ms("2026-01-01T00:46:00Z"), 10);
        assert_eq!(
            show(&ticks, "UTC"),
            [
                "01-01 00:15:00+00:00",
                "01-01 00:30:00+00:00",
                "01-01 00:45:00+00:00"
            ]
        );
    }

    #[test]
    fn bad_definitions_name_the_field() {
        type Edit = fn(&mut Schedule);
        let cases: [(Edit, &str); 5] = [
            (|s| s.cron = Some("61 * * * *".into()), "cron"),
            (|s| s.every = Some("soon".into()), "every"),
            (|s| s.at = Some("tomorrow".into()), "at"),
            (
                |s| {
                    s.cron = Some("* * * * *".into());
                    s.tz = Some("Mars/Olympus".into())
                },
                "tz",
            ),
            (
                |s| {
                    s.cron = Some("* * * * *".into());
                    s.every = Some("1m".into())
                },
                "exactly one",
            ),
        ];
        for (edit, needle) in cases {
            let mut s = Schedule::new("t", "noop");
            edit(&mut s);
            let err = s.validate().expect_err("refused").to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
