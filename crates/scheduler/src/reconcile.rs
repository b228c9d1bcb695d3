//! Reconciliation: compare what should have happened with what did. For each schedule,
//! every tick in a look-back window must have been fired, started and finished within
//! deadlines. Across queues, no job may be stranded: `running` with no pending entry,
//! `pending` with no entry, or owned by a consumer whose worker is gone. With repair,
//! stranded jobs go back on their streams and dead consumers are forgotten.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use flotilla_proto::scripts::{self, ForgetConsumer, Requeue, RequeueMode, RequeueReply};
use flotilla_proto::{CONSUMER_GROUP, Keys, field};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::firing::scheduled_job_id;
use crate::scheduler::server_time_ms;
use crate::{ScheduleStore, SchedulerError};

/// Thresholds and windows of a reconciliation pass: the `[reconcile]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// How often the leader reconciles (and evaluates alerts).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Whether the leader repairs what it finds.
    pub repair: bool,
    /// How far back schedule ticks are checked.
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    /// A fired tick must have started within this long.
    #[serde(with = "humantime_serde")]
    pub start_deadline: Duration,
    /// … and finished within this long.
    #[serde(with = "humantime_serde")]
    pub finish_deadline: Duration,
    /// A missing tick younger than this is an open problem (it raises an alert).
    #[serde(with = "humantime_serde")]
    pub missed_window: Duration,
    /// A worker whose registry heartbeat is older than this is gone.
    #[serde(with = "humantime_serde")]
    pub worker_timeout: Duration,
    /// Job records examined per queue per periodic pass; the sweep resumes where it
    /// stopped, so every record is visited over several passes.
    #[serde(skip)]
    pub sweep_budget: usize,
    /// Most recent ticks checked per schedule per pass.
    #[serde(skip)]
    pub max_ticks: usize,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            repair: true,
            lookback: Duration::from_secs(3600),
            start_deadline: Duration::from_secs(60),
            finish_deadline: Duration::from_secs(30 * 60),
            missed_window: Duration::from_secs(15 * 60),
            worker_timeout: Duration::from_secs(30),
            sweep_budget: 10_000,
            max_ticks: 1000,
        }
    }
}

/// What kind of discrepancy a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A tick that was never enqueued.
    TickMissed,
    /// A tick whose job started or finished after its deadline, or has not yet.
    TickLate,
    /// A tick whose job ended dead.
    TickDead,
    /// A job `running` whose entry is no longer pending.
    OrphanRunning,
    /// A job `pending` whose entry is gone from its stream.
    OrphanPending,
    /// A consumer owning entries whose worker stopped beating.
    WorkerNotResponding,
    /// A consumer with nothing pending whose worker is gone.
    StaleConsumer,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::TickMissed => "tick_missed",
            FindingKind::TickLate => "tick_late",
            FindingKind::TickDead => "tick_dead",
            FindingKind::OrphanRunning => "orphan_running",
            FindingKind::OrphanPending => "orphan_pending",
            FindingKind::WorkerNotResponding => "worker_not_responding",
            FindingKind::StaleConsumer => "stale_consumer",
        }
    }
}

/// One discrepancy.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The schedule, job or worker it concerns.
    pub subject: String,
    pub detail: String,
    /// Still a problem now (as opposed to something that went wrong and is over).
    pub open: bool,
    pub repaired: bool,
}

/// The result of a pass.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub jobs_examined: usize,
    /// True when every job record was examined (on demand); periodic passes sweep a part.
    pub complete_sweep: bool,
}

impl Report {
    pub fn counts(&self) -> BTreeMap<FindingKind, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts
    }

    fn add(
        &mut self,
        kind: FindingKind,
        subject: impl Into<String>,
        detail: String,
        open: bool,
        repaired: bool,
    ) {
        self.findings.push(Finding {
            kind,
            subject: subject.into(),
            detail,
            open,
            repaired,
        });
    }
}

/// Runs reconciliation passes; keeps the sweep's position between periodic passes.
#[derive(Debug)]
pub struct Reconciler {
    conn: ConnectionManager,
    keys: Keys,
    config: ReconcileConfig,
    store: ScheduleStore,
    cursors: HashMap<String, u64>,
}

/// Job records fetched per SCAN step.
const SCAN_COUNT: usize = 500;

impl Reconciler {
    pub fn new(conn: ConnectionManager, keys: Keys, config: ReconcileConfig) -> Self {
        let store = ScheduleStore::new(conn.clone(), keys.clone());
        Self {
            conn,
            keys,
            config,
            store,
            cursors: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ReconcileConfig {
        &self.config
    }

    /// The server's clock, ms since the epoch.
    pub async fn now(&mut self) -> Result<i64, SchedulerError> {
        server_time_ms(&mut self.conn).await
    }

    /// One pass. `full` examines every job record instead of the periodic budget.
    pub async fn run(&mut self, repair: bool, full: bool) -> Result<Report, SchedulerError> {
        let now = server_time_ms(&mut self.conn).await?;
        let mut report = Report::default();
        self.check_schedules(now, &mut report).await?;
        let queues: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.queues())
            .query_async(&mut self.conn)
            .await?;
        self.check_consumers(now, &queues, repair, &mut report)
            .await?;
        report.complete_sweep = true;
        for queue in &queues {
            self.sweep(queue, repair, full, &mut report).await?;
        }
        for f in &report.findings {
            if f.open {
                tracing::warn!(kind = f.kind.as_str(), subject = %f.subject, repaired = f.repaired, "{}", f.detail);
            } else {
                tracing::info!(kind = f.kind.as_str(), subject = %f.subject, repaired = f.repaired, "{}", f.detail);
            }
        }
        Ok(report)
    }

    async fn check_schedules(
        &mut self,
        now: i64,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let ms = |d: Duration| d.as_millis() as i64;
        for schedule in self.store.list().await? {
            if schedule.paused {
                continue;
            }
            let Ok(timing) = schedule.timing() else {
                continue;
            };
            let state = self.store.state(&schedule.name).await?;
            let Some(since) = state.since else { continue };
            let from = since.max(now - ms(self.config.lookback));
            // Only ticks the leader has handled: later ones may simply not be due yet.
            let until = state.last_tick.unwrap_or(since).min(now - 1000);
            let ticks = timing.ticks_between(from, until, self.config.max_ticks);
            if ticks.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for tick in &ticks {
                pipe.cmd("HMGET")
                    .arg(
                        self.keys
                            .job(&schedule.queue, &scheduled_job_id(&schedule.name, *tick)),
                    )
                    .arg(&[field::STATUS, field::STARTED_AT, field::FINISHED_AT][..]);
            }
            let records: Vec<(Option<String>, Option<i64>, Option<i64>)> =
                pipe.query_async(&mut self.conn).await?;
            for (tick, (status, started, finished)) in ticks.iter().zip(records) {
                let at = tick_text(*tick);
                let age = now - tick;
                let name = &schedule.name;
                match status.as_deref() {
                    None => report.add(
                        FindingKind::TickMissed,
                        name,
                        format!("tick {at} was never enqueued"),
                        age <= ms(self.config.missed_window),
                        false,
                    ),
                    Some("dead") => report.add(FindingKind::TickDead, name, format!("tick {at} ended dead"), false, false),
                    Some("completed") => {
                        let started_late = started.is_some_and(|s| s - tick > ms(self.config.start_deadline));
                        let finished_late = finished.is_some_and(|f| f - tick > ms(self.config.finish_deadline));
                        if started_late || finished_late {
                            let what = if finished_late { "finished" } else { "started" };
                            report.add(FindingKind::TickLate, name, format!("tick {at} {what} after its deadline"), false, false);
                        }
                    }
                    Some("cancelled") => {}
                    Some("running") if age > ms(self.config.finish_deadline) => report.add(
                        FindingKind::TickLate,
                        name,
                        format!("tick {at} still running {}s after its tick", age / 1000),
                        true,
                        false,
                    ),
                    Some("running") => {}
                    Some(_) if started.is_none() && age > ms(self.config.start_deadline) => report.add(
                        FindingKind::TickLate,
                        name,
                        format!("tick {at} not started {}s after its tick (is a worker serving {}?)", age / 1000, schedule.queue),
                        true,
                        false,
                    ),
                    Some(_) if age > ms(self.config.finish_deadline) => report.add(
                        FindingKind::TickLate,
                        name,
                        format!("tick {at} not finished {}s after its tick", age / 1000),
                        true,
                        false,
                    ),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    async fn check_consumers(
        &mut self,
        now: i64,
        queues: &[String],
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let cutoff = now - self.config.worker_timeout.as_millis() as i64;
        let live: HashSet<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.workers())
            .arg(cutoff)
            .arg("+inf")
            .query_async(&mut self.conn)
            .await?;
        for queue in queues {
            let stream = self.keys.stream(queue);
            let consumers: redis::RedisResult<redis::streams::StreamInfoConsumersReply> =
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(&stream)
                    .arg(CONSUMER_GROUP)
                    .query_async(&mut self.conn)
                    .await;
            let Ok(consumers) = consumers else { continue }; // no stream or group yet
            for consumer in consumers.consumers {
                if live.contains(&consumer.name)
                    || self.beating_within_own_lease(&consumer.name, now).await?
                {
                    continue;
                }
                let idle_long =
                    consumer.idle as i64 > self.config.worker_timeout.as_millis() as i64;
                if consumer.pending > 0 {
                    let mut repaired = false;
                    if repair {
                        self.requeue_entries_of(queue, &consumer.name).await?;
                        repaired = self.forget(queue, &consumer.name).await?;
                    }
                    // Open even when repaired: a worker died holding jobs, which operators
                    // should hear about; the alert resolves once the consumer is gone.
                    report.add(
                        FindingKind::WorkerNotResponding,
                        &consumer.name,
                        format!(
                            "owns {} entries of queue {queue} but its heartbeat is stale",
                            consumer.pending
                        ),
                        true,
                        repaired,
                    );
                } else if idle_long {
                    let repaired = repair && self.forget(queue, &consumer.name).await?;
                    report.add(
                        FindingKind::StaleConsumer,
                        &consumer.name,
                        format!(
                            "consumer of queue {queue} with nothing pending and no live worker"
                        ),
                        false,
                        repaired,
                    );
                }
            }
        }
        Ok(())
    }

    /// True when a worker configured with a lease longer than `worker_timeout` has beaten
    /// within that lease: slow to beat, but not gone.
    async fn beating_within_own_lease(
        &mut self,
        worker: &str,
        now: i64,
    ) -> Result<bool, SchedulerError> {
        let (score, lease): (Option<f64>, Option<i64>) = redis::pipe()
            .cmd("ZSCORE")
            .arg(self.keys.workers())
            .arg(worker)
            .cmd("HGET")
            .arg(self.keys.worker(worker))
            .arg(flotilla_proto::worker_field::LEASE_MS)
            .query_async(&mut self.conn)
            .await?;
        Ok(match (score, lease) {
            (Some(beat), Some(lease)) => beat as i64 >= now - lease,
            _ => false,
        })
    }

    /// Puts every entry a gone consumer owns back on the stream for live workers.
    async fn requeue_entries_of(
        &mut self,
        queue: &str,
        consumer: &str,
    ) -> Result<(), SchedulerError> {
        let stream = self.keys.stream(queue);
        loop {
            let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
                .arg(&stream)
                .arg(CONSUMER_GROUP)
                .arg("-")
                .arg("+")
                .arg(500)
                .arg(consumer)
                .query_async(&mut self.conn)
                .await?;
            if pending.is_empty() {
                return Ok(());
            }
            let mut job_ids = Vec::with_capacity(pending.len());
            for (entry, ..) in &pending {
                job_ids.push(self.job_id_of_entry(&stream, entry).await?);
            }
            let reason = format!("requeued: worker {consumer} stopped responding");
            let calls: Vec<Requeue> = pending
                .iter()
                .zip(&job_ids)
                .map(|((entry, ..), job_id)| Requeue {
                    queue,
                    job_id,
                    reason: &reason,
                    mode: RequeueMode::DeadConsumer {
                        consumer,
                        entry_id: entry,
                    },
                })
                .collect();
            let mut lost = Vec::new();
            for ((entry, ..), reply) in pending
                .iter()
                .zip(scripts::run_all(&mut self.conn, &self.keys, &calls).await?)
            {
                if reply? == RequeueReply::Lost {
                    lost.push(entry.clone());
                }
            }
            if !lost.is_empty() {
                tracing::error!(queue = %queue, lost = ?lost, "jobs lost: entries were deleted from the stream while pending");
                let _: String = flotilla_proto::record_lost(&self.keys, queue, &lost)
                    .query_async(&mut self.conn)
                    .await?;
            }
        }
    }

    /// The job an entry stands for: its `id` field, else the entry id itself.
    async fn job_id_of_entry(
        &mut self,
        stream: &str,
        entry: &str,
    ) -> Result<String, SchedulerError> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(entry)
            .arg(entry)
            .query_async(&mut self.conn)
            .await?;
        Ok(reply
            .ids
            .first()
            .and_then(|e| e.get::<String>(field::ID))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| entry.to_owned()))
    }

    async fn forget(&mut self, queue: &str, consumer: &str) -> Result<bool, SchedulerError> {
        let forget = ForgetConsumer { queue, consumer };
        Ok(scripts::run(&mut self.conn, &self.keys, &forget).await?)
    }

    /// Examines job records for stranded `running` and `pending` jobs.
    async fn sweep(
        &mut self,
        queue: &str,
        repair: bool,
        full: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let pattern = format!("{}*", self.keys.job_prefix(queue));
        let mut cursor = if full {
            0
        } else {
            self.cursors.get(queue).copied().unwrap_or(0)
        };
        let mut examined = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn)
                .await?;
            examined += keys.len();
            for (key, mode) in self.stranded(queue, &keys).await? {
                let id = key
                    .rsplit_once(":job:")
                    .map_or(key.as_str(), |(_, id)| id)
                    .to_owned();
                let (kind, detail) = match mode {
                    RequeueMode::OrphanRunning => (
                        FindingKind::OrphanRunning,
                        "running, but its entry is no longer pending",
                    ),
                    _ => (
                        FindingKind::OrphanPending,
                        "pending, but its entry is gone from the stream",
                    ),
                };
                let mut repaired = false;
                if repair {
                    let reason = format!("requeued by reconciliation: {detail}");
                    let requeue = Requeue {
                        queue,
                        job_id: &id,
                        reason: &reason,
                        mode,
                    };
                    let outcome = scripts::run(&mut self.conn, &self.keys, &requeue).await?;
                    if outcome == RequeueReply::Unchanged {
                        continue; // it moved on between the check and the repair
                    }
                    repaired = true;
                }
                report.add(
                    kind,
                    id,
                    format!("job in queue {queue} is {detail}"),
                    !repaired,
                    repaired,
                );
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
            if !full && examined >= self.config.sweep_budget {
                report.complete_sweep = false;
                break;
            }
        }
        self.cursors.insert(queue.to_owned(), cursor);
        report.jobs_examined += examined;
        Ok(())
    }

    /// The records among `keys` that look stranded, checked twice so a job that simply
    /// moved on between two reads is not reported.
    async fn stranded(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<(String, RequeueMode<'static>)>, SchedulerError> {
        let mut candidates = self.stranded_once(queue, keys).await?;
        if !candidates.is_empty() {
            let again: Vec<String> = candidates.iter().map(|(k, _)| k.clone()).collect();
            let confirmed: HashSet<String> = self
                .stranded_once(queue, &again)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            candidates.retain(|(k, _)| confirmed.contains(k));
        }
        Ok(candidates)
    }

    async fn stranded_once(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<(String, RequeueMode<'static>)>, SchedulerError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(key)
                .arg(&[field::STATUS, field::ENTRY][..]);
        }
        let fields: Vec<(Option<String>, Option<String>)> =
            pipe.query_async(&mut self.conn).await?;
        let stream = self.keys.stream(queue);
        let mut checks = Vec::new();
        let mut pipe = redis::pipe();
        for (key, (status, entry)) in keys.iter().zip(fields) {
            let entry = entry.unwrap_or_default();
            match status.as_deref() {
                Some("running") if !entry.is_empty() => {
                    pipe.cmd("XPENDING")
                        .arg(&stream)
                        .arg(CONSUMER_GROUP)
                        .arg(&entry)
                        .arg(&entry)
                        .arg(1);
                    checks.push((key.clone(), RequeueMode::OrphanRunning));
                }
                Some("pending") if !entry.is_empty() => {
                    pipe.cmd("XRANGE").arg(&stream).arg(&entry).arg(&entry);
                    checks.push((key.clone(), RequeueMode::OrphanPending));
                }
                _ => {}
            }
        }
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn).await?;
        Ok(checks
            .into_iter()
            .zip(replies)
            .filter(|(_, reply)| matches!(reply, redis::Value::Array(items) if items.is_empty()))
            .map(|(check, _)| check)
            .collect())
    }
}

fn tick_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
