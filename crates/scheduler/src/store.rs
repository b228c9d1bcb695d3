//! Schedules in Redis: definitions in one hash (JSON per name), state (last and next
//! tick, last job) in a hash per schedule. Shared by the scheduler and the CLI.

use std::collections::HashMap;

use flotilla_proto::Keys;
use flotilla_proto::scripts::{self, Call};
use redis::aio::ConnectionManager;

use crate::{Schedule, SchedulerError};

/// What the scheduler has done for a schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    pub last_tick: Option<i64>,
    pub next_tick: Option<i64>,
    pub last_job: Option<String>,
    pub last_fired_at: Option<i64>,
    /// When the scheduler first saw the schedule: no tick before it is expected.
    pub since: Option<i64>,
}

/// Reads and writes schedule definitions and state.
#[derive(Debug, Clone)]
pub struct ScheduleStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl ScheduleStore {
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self { conn, keys }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Every schedule, by name. A stored definition that no longer parses is reported, not
    /// skipped silently.
    pub async fn list(&self) -> Result<Vec<Schedule>, SchedulerError> {
        let mut conn = self.conn.clone();
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.schedules())
            .query_async(&mut conn)
            .await?;
        let mut schedules = raw
            .into_iter()
            .map(|(name, json)| {
                serde_json::from_str::<Schedule>(&json).map_err(|e| SchedulerError::Corrupt {
                    name,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        schedules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(schedules)
    }

    pub async fn get(&self, name: &str) -> Result<Schedule, SchedulerError> {
        let mut conn = self.conn.clone();
        let json: Option<String> = redis::cmd("HGET")
            .arg(self.keys.schedules())
            .arg(name)
            .query_async(&mut conn)
            .await?;
        let json = json.ok_or_else(|| SchedulerError::NoSuchSchedule(name.to_owned()))?;
        serde_json::from_str(&json).map_err(|e| SchedulerError::Corrupt {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Adds or replaces a schedule after checking it.
    pub async fn put(&self, schedule: &Schedule) -> Result<(), SchedulerError> {
        schedule.validate()?;
        let json =
            serde_json::to_string(schedule).map_err(|e| SchedulerError::InvalidSchedule {
                name: schedule.name.clone(),
                problem: e.to_string(),
            })?;
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("HSET")
            .arg(self.keys.schedules())
            .arg(&schedule.name)
            .arg(json)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<(), SchedulerError> {
        let mut schedule = self.get(name).await?;
        schedule.paused = paused;
        self.put(&schedule).await
    }

    /// Removes a schedule and its state.
    pub async fn remove(&self, name: &str) -> Result<(), SchedulerError> {
        let mut conn = self.conn.clone();
        let (removed, _): (i64, i64) = redis::pipe()
            .cmd("HDEL")
            .arg(self.keys.schedules())
            .arg(name)
            .cmd("DEL")
            .arg(self.keys.schedule(name))
            .query_async(&mut conn)
            .await?;
        if removed == 0 {
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

    pub async fn state(&self, name: &str) -> Result<ScheduleState, SchedulerError> {
        let mut conn = self.conn.clone();
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.schedule(name))
            .query_async(&mut conn)
            .await?;
        let number = |field: &str| hash.get(field).and_then(|v| v.parse::<i64>().ok());
        Ok(ScheduleState {
            last_tick: number("last_tick"),
            next_tick: number("next_tick"),
            last_job: hash.get("last_job").cloned(),
            last_fired_at: number("last_fired_at"),
            since: number("since"),
        })
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
        let recorded: i64 = Call::new(&scripts::SCHEDULE_ADVANCE)
            .key(self.keys.fence())
            .key(self.keys.schedule(name))
            .arg(epoch)
            .arg(last_tick)
            .arg(last_job.unwrap_or_default())
            .arg(next_tick.map(|t| t.to_string()).unwrap_or_default())
            .arg(now)
            .invoke(&mut conn)
            .await?;
        Ok(recorded != 0)
    }
}
