//! What the scheduler has done for a schedule, and what follows from it for the people
//! who read it: the last tick that fired, the next one due, and the pauses whose ticks
//! are neither fired nor expected.

use crate::Schedule;

/// How long a pause is remembered after it ended: longer than any look-back of the
/// reconciliation, so a tick inside it is never reported as missed.
const PAUSES_KEPT_MS: i64 = 7 * 24 * 3_600_000;
/// Pauses remembered at most.
const MAX_PAUSES: usize = 64;

/// A schedule's state as stored beside its definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// Ticks up to here have been handled (fired, or skipped by the catch-up policy).
    pub last_tick: Option<i64>,
    /// The next tick as the leader computed it when it last handled one.
    pub next_tick: Option<i64>,
    pub last_job: Option<String>,
    pub last_fired_at: Option<i64>,
    /// When the scheduler first saw the schedule: no tick before it is expected.
    pub since: Option<i64>,
    /// When the schedule was paused, while it is.
    pub paused_at: Option<i64>,
    /// Past pauses, oldest first: no tick inside one is fired or expected.
    pub pauses: Vec<Pause>,
}

/// One pause, from when it was paused to when it was resumed (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub from: i64,
    pub to: i64,
}

impl Pause {
    /// The stored form: `from-to` pairs separated by commas.
    pub(crate) fn encode(pauses: &[Pause]) -> String {
        pauses
            .iter()
            .map(|p| format!("{}-{}", p.from, p.to))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; a part that cannot be read is left out.
    pub(crate) fn decode(text: &str) -> Vec<Pause> {
        text.split(',')
            .filter_map(|part| {
                let (from, to) = part.split_once('-')?;
                Some(Pause {
                    from: from.parse().ok()?,
                    to: to.parse().ok()?,
                })
            })
            .collect()
    }
}

impl ScheduleState {
    /// Whether `tick` fell while the schedule was paused.
    pub fn in_pause(&self, tick: i64) -> bool {
        self.paused_at.is_some_and(|from| tick >= from)
            || self.pauses.iter().any(|p| (p.from..=p.to).contains(&tick))
    }

    /// The pauses to keep once the current one ends at `now`: the recent ones and it.
    pub(crate) fn with_pause_ended(&self, now: i64) -> Vec<Pause> {
        let mut pauses: Vec<Pause> = self
            .pauses
            .iter()
            .copied()
            .filter(|p| p.to >= now - PAUSES_KEPT_MS)
            .collect();
        pauses.push(Pause {
            from: self.paused_at.unwrap_or(now).min(now),
            to: now,
        });
        let over = pauses.len().saturating_sub(MAX_PAUSES);
        pauses.drain(..over);
        pauses
    }

    /// The tick of the last job the schedule fired (its id is `<schedule>@<tick ms>`),
    /// not merely the last one handled: a schedule added a moment ago has fired none.
    pub fn last_fired_tick(&self) -> Option<i64> {
        self.last_job
            .as_deref()
            .and_then(|job| job.rsplit_once('@'))
            .and_then(|(_, tick)| tick.parse().ok())
    }

    /// The next tick the schedule will fire, computed from its definition: none while it
    /// is paused, or when it has no tick left (a one-time schedule that fired). A tick
    /// already due that no leader has fired yet shows as due.
    pub fn upcoming(&self, schedule: &Schedule) -> Option<i64> {
        if schedule.paused {
            return None;
        }
        let timing = schedule.timing().ok()?;
        timing.next_after(self.last_tick.or(self.since)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_tick_comes_from_the_definition_and_a_paused_schedule_has_none() {
        let mut nightly = Schedule::new("nightly", "report");
        nightly.cron = Some("0 30 2 * * *".to_owned());
        // Added on 2026-01-01 at noon UTC: nothing fired yet, next at 02:30 the next day.
        let added = 1_767_268_800_000;
        let state = ScheduleState {
            since: Some(added),
            last_tick: Some(added),
            ..ScheduleState::default()
        };
        assert_eq!(
            state.upcoming(&nightly),
            Some(added + 14 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(state.last_fired_tick(), None);
        nightly.paused = true;
        assert_eq!(state.upcoming(&nightly), None);
    }

    #[test]
    fn pauses_are_remembered_and_ticks_inside_them_are_not_expected() {
        let state = ScheduleState {
            paused_at: Some(1_000),
            pauses: vec![Pause { from: 100, to: 200 }],
            last_job: Some("tick@150".to_owned()),
            ..ScheduleState::default()
        };
        assert!(state.in_pause(150) && state.in_pause(1_500));
        assert!(!state.in_pause(50) && !state.in_pause(500));
        assert_eq!(state.last_fired_tick(), Some(150));
        let ended = state.with_pause_ended(2_000);
        assert_eq!(
            ended,
            vec![
                Pause { from: 100, to: 200 },
                Pause {
                    from: 1_000,
                    to: 2_000
                }
            ]
        );
        assert_eq!(Pause::decode(&Pause::encode(&ended)), ended);
    }
}
