//! The scheduler runtime: take part in the election, and while leading fire due ticks
//! (each exactly once, rule 5), record them under the fencing epoch, and promote due
//! delayed jobs. SIGTERM hands the lease over at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_producer::{Outcome, Producer};
use flotilla_proto::scripts::{self, Promote};
use flotilla_proto::{Keys, SharedConnection, Shutdown, ToRedisTarget};

use crate::checks::TermChecks;
use crate::firing::{job_for, plan_fires, scheduled_job_id};
use crate::metrics::{SchedulerMetrics, Tick};
use crate::sampler::{SAMPLE_EVERY, sample};
use crate::{Leadership, Schedule, ScheduleStore, SchedulerConfig, SchedulerError};

/// Due delayed jobs moved per queue per promotion pass.
const PROMOTE_BATCH: usize = 1000;

/// One scheduler replica.
#[derive(Debug)]
pub struct Scheduler {
    conn: SharedConnection,
    /// Where Redis is, with the password hidden, for log lines.
    redis: String,
    keys: Keys,
    config: SchedulerConfig,
    store: ScheduleStore,
    producer: Producer,
    leadership: Leadership,
    /// Reconciliation and alerts of the current term; `None` while this replica does
    /// not lead, so a standby never repairs or alerts.
    checks: Option<TermChecks>,
    metrics: Arc<SchedulerMetrics>,
    /// The last problem logged per schedule: a bad definition is said once (and again
    /// when the problem changes), not at every poll.
    complaints: HashMap<String, String>,
}

impl Scheduler {
    /// Prepares a replica for the Redis at `target`, a URL or a
    /// [`flotilla_proto::RedisTarget`] (connecting lazily).
    pub async fn connect(
        target: &(impl ToRedisTarget + ?Sized),
        config: SchedulerConfig,
    ) -> Result<Self, SchedulerError> {
        config.validate().map_err(SchedulerError::Config)?;
        let target = target.to_redis_target()?;
        let redis = target.shown().to_owned();
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = SharedConnection::lazy(&target, manager_config)?;
        let keys = Keys::new(config.namespace.clone());
        let holder = flotilla_proto::instance_id();
        let leadership =
            Leadership::new(keys.clone(), holder, config.lease_ttl, config.safety_margin);
        let producer = Producer::new(conn.clone(), keys.clone(), config.jobs.clone());
        let store = ScheduleStore::new(conn.clone(), keys.clone());
        Ok(Self {
            conn,
            redis,
            keys,
            config,
            store,
            producer,
            leadership,
            checks: None,
            metrics: Arc::default(),
            complaints: HashMap::new(),
        })
    }

    /// This replica's metrics, to register with the registry `/metrics` serves.
    pub fn metrics(&self) -> &SchedulerMetrics {
        &self.metrics
    }

    /// Starts the term's checks on becoming leader and stops them on stepping down.
    fn follow_term_with_checks(&mut self) {
        match (self.leadership.current_epoch(), &self.checks) {
            (Some(_), None) => {
                self.checks = Some(TermChecks::start(&self.conn, &self.keys, &self.config));
            }
            (None, Some(_)) => self.checks = None,
            _ => {}
        }
    }

    /// This replica's holder id in the election.
    pub fn id(&self) -> &str {
        self.leadership.holder()
    }

    /// The schedules of this replica's namespace: their definitions and state.
    pub fn store(&self) -> &ScheduleStore {
        &self.store
    }

    /// Runs until `shutdown` is triggered, then releases the lease if it holds it.
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), SchedulerError> {
        tracing::info!(scheduler = %self.id(), "scheduler starting");
        let mut conn = self.conn.clone();
        let redis = self.redis.clone();
        tokio::spawn(
            async move { flotilla_proto::connect::warn_if_unsafe(&mut conn, &redis).await },
        );
        let mut timers = Timers::default();
        loop {
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
            if let Err(e) = self.step(&mut timers).await {
                tracing::warn!("scheduler step failed (will retry): {e}");
            }
            self.follow_term_with_checks();
            // After a failed step too: a replica that lost Redis and stepped down must not
            // go on reporting itself as the leader.
            self.metrics.leading(self.leadership.current_epoch());
        }
        self.checks = None;
        self.metrics.leading(None);
        if self.leadership.current_epoch().is_some() || self.leadership.lapsed() {
            match self.leadership.release(&mut self.conn).await {
                Ok(()) => tracing::info!("released the leader lease for a standby to take over"),
                Err(e) => {
                    tracing::warn!("could not release the leader lease; it expires by itself: {e}")
                }
            }
        }
        tracing::info!(scheduler = %self.id(), "scheduler stopped");
        Ok(())
    }

    async fn step(&mut self, timers: &mut Timers) -> Result<(), SchedulerError> {
        let now = Instant::now();
        if self.leadership.lapsed() {
            tracing::warn!("lease not renewed within the safety margin: stepping down");
            self.leadership.step_down();
        }
        self.follow_term_with_checks();
        match self.leadership.current_epoch() {
            None if now >= timers.next_acquire => {
                timers.next_acquire = now + self.config.retry_interval;
                if let Some(epoch) = self.leadership.acquire(&mut self.conn).await? {
                    self.metrics.elected();
                    tracing::info!(epoch, scheduler = %self.id(), "leading");
                    timers.next_renew = now + self.config.renew_interval();
                }
            }
            Some(_) if now >= timers.next_renew => {
                timers.next_renew = now + self.config.renew_interval();
                if !self.leadership.renew(&mut self.conn).await? {
                    tracing::warn!("lease taken by another scheduler: stepping down");
                }
            }
            _ => {}
        }
        let Some(epoch) = self.leadership.current_epoch() else {
            return Ok(());
        };
        // Each duty fails on its own: a schedule that cannot fire must not stop promotion
        // or reconciliation, and the other way round.
        if let Err(e) = self.fire_due(epoch).await {
            tracing::warn!("firing schedules failed (will retry): {e}");
        }
        if now >= timers.next_promote {
            timers.next_promote = now + self.config.promote_interval;
            if let Err(e) = self.promote_all().await {
                tracing::warn!("promoting delayed jobs failed (will retry): {e}");
            }
        }
        if now >= timers.next_sample {
            timers.next_sample = now + SAMPLE_EVERY;
            if let Err(e) = sample(&mut self.conn, &self.keys, &self.metrics).await {
                tracing::warn!("sampling the queues for metrics failed (will retry): {e}");
            }
            // Partitions a worker's settings added since get their queue's group limits.
            if let Err(e) =
                flotilla_proto::flow::sync_group_limits(&mut self.conn, &self.keys).await
            {
                tracing::warn!("writing group limits to new partitions failed (will retry): {e}");
            }
        }
        Ok(())
    }

    /// Fires every due tick of every active schedule and records it.
    async fn fire_due(&mut self, epoch: u64) -> Result<(), SchedulerError> {
        let (schedules, unreadable) = self.store.list_all().await?;
        for problem in unreadable {
            if let SchedulerError::Corrupt { name, .. } = &problem {
                let name = name.clone();
                self.complain(&name, &problem.to_string());
            }
        }
        let schedules: Vec<Schedule> = schedules.into_iter().filter(|s| !s.paused).collect();
        if schedules.is_empty() {
            return Ok(());
        }
        // The Redis server's clock, so every replica agrees on which ticks are due.
        let now = flotilla_proto::server_time_ms(&mut self.conn).await?;
        let grace = self.config.misfire_grace.as_millis() as i64;
        for schedule in &schedules {
            // Leadership may lapse during a long pass: check before each schedule.
            if self.leadership.current_epoch() != Some(epoch) {
                return Ok(());
            }
            match self.fire_schedule(epoch, schedule, now, grace).await {
                Ok(()) => {
                    if self.complaints.remove(&schedule.name).is_some() {
                        tracing::info!(schedule = %schedule.name, "fires again");
                    }
                }
                Err(e) => self.complain(&schedule.name, &format!("cannot fire (will retry): {e}")),
            }
        }
        Ok(())
    }

    /// Logs a schedule's problem once, and again only when it changes.
    fn complain(&mut self, schedule: &str, problem: &str) {
        if self.complaints.get(schedule).map(String::as_str) == Some(problem) {
            tracing::debug!(schedule, "{problem}");
            return;
        }
        tracing::warn!(schedule, "{problem}");
        self.complaints
            .insert(schedule.to_owned(), problem.to_owned());
    }

    /// Fires one schedule's due ticks and records the last one handled.
    async fn fire_schedule(
        &mut self,
        epoch: u64,
        schedule: &Schedule,
        now: i64,
        grace: i64,
    ) -> Result<(), SchedulerError> {
        let timing = schedule.timing()?;
        let state = self.store.state(&schedule.name).await?;
        let Some(last_tick) = state.last_tick else {
            // A schedule with no state yet starts from when it was saved, else from now.
            let start = state.since.unwrap_or(now).min(now);
            return self
                .record(
                    epoch,
                    &schedule.name,
                    start,
                    None,
                    timing.next_after(start),
                    now,
                )
                .await;
        };
        let plan = plan_fires(schedule, &timing, last_tick, now, grace);
        if !plan.skipped.is_empty() {
            tracing::warn!(schedule = %schedule.name, skipped = plan.skipped.len(), policy = ?schedule.catch_up,
                "ticks missed while no scheduler led were skipped");
        }
        let mut last_job = None;
        for tick in &plan.fire {
            if self.leadership.current_epoch() != Some(epoch) {
                return Ok(());
            }
            let (job, created) = self.fire(schedule, *tick).await?;
            if created {
                self.metrics.tick(&schedule.name, Tick::Fired, 1);
                if now - tick > grace {
                    self.metrics.tick(&schedule.name, Tick::Late, 1);
                }
            }
            last_job = Some(job);
        }
        if let Some(tick) = plan.advance_to {
            self.record(
                epoch,
                &schedule.name,
                tick,
                last_job.as_deref(),
                timing.next_after(tick),
                now,
            )
            .await?;
            // Counted once the pass that skipped them is recorded under this epoch: a
            // pass that fails is planned again, and would count them again.
            if !plan.skipped.is_empty() && self.leadership.current_epoch() == Some(epoch) {
                self.metrics
                    .tick(&schedule.name, Tick::Missed, plan.skipped.len() as u64);
            }
        }
        Ok(())
    }

    async fn record(
        &mut self,
        epoch: u64,
        name: &str,
        tick: i64,
        job: Option<&str>,
        next: Option<i64>,
        now: i64,
    ) -> Result<(), SchedulerError> {
        if !self
            .store
            .advance(epoch, name, tick, job, next, now)
            .await?
        {
            tracing::warn!(
                epoch,
                "a newer leader holds the fencing epoch: stepping down"
            );
            self.leadership.step_down();
        }
        Ok(())
    }

    /// Enqueues one tick. Its id and guard key are derived from (schedule, tick), so a
    /// second scheduler firing the same tick creates nothing.
    /// Returns the job id and whether this call created the job.
    async fn fire(&self, schedule: &Schedule, tick: i64) -> Result<(String, bool), SchedulerError> {
        let id = scheduled_job_id(&schedule.name, tick);
        let guard = format!("schedule:{}:{tick}", schedule.name);
        let job = job_for(schedule, &id)
            .map_err(|e| SchedulerError::InvalidSchedule {
                name: schedule.name.clone(),
                problem: e.to_string(),
            })?
            .unique_until_expiry(&guard, self.config.fire_guard_ttl);
        let enqueued = self.producer.enqueue(job).await?;
        let created = match enqueued.outcome {
            Outcome::Created | Outcome::Waiting => {
                tracing::info!(schedule = %schedule.name, tick, job = %id, "fired");
                true
            }
            Outcome::Duplicate | Outcome::Exists | Outcome::Debounced => {
                tracing::info!(schedule = %schedule.name, tick, "tick was already fired");
                false
            }
        };
        Ok((id, created))
    }

    /// Moves due delayed jobs of every known queue onto their streams.
    async fn promote_all(&mut self) -> Result<(), SchedulerError> {
        let queues = flotilla_proto::known_queues(&mut self.conn, &self.keys).await?;
        let calls: Vec<Promote> = queues
            .iter()
            .map(|queue| Promote {
                queue,
                limit: PROMOTE_BATCH,
                recheck: self.config.promote_interval,
            })
            .collect();
        let moved: HashMap<&String, u64> = queues
            .iter()
            .zip(scripts::run_all(&mut self.conn, &self.keys, &calls).await?)
            .filter_map(|(q, r)| r.ok().map(|reply| (q, reply.moved)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if !moved.is_empty() {
            tracing::debug!(?moved, "promoted due jobs");
        }
        Ok(())
    }
}

/// When the next election, renewal and promotion are due.
struct Timers {
    next_acquire: Instant,
    next_renew: Instant,
    next_promote: Instant,
    next_sample: Instant,
}

impl Default for Timers {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            next_acquire: now,
            next_renew: now,
            next_promote: now,
            next_sample: now,
        }
    }
}
