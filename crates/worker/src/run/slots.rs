//! Concurrency slots, and fetching ahead of them while handlers finish quickly: a slot
//! that frees then starts an entry already here instead of waiting a round trip to Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Shutdown;

/// Handlers that finish within about a round trip to Redis gain from entries fetched
/// ahead of a free slot; longer ones gain little, and entries held for them would wait
/// while other workers sit idle.
pub(crate) const QUICK_RUN: Duration = Duration::from_millis(2);

/// How much of each new run time moves the average: about the last eight runs count.
const PACE_WEIGHT: u64 = 8;

/// A moving average of handler run times, read before each fetch to decide whether to
/// fetch ahead.
#[derive(Debug)]
pub(crate) struct RunPace {
    average_us: AtomicU64,
}

impl Default for RunPace {
    /// Starts at the quick limit, not below it: a worker fetches ahead only once its
    /// handlers have shown they finish quickly.
    fn default() -> Self {
        Self {
            average_us: AtomicU64::new(QUICK_RUN.as_micros() as u64),
        }
    }
}

impl RunPace {
    /// Adds one handler's run time. Two attempts finishing at once may lose one update;
    /// an estimate needs no lock.
    pub(crate) fn record(&self, run_time: Duration) {
        let run_us = u64::try_from(run_time.as_micros()).unwrap_or(u64::MAX);
        let old = self.average_us.load(Ordering::Relaxed);
        let new = old - old / PACE_WEIGHT + run_us / PACE_WEIGHT;
        self.average_us.store(new, Ordering::Relaxed);
    }

    /// Whether recent handlers finished quickly enough to fetch ahead for.
    pub(crate) fn quick(&self) -> bool {
        self.average_us.load(Ordering::Relaxed) < QUICK_RUN.as_micros() as u64
    }
}

/// Waits for one permit of `semaphore`, then takes every other free one, up to `max` in
/// all, so one read fetches as many entries as can run. `None` on shutdown.
pub(crate) async fn wait_for_some(
    semaphore: &Arc<Semaphore>,
    shutdown: &Shutdown,
    max: usize,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        permit = Arc::clone(semaphore).acquire_owned() => permit.ok()?,
        _ = shutdown.triggered() => return None,
    };
    let mut permits = vec![first];
    permits.extend(take_free(semaphore, max.saturating_sub(1)));
    Some(permits)
}

/// Takes up to `max` permits of `semaphore` that are free now, without waiting.
pub(crate) fn take_free(semaphore: &Arc<Semaphore>, max: usize) -> Vec<OwnedSemaphorePermit> {
    let mut permits = Vec::new();
    while permits.len() < max {
        match Arc::clone(semaphore).try_acquire_owned() {
            Ok(permit) => permits.push(permit),
            Err(_) => break,
        }
    }
    permits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_worker_does_not_fetch_ahead_until_runs_prove_quick() {
        let pace = RunPace::default();
        assert!(!pace.quick());
        for _ in 0..8 {
            pace.record(Duration::from_micros(50));
        }
        assert!(pace.quick());
    }

    #[test]
    fn a_run_of_slow_handlers_stops_fetching_ahead() {
        let pace = RunPace::default();
        for _ in 0..32 {
            pace.record(Duration::from_micros(50));
        }
        assert!(pace.quick());
        for _ in 0..4 {
            pace.record(Duration::from_secs(1));
        }
        assert!(!pace.quick());
    }

    #[tokio::test]
    async fn take_free_takes_only_what_is_free() {
        let semaphore = Arc::new(Semaphore::new(3));
        let held = take_free(&semaphore, 2);
        assert_eq!(held.len(), 2);
        let rest = take_free(&semaphore, 5);
        assert_eq!(rest.len(), 1);
        drop(held);
        assert_eq!(semaphore.available_permits(), 2);
    }
}
