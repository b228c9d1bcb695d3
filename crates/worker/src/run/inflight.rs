//! The jobs this worker is running right now: what heartbeats refresh and what a lost
//! lease or a cancel must stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use flotilla_proto::scripts::FastJob;
use prometheus_client::metrics::gauge::Gauge;

use crate::flow::holds::Slot;
use crate::metrics::{JobSeries, Outcome};

use tokio_util::sync::CancellationToken;

/// One running attempt.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub queue: String,
    pub job_id: String,
    pub entry_id: String,
    pub lease: String,
    pub job_type: String,
    /// This attempt's number, from 1.
    pub number: u32,
    /// When the handler was handed the job.
    pub began: Instant,
    /// For a job on the fast path (no record), what a script needs to fence the attempt
    /// and, should it fail, be handed back or report progress, to write its record.
    pub fast: Option<Arc<FastJob>>,
    /// A fast-path attempt's entry delivery count, which scripts fence it by; shared by
    /// the attempt's clones, as this worker's own reclaim of the entry raises it. It
    /// becomes 0 once the attempt has written its record (progress): from then on the
    /// lease fences it.
    pub delivery: Arc<AtomicU32>,
    /// Stops the handler (cancel, lost lease).
    pub cancel: CancellationToken,
    /// Why `cancel` fired, set by whoever fires it, so the stopped attempt is counted
    /// once, under that outcome.
    pub stopped_for: Arc<OnceLock<Outcome>>,
    /// The metrics of its queue and type.
    pub series: Arc<JobSeries>,
    /// The run's trace id while tracing is on, for the lines written about it after it ran.
    pub trace_id: Option<Arc<str>>,
    /// Its slot of its queue's concurrency cap: given back when the last clone of the
    /// attempt is gone, its outcome written.
    pub slot: Option<Arc<Slot>>,
    /// Its group, for a fast-path job that has one: once it completes, its place is
    /// given back and its group's next job let through.
    pub group: Option<Arc<str>>,
}

impl Attempt {
    /// Stops the handler for `why`; the first reason given is the one counted.
    pub(crate) fn stop(&self, why: Outcome) {
        let _ = self.stopped_for.set(why);
        self.cancel.cancel();
    }

    /// The fast-path delivery count the scripts fence by; 0 for an attempt with a record.
    pub(crate) fn delivery(&self) -> u32 {
        match self.fast {
            Some(_) => self.delivery.load(Ordering::Acquire),
            None => 0,
        }
    }
}

/// Attempts by lease token (unique per attempt; job ids are unique only within a queue);
/// an attempt stays here until its outcome has been written, so its entry keeps being
/// refreshed while a write waits out a Redis outage.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    attempts: Arc<Mutex<HashMap<String, Attempt>>>,
    /// How many there are, as the `flotilla_jobs_in_flight` gauge shows it.
    gauge: Gauge,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Attempt>> {
        // A panic while holding this lock cannot leave the map half-updated: every
        // operation is a single insert, remove or clone.
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Attempts counted on `gauge` as they come and go.
    pub(crate) fn counted(gauge: Gauge) -> Self {
        Self {
            attempts: Arc::default(),
            gauge,
        }
    }

    pub(crate) fn insert(&self, attempt: Attempt) {
        if self.lock().insert(attempt.lease.clone(), attempt).is_none() {
            self.gauge.inc();
        }
    }

    pub(crate) fn remove(&self, lease: &str) {
        if self.lock().remove(lease).is_some() {
            self.gauge.dec();
        }
    }

    /// Whether the attempt with this lease is still running (its outcome not yet written).
    pub(crate) fn contains(&self, lease: &str) -> bool {
        self.lock().contains_key(lease)
    }

    pub(crate) fn snapshot(&self) -> Vec<Attempt> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the entry is running here. A fast-path attempt's delivery count becomes
    /// `delivery`, the count this worker's own reclaim of the entry just gave it.
    pub(crate) fn claim_own(&self, queue: &str, entry_id: &str, delivery: u32) -> bool {
        let attempts = self.lock();
        let Some(attempt) = attempts
            .values()
            .find(|a| a.queue == queue && a.entry_id == entry_id)
        else {
            return false;
        };
        if attempt.fast.is_some() && delivery > 0 {
            // A count of 0 means the attempt has written its record and is fenced by its
            // lease now; it stays so.
            let _ = attempt
                .delivery
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                    (current != 0).then_some(delivery)
                });
        }
        true
    }
}
