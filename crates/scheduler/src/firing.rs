//! Which ticks to fire now: on-time ticks always, missed ones per the schedule's catch-up
//! policy. Pure, so tests give it any clock.

use crate::{CatchUp, Schedule, Timing};

/// The outcome of planning one schedule at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Ticks to enqueue, oldest first.
    pub fire: Vec<i64>,
    /// Missed ticks the policy drops.
    pub skipped: Vec<i64>,
    /// The tick to record as the last one handled (the newest considered), if any.
    pub advance_to: Option<i64>,
}

/// Plans the ticks in `(last_tick, now]`. A tick at most `grace_ms` old is on time.
pub fn plan_fires(
    schedule: &Schedule,
    timing: &Timing,
    last_tick: i64,
    now: i64,
    grace_ms: i64,
) -> Plan {
    let limit = schedule.catch_up_limit.max(1) as usize;
    let due = timing.ticks_between(last_tick, now, limit);
    let advance_to = due.last().copied();
    let (on_time, missed): (Vec<i64>, Vec<i64>) =
        due.into_iter().partition(|t| now - t <= grace_ms);
    let (fire, skipped) = match schedule.catch_up {
        CatchUp::All => (missed.into_iter().chain(on_time).collect(), Vec::new()),
        CatchUp::Skip => (on_time, missed),
        CatchUp::Latest if !on_time.is_empty() => (on_time, missed),
        CatchUp::Latest => {
            let mut missed = missed;
            let latest = missed.pop();
            (latest.into_iter().collect(), missed)
        }
    };
    Plan {
        fire,
        skipped,
        advance_to,
    }
}

/// The job id of a schedule's tick: the same for every scheduler that fires it (rule 5).
pub fn scheduled_job_id(schedule: &str, tick_ms: i64) -> String {
    format!("{schedule}@{tick_ms}")
}

/// The job a schedule enqueues, with the given id. JSON payloads, so handlers in any
/// language read them.
pub(crate) fn job_for(
    schedule: &Schedule,
    id: &str,
) -> Result<flotilla_producer::NewJob, flotilla_proto::ProtoError> {
    let payload = match &schedule.payload {
        serde_json::Value::Null => serde_json::json!({}),
        other => other.clone(),
    };
    let payload = flotilla_proto::Payload::encode(&payload, flotilla_proto::ContentType::Json)?;
    let mut job = flotilla_producer::NewJob::with_payload(&schedule.job_type, payload)
        .queue(&schedule.queue)
        .id(id);
    if let Some(n) = schedule.max_attempts {
        job = job.max_attempts(n);
    }
    if let Some(timeout) = schedule.timeout_duration() {
        job = job.timeout(timeout);
    }
    Ok(job)
}

/// Enqueues one run of `schedule` now, outside its timing (`flotilla schedules trigger`).
pub async fn trigger(
    producer: &flotilla_producer::Producer,
    schedule: &Schedule,
    now_ms: i64,
) -> Result<String, crate::SchedulerError> {
    let id = format!("{}@manual-{now_ms}", schedule.name);
    let job = job_for(schedule, &id).map_err(|e| crate::SchedulerError::InvalidSchedule {
        name: schedule.name.clone(),
        problem: e.to_string(),
    })?;
    Ok(producer.enqueue(job).await?.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_second(catch_up: CatchUp, limit: u32) -> (Schedule, Timing) {
        let mut s = Schedule::new("s", "noop");
        s.every = Some("1s".into());
        s.catch_up = catch_up;
        s.catch_up_limit = limit;
        let timing = s.validate().expect("valid");
        (s, timing)
    }

    #[test]
    fn an_on_time_tick_fires_under_every_policy() {
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::All] {
            let (s, t) = every_second(policy, 100);
            let plan = plan_fires(&s, &t, 9_000, 10_050, 1_000);
            assert_eq!(plan.fire, [10_000], "{policy:?}");
            assert_eq!(plan.advance_to, Some(10_000));
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        // Last handled 10 s ago; ticks 11..=20 s are due, only 20 s is on time.
        let (s, t) = every_second(CatchUp::Skip, 100);
        let plan = plan_fires(&s, &t, 10_000, 20_100, 1_000);
        assert_eq!(plan.fire, [20_000]);
        assert_eq!(plan.skipped.len(), 9);
        let (s, t) = every_second(CatchUp::All, 100);
        assert_eq!(
            plan_fires(&s, &t, 10_000, 20_100, 1_000).fire,
            (11..=20).map(|s| s * 1000).collect::<Vec<_>>()
        );
        let (s, t) = every_second(CatchUp::All, 3);
        assert_eq!(
            plan_fires(&s, &t, 10_000, 20_100, 1_000).fire,
            [18_000, 19_000, 20_000]
        );
        // Latest, with nothing on time: the most recent missed tick.
        let (s, t) = every_second(CatchUp::Latest, 100);
        let plan = plan_fires(&s, &t, 10_000, 25_500, 100);
        assert_eq!(plan.fire, [25_000]);
        assert_eq!(plan.advance_to, Some(25_000));
    }

    #[test]
    fn nothing_is_due_twice() {
        let (s, t) = every_second(CatchUp::All, 100);
        let plan = plan_fires(&s, &t, 20_000, 20_900, 1_000);
        assert!(plan.fire.is_empty() && plan.advance_to.is_none());
    }
}
