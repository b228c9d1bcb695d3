//! The worker's Prometheus metrics: attempts by outcome, run and wait times, and the jobs
//! in flight. Recorded whether or not anything scrapes them; the process that serves
//! `/metrics` registers them with [`WorkerMetrics::register`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Label pairs of one series. Built once per queue and type, never per job.
type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The `type` label of a job whose type this worker has no handler for, or could not
/// read: types come from producers, and a label per unknown type would let any producer
/// grow the series without bound.
pub(crate) const UNKNOWN_TYPE: &str = "unknown";

/// What happened to an attempt, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The attempt began (a handler is about to run).
    Started,
    /// An entry delivered before, to a worker that stopped, began again here.
    Reclaimed,
    /// A later attempt began after an earlier one failed and its backoff passed.
    Retried,
    Completed,
    /// Failed; another attempt follows after the backoff.
    Failed,
    /// Snoozed: the handler said "not yet"; the job runs again after its delay, the
    /// attempt not counted.
    Snoozed,
    /// Dead-lettered: attempts spent, the error was final, or a poison pill.
    Dead,
    /// Held back before starting: its queue's rate had no start left, or its cap no
    /// slot; it starts once one is due.
    Throttled,
    /// Not started before its `expires_at`: ended as `expired`, unrun.
    Expired,
    /// Not finished at shutdown, and handed back for another worker.
    HandedBack,
    /// Cancelled while running.
    Cancelled,
    /// Another worker had taken the job meanwhile (the lease was lost): result dropped.
    Stale,
    /// The job's record was gone (Redis lost its data): result dropped.
    Lost,
    /// An entry that could not be decoded, dead-lettered with the reason.
    Malformed,
}

impl Outcome {
    const ALL: [Outcome; 14] = [
        Outcome::Started,
        Outcome::Reclaimed,
        Outcome::Retried,
        Outcome::Completed,
        Outcome::Failed,
        Outcome::Snoozed,
        Outcome::Dead,
        Outcome::Throttled,
        Outcome::Expired,
        Outcome::HandedBack,
        Outcome::Cancelled,
        Outcome::Stale,
        Outcome::Lost,
        Outcome::Malformed,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Reclaimed => "reclaimed",
            Outcome::Retried => "retried",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Snoozed => "snoozed",
            Outcome::Dead => "dead",
            Outcome::Throttled => "throttled",
            Outcome::Expired => "expired",
            Outcome::HandedBack => "handed_back",
            Outcome::Cancelled => "cancelled",
            Outcome::Stale => "stale",
            Outcome::Lost => "lost",
            Outcome::Malformed => "malformed",
        }
    }
}

/// The series of one queue and job type, resolved once and then shared by every attempt
/// of that pair, so recording is an atomic add, not a map lookup.
#[derive(Debug)]
pub(crate) struct JobSeries {
    outcomes: [Counter; Outcome::ALL.len()],
    run: Histogram,
    wait: Histogram,
}

impl JobSeries {
    pub(crate) fn count(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].inc();
    }

    /// How long the handler ran.
    pub(crate) fn ran(&self, run_time: Duration) {
        self.run.observe(run_time.as_secs_f64());
    }

    /// How long the job waited between entering its stream and starting.
    pub(crate) fn waited(&self, wait: Duration) {
        self.wait.observe(wait.as_secs_f64());
    }
}

/// Every metric of one worker process.
#[derive(Debug)]
pub struct WorkerMetrics {
    jobs: Family<Labels, Counter>,
    run: HistogramFamily,
    wait: HistogramFamily,
    in_flight: Gauge,
    /// How long entries were held back by their queue's flow limit, by queue.
    limit_wait: Family<Labels, Histogram, fn() -> Histogram>,
    /// Times an admission found a queue's flow limit reached, by queue.
    limit_reached: Family<Labels, Counter>,
    /// Queue → type → series.
    series: RwLock<HashMap<String, HashMap<String, Arc<JobSeries>>>>,
}

/// From 1 ms to about 9 h, doubling: handlers run from microseconds to hours, and a job
/// may wait as long in a backlog.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self {
            jobs: Family::default(),
            run: Family::new_with_constructor(seconds_histogram),
            wait: Family::new_with_constructor(seconds_histogram),
            in_flight: Gauge::default(),
            limit_wait: Family::new_with_constructor(seconds_histogram),
            limit_reached: Family::default(),
            series: RwLock::default(),
        }
    }
}

impl WorkerMetrics {
    /// Adds this worker's metrics to `registry`, under the `flotilla_` prefix the caller
    /// gives it.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "jobs",
            "Job attempts by queue, type and outcome",
            self.jobs.clone(),
        );
        registry.register_with_unit(
            "job_run",
            "How long handlers ran, by queue and type",
            Unit::Seconds,
            self.run.clone(),
        );
        registry.register_with_unit(
            "job_wait",
            "How long jobs waited between entering their stream and starting, by queue and type",
            Unit::Seconds,
            self.wait.clone(),
        );
        registry.register_with_unit(
            "limit_wait",
            "How long jobs were held back by their queue's rate limit or concurrency cap before starting, by queue",
            Unit::Seconds,
            self.limit_wait.clone(),
        );
        registry.register(
            "limit_reached",
            "Times this worker found a queue's rate limit or concurrency cap reached and stopped reading the queue until its next start, by queue",
            self.limit_reached.clone(),
        );
        registry.register(
            "jobs_in_flight",
            "Jobs this worker is running or writing the outcome of",
            self.in_flight.clone(),
        );
    }

    /// The series of `queue` and `job_type` (already bounded to known types by the
    /// caller), made on first use.
    pub(crate) fn series(&self, queue: &str, job_type: &str) -> Arc<JobSeries> {
        if let Ok(series) = self.series.read()
            && let Some(found) = series.get(queue).and_then(|types| types.get(job_type))
        {
            return Arc::clone(found);
        }
        let labels = |extra: Option<&'static str>| {
            let mut labels: Labels =
                vec![("queue", queue.to_owned()), ("type", job_type.to_owned())];
            if let Some(outcome) = extra {
                labels.push(("outcome", outcome.to_owned()));
            }
            labels
        };
        let made = Arc::new(JobSeries {
            outcomes: Outcome::ALL
                .map(|o| self.jobs.get_or_create(&labels(Some(o.label()))).clone()),
            run: self.run.get_or_create(&labels(None)).clone(),
            wait: self.wait.get_or_create(&labels(None)).clone(),
        });
        match self.series.write() {
            Ok(mut series) => Arc::clone(
                series
                    .entry(queue.to_owned())
                    .or_default()
                    .entry(job_type.to_owned())
                    .or_insert(made),
            ),
            // A panic elsewhere poisoned the map: the series still count, uncached.
            Err(_) => made,
        }
    }

    /// Records that an entry of `queue` was held back by its flow limit for `wait`.
    pub(crate) fn limit_waited(&self, queue: &str, wait: Duration) {
        self.limit_wait
            .get_or_create(&vec![("queue", queue.to_owned())])
            .observe(wait.as_secs_f64());
    }

    /// Records that an admission found `queue`'s flow limit reached.
    pub(crate) fn limit_reached(&self, queue: &str) {
        self.limit_reached
            .get_or_create(&vec![("queue", queue.to_owned())])
            .inc();
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }
}
