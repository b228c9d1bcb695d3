//! The order in which fetched batches take freed slots: the order they were fetched, however
//! their tasks happen to be scheduled.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// A line of batches whose entries wait for slots. The fetch loop gives each such batch a
/// place as it is fetched; a batch takes freed slots only once every earlier one has left
/// the line, so one slot runs jobs in queue order and strict priority holds.
#[derive(Debug)]
pub(crate) struct StartLine {
    /// Places handed out so far.
    issued: AtomicU64,
    /// The first place still in line; equal to `issued` when nobody waits.
    serving: watch::Sender<u64>,
    /// Places that left before their turn (a batch handed back at shutdown).
    left_early: Mutex<BTreeSet<u64>>,
}

impl StartLine {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            issued: AtomicU64::new(0),
            serving: watch::Sender::new(0),
            left_early: Mutex::new(BTreeSet::new()),
        })
    }

    /// The next place in line. Only the fetch loop calls this, in fetch order.
    pub(crate) fn join(self: &Arc<Self>) -> Place {
        Place {
            line: Arc::clone(self),
            number: self.issued.fetch_add(1, Ordering::SeqCst),
        }
    }

    /// Whether no batch waits, so a slot free now may go to the next fetch without
    /// overtaking anyone.
    pub(crate) fn is_empty(&self) -> bool {
        *self.serving.borrow() == self.issued.load(Ordering::SeqCst)
    }

    /// Waits until no batch waits. Only the fetch loop calls this (so no place is handed
    /// out meanwhile).
    pub(crate) async fn until_empty(&self) {
        let issued = self.issued.load(Ordering::SeqCst);
        let mut serving = self.serving.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = serving.wait_for(|first| *first >= issued).await;
    }

    fn leave(&self, number: u64) {
        let mut left = self.left_early.lock().unwrap_or_else(|p| p.into_inner());
        left.insert(number);
        self.serving.send_modify(|first| {
            while left.remove(first) {
                *first += 1;
            }
        });
    }
}

/// A batch's place in the [`StartLine`]; dropping it leaves the line.
#[derive(Debug)]
pub(crate) struct Place {
    line: Arc<StartLine>,
    number: u64,
}

impl Place {
    /// Waits until every batch fetched before this one has left the line.
    pub(crate) async fn turn(&self) {
        let mut serving = self.line.serving.subscribe();
        let _ = serving.wait_for(|first| *first >= self.number).await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.line.leave(self.number);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_later_place_waits_for_every_earlier_one_to_leave() {
        let line = StartLine::new();
        let first = line.join();
        let second = line.join();
        let third = line.join();
        assert!(!line.is_empty());
        first.turn().await;
        let waits = tokio::time::timeout(Duration::from_millis(50), third.turn()).await;
        assert!(
            waits.is_err(),
            "the third place's turn came before the second left"
        );
        // Leaving out of order (the third is dropped at shutdown) does not let anyone
        // overtake: the line moves once the second leaves too.
        drop(third);
        drop(first);
        assert!(!line.is_empty());
        second.turn().await;
        drop(second);
        assert!(line.is_empty());
        tokio::time::timeout(Duration::from_millis(50), line.until_empty())
            .await
            .expect("an empty line does not wait");
    }
}
