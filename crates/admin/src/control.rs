//! The operator's actions that other libraries carry out, owned here so that the ops
//! commands and the dashboard take every action from one place: cancelling a job (the
//! producer's `cancel` script), the schedules (the scheduler's store and its manual
//! trigger), the leader and the alerts.

use flotilla_producer::{Cancelled, Producer};
use flotilla_scheduler::{
    Alert, AlertEvent, LeaderStatus, Schedule, ScheduleState, ScheduleStore, leader_status,
    list_alerts,
};

use crate::{Admin, AdminError};

impl Admin {
    /// Cancels job `id` of `queue`: a waiting job never runs, a running one's handler is
    /// told within a second; a finished one is left as it is (see [`Cancelled`]).
    pub async fn cancel(&mut self, queue: &str, id: &str) -> Result<Cancelled, AdminError> {
        Ok(self.producer().cancel(queue, id).await?)
    }

    /// The schedules, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, AdminError> {
        Ok(self.schedule_store().list().await?)
    }

    /// The schedules that can be read, and why each of the others cannot.
    pub async fn schedules_and_problems(
        &self,
    ) -> Result<(Vec<Schedule>, Vec<flotilla_scheduler::SchedulerError>), AdminError> {
        Ok(self.schedule_store().list_all().await?)
    }

    /// The schedule `name`.
    pub async fn schedule(&self, name: &str) -> Result<Schedule, AdminError> {
        Ok(self.schedule_store().get(name).await?)
    }

    /// What the leader has done with schedule `name`: its last fire, its pause.
    pub async fn schedule_state(&self, name: &str) -> Result<ScheduleState, AdminError> {
        Ok(self.schedule_store().state(name).await?)
    }

    /// Saves `schedule`, a new one or a change to one of that name.
    pub async fn put_schedule(&self, schedule: &Schedule) -> Result<(), AdminError> {
        Ok(self.schedule_store().put(schedule).await?)
    }

    /// Removes the schedule `name`.
    pub async fn remove_schedule(&self, name: &str) -> Result<(), AdminError> {
        Ok(self.schedule_store().remove(name).await?)
    }

    /// Pauses (or resumes) the schedule `name`: the leader fires none of its ticks while
    /// it is paused.
    pub async fn pause_schedule(&self, name: &str, paused: bool) -> Result<(), AdminError> {
        Ok(self.schedule_store().set_paused(name, paused).await?)
    }

    /// Enqueues one run of the schedule `name` now, besides its ticks; answers the job's
    /// id.
    pub async fn trigger_schedule(&self, name: &str, now_ms: i64) -> Result<String, AdminError> {
        let schedule = self.schedule(name).await?;
        Ok(flotilla_scheduler::trigger(&self.producer(), &schedule, now_ms).await?)
    }

    /// Which scheduler replica leads, its epoch and lease.
    pub async fn leader(&self) -> Result<LeaderStatus, AdminError> {
        Ok(leader_status(&mut self.conn.clone(), &self.keys).await?)
    }

    /// The active alerts, and the `recent` last lines of their history.
    pub async fn alerts(&self, recent: usize) -> Result<(Vec<Alert>, Vec<AlertEvent>), AdminError> {
        Ok(list_alerts(&mut self.conn.clone(), &self.keys, recent).await?)
    }

    /// Whether Redis answers now; the error says why not.
    pub async fn ping(&self) -> Result<(), AdminError> {
        Ok(flotilla_proto::ping(&mut self.conn.clone()).await?)
    }

    /// The keys of this handle's namespace.
    pub fn keys(&self) -> &flotilla_proto::Keys {
        &self.keys
    }

    fn schedule_store(&self) -> ScheduleStore {
        ScheduleStore::new(self.conn.clone(), self.keys.clone())
    }

    fn producer(&self) -> Producer {
        Producer::new(self.conn.clone(), self.keys.clone(), self.policy.clone())
    }
}
