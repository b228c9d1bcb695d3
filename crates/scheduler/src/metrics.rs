//! The scheduler's Prometheus metrics: ticks, elections and leadership of this replica,
//! and the fleet's queues, workers and active alerts, which only the leader samples, so
//! that one replica reads them and every series has one source.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use flotilla_proto::QueueState;

use crate::alerts::ALERT_KINDS;

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;
type SecondsGauge = Gauge<f64, AtomicU64>;

/// How a schedule's tick went, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Enqueued its job (a tick another replica had already fired is not counted).
    Fired,
    /// Fired more than the misfire grace after its time (catching up).
    Late,
    /// Skipped: due while no scheduler led, and the catch-up policy passed it over.
    Missed,
}

impl Tick {
    fn label(self) -> &'static str {
        match self {
            Tick::Fired => "fired",
            Tick::Late => "late",
            Tick::Missed => "missed",
        }
    }
}

/// One queue's state, as the leader's sampler read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct QueueSample {
    /// Its counts, summed over its partitions.
    pub state: QueueState,
    /// Whether it is paused.
    pub paused: bool,
}

/// Every metric of one scheduler replica.
#[derive(Debug, Default)]
pub struct SchedulerMetrics {
    ticks: Family<Labels, Counter>,
    elections: Counter,
    leader: Gauge,
    epoch: Gauge,
    pending: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge>,
    running: Family<Labels, Gauge>,
    scheduled: Family<Labels, Gauge>,
    waiting: Family<Labels, Gauge>,
    dead: Family<Labels, Gauge>,
    oldest_pending_age: Family<Labels, SecondsGauge>,
    paused: Family<Labels, Gauge>,
    /// The queues the last sample reported, so a queue that is gone loses its series.
    sampled_queues: Mutex<BTreeSet<String>>,
    workers_alive: Gauge,
    alerts_active: Family<Labels, Gauge>,
}

impl SchedulerMetrics {
    /// Adds this replica's metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "schedule_ticks",
            "Schedule ticks by schedule and outcome (fired, late, missed)",
            self.ticks.clone(),
        );
        registry.register(
            "leader_elections",
            "Times this replica became the leader",
            self.elections.clone(),
        );
        registry.register(
            "scheduler_leader",
            "1 while this replica leads, else 0",
            self.leader.clone(),
        );
        registry.register(
            "scheduler_fencing_epoch",
            "The fencing epoch this replica leads with, 0 while it does not lead",
            self.epoch.clone(),
        );
        let queue_gauges = [
            (
                "queue_pending",
                "Jobs on the stream that no worker has read yet, sampled by the leader",
                &self.pending,
            ),
            (
                "queue_lag",
                "The consumer group's lag as XINFO GROUPS reports it, sampled by the leader",
                &self.lag,
            ),
            (
                "queue_running",
                "Jobs read by a worker and not finished, sampled by the leader",
                &self.running,
            ),
            (
                "queue_scheduled",
                "Jobs waiting for their time (delayed, retrying), sampled by the leader",
                &self.scheduled,
            ),
            (
                "queue_waiting",
                "Jobs waiting for their parents to end, sampled by the leader",
                &self.waiting,
            ),
            (
                "queue_dead",
                "Entries in the dead-letter stream, sampled by the leader",
                &self.dead,
            ),
            (
                "queue_paused",
                "1 while the queue is paused, sampled by the leader",
                &self.paused,
            ),
        ];
        for (name, help, family) in queue_gauges {
            registry.register(name, help, family.clone());
        }
        registry.register_with_unit(
            "queue_oldest_pending_age",
            "How long the oldest unread job has waited, sampled by the leader",
            Unit::Seconds,
            self.oldest_pending_age.clone(),
        );
        registry.register(
            "workers_alive",
            "Workers whose heartbeat is fresh, sampled by the leader",
            self.workers_alive.clone(),
        );
        registry.register(
            "alerts_active",
            "Active alerts by kind, sampled by the leader",
            self.alerts_active.clone(),
        );
    }

    pub(crate) fn tick(&self, schedule: &str, tick: Tick, count: u64) {
        let labels = vec![
            ("schedule", schedule.to_owned()),
            ("outcome", tick.label().to_owned()),
        ];
        self.ticks.get_or_create(&labels).inc_by(count);
    }

    pub(crate) fn elected(&self) {
        self.elections.inc();
    }

    /// Whether and with which epoch this replica leads. A replica that stops leading
    /// drops the fleet's series: the new leader reports them.
    pub(crate) fn leading(&self, epoch: Option<u64>) {
        self.leader.set(i64::from(epoch.is_some()));
        self.epoch
            .set(epoch.map_or(0, |e| i64::try_from(e).unwrap_or(i64::MAX)));
        if epoch.is_none() {
            for family in self.queue_counts() {
                family.clear();
            }
            self.oldest_pending_age.clear();
            self.sampled_queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            self.alerts_active.clear();
            self.workers_alive.set(0);
        }
    }

    /// The per-queue gauges that hold counts.
    fn queue_counts(&self) -> [&Family<Labels, Gauge>; 7] {
        [
            &self.pending,
            &self.lag,
            &self.running,
            &self.scheduled,
            &self.waiting,
            &self.dead,
            &self.paused,
        ]
    }

    /// Sets every queue's gauges from one sampling pass; a queue the pass no longer saw
    /// (removed from the queue set) loses its series instead of repeating its last value.
    pub(crate) fn queues(&self, samples: &[(String, QueueSample)]) {
        let mut sampled = self
            .sampled_queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: BTreeSet<String> = samples.iter().map(|(q, _)| q.clone()).collect();
        for gone in sampled.difference(&now) {
            let labels = vec![("queue", gone.clone())];
            for family in self.queue_counts() {
                family.remove(&labels);
            }
            self.oldest_pending_age.remove(&labels);
        }
        *sampled = now;
        for (queue, sample) in samples {
            let labels = vec![("queue", queue.clone())];
            let state = &sample.state;
            let values = [
                state.pending,
                state.lag,
                state.running,
                state.scheduled,
                state.waiting,
                state.dead,
                i64::from(sample.paused),
            ];
            for (family, value) in self.queue_counts().into_iter().zip(values) {
                family.get_or_create(&labels).set(value);
            }
            self.oldest_pending_age
                .get_or_create(&labels)
                .set(state.oldest_pending_age);
        }
    }

    pub(crate) fn workers_alive(&self, alive: i64) {
        self.workers_alive.set(alive);
    }

    /// The active alerts, by kind; every kind the alerter raises reads 0 while inactive,
    /// so dashboards and rules see a steady series.
    pub(crate) fn alerts(&self, active: &[String]) {
        for kind in ALERT_KINDS {
            let count = active.iter().filter(|a| *a == kind).count();
            self.alerts_active
                .get_or_create(&vec![("alert", kind.to_owned())])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}
