//! Reconciliation: compare what should have happened with what did. For each schedule,
//! every tick in a look-back window must have been fired, started and finished within
//! deadlines. Across queues, no job may be stranded: `running` with no pending entry,
//! `pending` with no entry, `scheduled` or waiting to retry outside the delayed set, or
//! owned by a consumer whose worker is gone. With repair,
//! stranded jobs go back on their streams and dead consumers are forgotten.

mod consumers;
mod dependencies;
mod scan;
mod streams;
mod sweep;
mod ticks;
mod waiting;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use serde::{Deserialize, Serialize};

use crate::{ScheduleStore, SchedulerError};
use flotilla_proto::server_time_ms;

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
    /// A consumer whose worker is not alive is dealt with once idle this long: the
    /// entries it owns are put back on their stream (and reported), and one that owns
    /// nothing is forgotten. Whether a worker is alive is not a setting: its heartbeat
    /// within its own lease (`flotilla_proto::is_live`), the rule every process uses; the
    /// idle time keeps a worker that woke from a freeze, and reads before it beats again,
    /// from losing the jobs it has just taken.
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
    /// A job `scheduled` (or `failed`, waiting to retry) missing from its queue's
    /// delayed set, which no promotion would ever move.
    OrphanScheduled,
    /// A job waiting without a record (its id key holds it) missing from its queue's
    /// `later` set, which no promotion would ever move.
    OrphanWaiting,
    /// A consumer owning entries whose worker stopped beating.
    WorkerNotResponding,
    /// A consumer with nothing pending whose worker is gone.
    StaleConsumer,
    /// A queue's stream whose last id is far ahead of the clock, so producers are refused.
    StreamIdAhead,
    /// A job waiting for its parents that one of them ended without telling (or that
    /// waits for a parent known no more).
    WaitingUntold,
    /// A batch whose callback was due and neither fired nor was cancelled, or one of
    /// whose dead jobs is known no more.
    BatchUndecided,
}

impl FindingKind {
    /// The kind's name in logs and reports, such as `tick_missed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::TickMissed => "tick_missed",
            FindingKind::TickLate => "tick_late",
            FindingKind::TickDead => "tick_dead",
            FindingKind::OrphanRunning => "orphan_running",
            FindingKind::OrphanPending => "orphan_pending",
            FindingKind::OrphanScheduled => "orphan_scheduled",
            FindingKind::OrphanWaiting => "orphan_waiting",
            FindingKind::WorkerNotResponding => "worker_not_responding",
            FindingKind::StaleConsumer => "stale_consumer",
            FindingKind::StreamIdAhead => "stream_id_ahead",
            FindingKind::WaitingUntold => "waiting_untold",
            FindingKind::BatchUndecided => "batch_undecided",
        }
    }
}

/// One discrepancy.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind of discrepancy it is.
    pub kind: FindingKind,
    /// The schedule, job or worker it concerns.
    pub subject: String,
    /// What was found, in words.
    pub detail: String,
    /// Still a problem now (as opposed to something that went wrong and is over).
    pub open: bool,
    /// Whether the pass repaired it.
    pub repaired: bool,
}

/// The result of a pass.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Every discrepancy the pass found.
    pub findings: Vec<Finding>,
    /// Job records the sweep examined.
    pub jobs_examined: usize,
    /// True when every job record was examined (on demand); periodic passes sweep a part.
    pub complete_sweep: bool,
}

impl Report {
    /// How many findings there are of each kind.
    pub fn counts(&self) -> BTreeMap<FindingKind, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts
    }

    /// Findings still open: not repaired, and still a problem now.
    pub fn open(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.open && !f.repaired)
            .count()
    }

    /// One line per finding: WARN for open problems, INFO for those that are over.
    pub fn log(&self) {
        for f in &self.findings {
            if f.open {
                tracing::warn!(kind = f.kind.as_str(), subject = %f.subject, repaired = f.repaired, "{}", f.detail);
            } else {
                tracing::info!(kind = f.kind.as_str(), subject = %f.subject, repaired = f.repaired, "{}", f.detail);
            }
        }
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
    conn: SharedConnection,
    keys: Keys,
    config: ReconcileConfig,
    store: ScheduleStore,
    cursors: HashMap<String, u64>,
}

impl Reconciler {
    /// A reconciler for the namespace of `keys`, with these thresholds; its first
    /// periodic sweep starts at the beginning.
    pub fn new(conn: SharedConnection, keys: Keys, config: ReconcileConfig) -> Self {
        let store = ScheduleStore::new(conn.clone(), keys.clone());
        Self {
            conn,
            keys,
            config,
            store,
            cursors: HashMap::new(),
        }
    }

    /// The thresholds and windows it checks with.
    pub fn config(&self) -> &ReconcileConfig {
        &self.config
    }

    /// The server's clock, ms since the epoch.
    pub async fn now(&mut self) -> Result<i64, SchedulerError> {
        Ok(server_time_ms(&mut self.conn).await?)
    }

    /// One pass. `full` examines every job record instead of the periodic budget. The
    /// caller says what it found: the leader logs it ([`Report::log`]), the command
    /// line prints it.
    pub async fn run(&mut self, repair: bool, full: bool) -> Result<Report, SchedulerError> {
        let now = server_time_ms(&mut self.conn).await?;
        let mut report = Report::default();
        self.check_schedules(now, &mut report).await?;
        let queues = flotilla_proto::known_queues(&mut self.conn, &self.keys).await?;
        self.check_consumers(&queues, repair, &mut report).await?;
        report.complete_sweep = true;
        for queue in &queues {
            self.check_stream_id(queue, now, repair, &mut report)
                .await?;
            self.sweep(queue, repair, full, &mut report).await?;
            self.sweep_waiting(queue, repair, full, &mut report).await?;
            self.check_dependencies(queue, now, repair, full, &mut report)
                .await?;
        }
        Ok(report)
    }
}
