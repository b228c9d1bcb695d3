//! A capped queue's slots as this worker holds them: a [`Slot`] per admitted job, given
//! back once the job's last trace here is gone (its outcome written, or its entry handed
//! back or dropped), in batches by [`give_back_loop`]; the heartbeat renews the rest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flotilla_proto::scripts::{self, Holds as HoldsCall, HoldsReply};
use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Flow;

/// Slots held, by queue, and the way back for those given up.
#[derive(Debug)]
pub(crate) struct Holds {
    counts: Mutex<HashMap<String, usize>>,
    given_back: mpsc::UnboundedSender<String>,
}

/// One job's slot in a capped queue: given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    queue: String,
    holds: Arc<Holds>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.holds.give_back(&self.queue);
    }
}

impl Holds {
    /// The holds, and what `give_back_loop` reads the slots given back from.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (given_back, rx) = mpsc::unbounded_channel();
        let holds = Self {
            counts: Mutex::default(),
            given_back,
        };
        (Arc::new(holds), rx)
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` slots of `queue` the admission just gave this worker.
    pub(crate) fn took(self: &Arc<Self>, queue: &str, n: usize) -> Vec<Arc<Slot>> {
        *self.counts().entry(queue.to_owned()).or_default() += n;
        (0..n)
            .map(|_| {
                Arc::new(Slot {
                    queue: queue.to_owned(),
                    holds: Arc::clone(self),
                })
            })
            .collect()
    }

    fn give_back(&self, queue: &str) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(queue) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(queue);
            }
        }
        drop(counts);
        // The loop is gone only after the worker stopped; the lease frees the slot then.
        let _ = self.given_back.send(queue.to_owned());
    }

    /// The queues this worker holds slots of now, for the heartbeat to renew.
    pub(crate) fn held_queues(&self) -> Vec<String> {
        self.counts().keys().cloned().collect()
    }
}

/// Where slots go back to.
pub(crate) struct GiveBack {
    pub conn: SharedConnection,
    pub keys: Keys,
    pub worker_id: String,
    pub lease: Duration,
    pub flow: Arc<Flow>,
}

impl GiveBack {
    /// Gives slots back as their jobs end, those of a moment in one call per queue, and
    /// opens each queue's gate for this worker's next read. Runs until `stop`, then gives
    /// back what is left. A call that fails is not retried: the lease frees the slots.
    pub(crate) async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<String>,
        stop: CancellationToken,
    ) {
        loop {
            let first = tokio::select! {
                first = rx.recv() => first,
                () = stop.cancelled() => None,
            };
            let mut batch: HashMap<String, usize> = HashMap::new();
            if let Some(queue) = first {
                *batch.entry(queue).or_default() += 1;
            }
            while let Ok(queue) = rx.try_recv() {
                *batch.entry(queue).or_default() += 1;
            }
            if !batch.is_empty() {
                self.send(batch).await;
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    async fn send(&self, batch: HashMap<String, usize>) {
        let calls: Vec<HoldsCall> = batch
            .iter()
            .map(|(queue, &given_back)| HoldsCall {
                queue,
                worker: &self.worker_id,
                given_back,
                lease: self.lease,
            })
            .collect();
        let mut conn = self.conn.clone();
        match scripts::run_all(&mut conn, &self.keys, &calls).await {
            Ok(replies) => {
                for (call, reply) in calls.iter().zip(replies) {
                    match reply {
                        Ok(HoldsReply::Holding(_) | HoldsReply::Ended) => {
                            self.flow.reopen(call.queue)
                        }
                        Err(e) => tracing::warn!(queue = %call.queue,
                            "could not give back concurrency slots (their lease frees them): {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!(
                "could not give back concurrency slots (their lease frees them): {e}"
            ),
        }
    }
}
