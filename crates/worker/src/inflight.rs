//! The jobs this worker is running right now: what heartbeats refresh and what a lost
//! lease or a cancel must stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// One running attempt.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub queue: String,
    pub job_id: String,
    pub entry_id: String,
    pub lease: String,
    /// Stops the handler (cancel, lost lease).
    pub cancel: CancellationToken,
}

/// Attempts by lease token (unique per attempt; job ids are unique only within a queue);
/// an attempt stays here until its outcome has been written, so its entry keeps being
/// refreshed while a write waits out a Redis outage.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    attempts: Arc<Mutex<HashMap<String, Attempt>>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Attempt>> {
        // A panic while holding this lock cannot leave the map half-updated: every
        // operation is a single insert, remove or clone.
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, attempt: Attempt) {
        self.lock().insert(attempt.lease.clone(), attempt);
    }

    pub(crate) fn remove(&self, lease: &str) {
        self.lock().remove(lease);
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

    pub(crate) fn contains_entry(&self, queue: &str, entry_id: &str) -> bool {
        self.lock()
            .values()
            .any(|a| a.queue == queue && a.entry_id == entry_id)
    }
}
