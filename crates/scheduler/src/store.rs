//! Schedules in Redis: definitions in one hash (JSON per name), state (last and next
//! tick, last job, pauses) in a hash per schedule. Shared by the scheduler and the CLI.

use std::collections::HashMap;

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use flotilla_proto::scripts::{self, AdvanceReply, ScheduleAdvance};

use crate::state::ScheduleState;
use crate::{Schedule, SchedulerError};
use flotilla_proto::server_time_ms;

/// Reads and writes schedule definitions and state.
#[derive(Debug, Clone)]
pub struct ScheduleStore {
    conn: SharedConnection,
    keys: Keys,
}

impl ScheduleStore {
    /// A store for the schedules of the namespace of `keys`, read and written over `conn`.
    pub fn new(conn: SharedConnection, keys: Keys) -> Self {
        Self { conn, keys }
    }

    /// The keys of the store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Every schedule that can be read, by name. A stored definition that no longer parses
    /// is logged and left out, so one bad entry never stops the others.
    pub async fn list(&self) -> Result<Vec<Schedule>, SchedulerError> {
        let (schedules, unreadable) = self.list_all().await?;
        for e in unreadable {
            tracing::error!("{e}");
        }
        Ok(schedules)
    }

    /// Every schedule, and an error for each stored definition that cannot be read.
    pub async fn list_all(&self) -> Result<(Vec<Schedule>, Vec<SchedulerError>), SchedulerError> {
        let mut conn = self.conn.clone();
        let raw = flotilla_proto::schedule_definitions(&mut conn, &self.keys).await?;
        let mut schedules = Vec::new();
        let mut unreadable = Vec::new();
        for (name, json) in raw {
            match serde_json::from_str::<Schedule>(&json) {
                Ok(schedule) => schedules.push(schedule),
                Err(e) => unreadable.push(SchedulerError::Corrupt {
                    name,
                    reason: e.to_string(),
                }),
            }
        }
        schedules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((schedules, unreadable))
    }

    /// The schedule named `name`: [`SchedulerError::NoSuchSchedule`] when there is none,
    /// [`SchedulerError::Corrupt`] when its stored definition cannot be read.
    pub async fn get(&self, name: &str) -> Result<Schedule, SchedulerError> {
        let mut conn = self.conn.clone();
        let json = flotilla_proto::schedule_definition(&mut conn, &self.keys, name).await?;
        let json = json.ok_or_else(|| SchedulerError::NoSuchSchedule(name.to_owned()))?;
        serde_json::from_str(&json).map_err(|e| SchedulerError::Corrupt {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Adds or replaces a schedule after checking it. A new schedule, or one whose timing,
    /// time zone or queue changed, starts afresh from now: ticks are counted from the moment
    /// it was saved, not from an older timing's last tick.
    pub async fn put(&self, schedule: &Schedule) -> Result<(), SchedulerError> {
        schedule.validate()?;
        let json =
            serde_json::to_string(schedule).map_err(|e| SchedulerError::InvalidSchedule {
                name: schedule.name.clone(),
                problem: e.to_string(),
            })?;
        let old = match self.get(&schedule.name).await {
            Ok(old) => Some(old),
            Err(SchedulerError::NoSuchSchedule(_) | SchedulerError::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let retimed = old.as_ref().is_none_or(|old| {
            (&old.cron, &old.every, &old.at, &old.tz, &old.queue)
                != (
                    &schedule.cron,
                    &schedule.every,
                    &schedule.at,
                    &schedule.tz,
                    &schedule.queue,
                )
        });
        let mut conn = self.conn.clone();
        if retimed {
            self.restart_from_now(&schedule.name).await?;
        }
        flotilla_proto::put_schedule_definition(&mut conn, &self.keys, &schedule.name, &json)
            .await?;
        Ok(())
    }

    /// Pauses or resumes a schedule. Resuming goes on from now: the ticks that fell in the
    /// pause are neither fired nor reported as missed, while a tick missed before the pause
    /// stays reported (the pause is remembered, not the schedule's history forgotten).
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<(), SchedulerError> {
        let mut schedule = self.get(name).await?;
        if schedule.paused == paused {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let now = server_time_ms(&mut conn).await?;
        if paused {
            flotilla_proto::mark_schedule_paused(&mut conn, &self.keys, name, now).await?;
        } else {
            // State first: a leader that sees the schedule active must see where it goes on
            // from.
            let state = self.state(name).await?;
            let pauses = state.with_pause_ended(now);
            let go_on_from = state.last_tick.unwrap_or(now).max(now);
            flotilla_proto::mark_schedule_resumed(&mut conn, &self.keys, name, go_on_from, &pauses)
                .await?;
        }
        schedule.paused = paused;
        self.put(&schedule).await
    }

    /// Sets a schedule's state to begin at the server's present time: `since` and
    /// `last_tick` both now, so nothing before it is fired or expected.
    async fn restart_from_now(&self, name: &str) -> Result<(), SchedulerError> {
        let mut conn = self.conn.clone();
        let now = server_time_ms(&mut conn).await?;
        flotilla_proto::restart_schedule(&mut conn, &self.keys, name, now).await?;
        Ok(())
    }

    /// Removes a schedule and its state.
    pub async fn remove(&self, name: &str) -> Result<(), SchedulerError> {
        let mut conn = self.conn.clone();
        if !flotilla_proto::remove_schedule(&mut conn, &self.keys, name).await? {
            return Err(SchedulerError::NoSuchSchedule(name.to_owned()));
        }
        Ok(())
    }

    /// Writes the settings file's schedules: each keeps its paused flag if it exists
    /// already; schedules that came from the file earlier and are gone from it now are
    /// removed. Schedules added at run time are left alone.
    pub async fn sync_config(&self, from_config: &[Schedule]) -> Result<(), SchedulerError> {
        let existing: HashMap<String, Schedule> = self
            .list()
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        for schedule in from_config {
            let mut schedule = schedule.clone();
            schedule.source = "config".to_owned();
            if let Some(old) = existing.get(&schedule.name) {
                schedule.paused = old.paused;
            }
            self.put(&schedule).await?;
        }
        for old in existing.values() {
            if old.source == "config" && !from_config.iter().any(|s| s.name == old.name) {
                tracing::info!(schedule = %old.name, "removed: no longer in the settings file");
                self.remove(&old.name).await?;
            }
        }
        Ok(())
    }

    /// The state of the schedule named `name` (last and next tick, last job, pauses); a
    /// field never written is `None`.
    pub async fn state(&self, name: &str) -> Result<ScheduleState, SchedulerError> {
        let mut conn = self.conn.clone();
        Ok(flotilla_proto::read_schedule_state(&mut conn, &self.keys, name).await?)
    }

    /// Records the last handled tick under the leader's epoch. Returns false if the epoch
    /// is no longer current: the caller has been deposed.
    pub async fn advance(
        &self,
        epoch: u64,
        name: &str,
        last_tick: i64,
        last_job: Option<&str>,
        next_tick: Option<i64>,
        now: i64,
    ) -> Result<bool, SchedulerError> {
        let mut conn = self.conn.clone();
        let advance = ScheduleAdvance {
            epoch,
            name,
            last_tick_ms: last_tick,
            last_job,
            next_tick_ms: next_tick,
            fired_at_ms: now,
        };
        // Only a newer epoch ends our term; a tick that would move backwards or a schedule
        // removed meanwhile leave the caller leading.
        Ok(scripts::run(&mut conn, &self.keys, &advance).await? != AdvanceReply::StaleEpoch)
    }
}
