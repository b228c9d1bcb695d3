//! What follows from a schedule's state for the people who read it: the next tick it will
//! fire. The state itself (last tick, next tick, pauses) is the wire contract's
//! ([`flotilla_proto::ScheduleState`]).

pub use flotilla_proto::{Pause, ScheduleState};

use crate::Schedule;

impl Schedule {
    /// The next tick this schedule will fire, computed from its definition and `state`:
    /// none while it is paused, or when it has no tick left (a one-time schedule that
    /// fired). A tick already due that no leader has fired yet shows as due.
    pub fn upcoming(&self, state: &ScheduleState) -> Option<i64> {
        if self.paused {
            return None;
        }
        let timing = self.timing().ok()?;
        timing.next_after(state.last_tick.or(state.since)?)
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
            nightly.upcoming(&state),
            Some(added + 14 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(state.last_fired_tick(), None);
        nightly.paused = true;
        assert_eq!(nightly.upcoming(&state), None);
    }
}
