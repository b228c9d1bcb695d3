//! A capped queue's slots as this worker holds them: a [`Slot`] per admitted job, given
//! back once the job's last trace here is gone (its outcome written, or its entry handed
//! back or dropped), in batches by [`GiveBack`]; the heartbeat renews the rest. While the
//! cap is far from reached, a worker keeps the slots of ended jobs (and spares its
//! admission gave) for its next jobs, and gives back those unused for a moment: a cap far
//! above the load then costs almost no Redis call per job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flotilla_proto::scripts::{self, Holds as HoldsCall, HoldsReply};
use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Flow;

/// How long a spare slot may go unused before it goes back to the queue.
pub(crate) const SPARE_LINGER: Duration = Duration::from_millis(50);

/// Slots held, by queue, and the way back for those given up.
#[derive(Debug)]
pub(crate) struct Holds {
    counts: Mutex<HashMap<String, Held>>,
    given_back: mpsc::UnboundedSender<String>,
}

/// This worker's slots of one queue.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Slots its hold in Redis counts: the spare ones and those of its jobs.
    slots: usize,
    /// Slots held for its next jobs (admitted as spares, or kept from jobs that ended).
    spare: usize,
    /// Whether a slot of an ended job is kept as a spare: the last admission found the
    /// cap far from reached. Otherwise it goes back at once.
    keep: bool,
    /// When a spare slot was last taken or kept.
    touched: Instant,
}

/// One job's slot in a capped queue: given back (or kept as a spare) when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    queue: String,
    holds: Arc<Holds>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.holds.job_ended(&self.queue);
    }
}

impl Holds {
    /// The holds, and what `GiveBack` reads the slots given back from.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (given_back, rx) = mpsc::unbounded_channel();
        let holds = Self {
            counts: Mutex::default(),
            given_back,
        };
        (Arc::new(holds), rx)
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(self: &Arc<Self>, queue: &str, n: usize) -> Vec<Arc<Slot>> {
        (0..n)
            .map(|_| {
                Arc::new(Slot {
                    queue: queue.to_owned(),
                    holds: Arc::clone(self),
                })
            })
            .collect()
    }

    /// `n` slots of `queue` an admission just gave this worker for its jobs, and `spare`
    /// more for its next ones; `keep`: whether slots of ended jobs are kept as spares.
    pub(crate) fn took(
        self: &Arc<Self>,
        queue: &str,
        n: usize,
        spare: usize,
        keep: bool,
    ) -> Vec<Arc<Slot>> {
        {
            let mut counts = self.counts();
            let held = counts.entry(queue.to_owned()).or_insert(Held {
                slots: 0,
                spare: 0,
                keep,
                touched: Instant::now(),
            });
            held.slots += n + spare;
            held.spare += spare;
            held.keep = keep;
            held.touched = Instant::now();
        }
        self.slots(queue, n)
    }

    /// Up to `n` of the spare slots of `queue`, for jobs about to start.
    pub(crate) fn take_spare(self: &Arc<Self>, queue: &str, n: usize) -> Vec<Arc<Slot>> {
        let taken = match self.counts().get_mut(queue) {
            Some(held) => {
                let taken = n.min(held.spare);
                held.spare -= taken;
                held.touched = Instant::now();
                taken
            }
            None => 0,
        };
        self.slots(queue, taken)
    }

    /// How many spare slots of `queue` this worker holds.
    pub(crate) fn spare(&self, queue: &str) -> usize {
        self.counts().get(queue).map_or(0, |held| held.spare)
    }

    /// A job of `queue` ended: its slot is kept as a spare, or given back.
    fn job_ended(&self, queue: &str) {
        let mut counts = self.counts();
        let Some(held) = counts.get_mut(queue) else {
            return;
        };
        if held.keep {
            held.spare += 1;
            held.touched = Instant::now();
            return;
        }
        held.slots = held.slots.saturating_sub(1);
        if held.slots == 0 {
            counts.remove(queue);
        }
        drop(counts);
        // The loop is gone only after the worker stopped; the lease frees the slot then.
        let _ = self.given_back.send(queue.to_owned());
    }

    /// Takes out the spare slots to give back: those unused for `linger`, every one of a
    /// queue whose cap is near, or, with `all`, every one.
    fn spare_to_give_back(&self, linger: Duration, all: bool) -> Vec<(String, usize)> {
        let mut counts = self.counts();
        let mut back = Vec::new();
        for (queue, held) in counts.iter_mut() {
            if held.spare > 0 && (all || !held.keep || held.touched.elapsed() >= linger) {
                back.push((queue.clone(), held.spare));
                held.slots = held.slots.saturating_sub(held.spare);
                held.spare = 0;
            }
        }
        counts.retain(|_, held| held.slots > 0);
        back
    }

    /// The renewal found this worker's hold of `queue` ended: its spare slots went with
    /// it (its jobs' slots are given back as they end, to no effect).
    pub(crate) fn hold_ended(&self, queue: &str) {
        if let Some(held) = self.counts().get_mut(queue) {
            held.slots = held.slots.saturating_sub(held.spare);
            held.spare = 0;
            held.keep = false;
        }
    }

    /// Stops keeping the slots of ended jobs of `queue` (its limit changed, say); the
    /// spare ones go back with the next give-back.
    pub(crate) fn stop_keeping(&self, queue: &str) {
        if let Some(held) = self.counts().get_mut(queue) {
            held.keep = false;
        }
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
    /// spare slots once unused for [`SPARE_LINGER`]; opens each queue's gate for this
    /// worker's next read. Runs until `stop`, then gives back what is left. A call that
    /// fails is not retried: the lease frees the slots.
    pub(crate) async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<String>,
        stop: CancellationToken,
    ) {
        let mut linger = tokio::time::interval(SPARE_LINGER);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut batch: HashMap<String, usize> = HashMap::new();
            tokio::select! {
                first = rx.recv() => {
                    if let Some(queue) = first {
                        *batch.entry(queue).or_default() += 1;
                    }
                }
                _ = linger.tick() => {}
                () = stop.cancelled() => {}
            }
            while let Ok(queue) = rx.try_recv() {
                *batch.entry(queue).or_default() += 1;
            }
            let stopping = stop.is_cancelled();
            for (queue, spare) in self.flow.holds.spare_to_give_back(SPARE_LINGER, stopping) {
                *batch.entry(queue).or_default() += spare;
            }
            if !batch.is_empty() {
                self.send(batch).await;
            }
            if stopping {
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
                        Ok(HoldsReply::Holding(_)) => self.flow.reopen(call.queue),
                        Ok(HoldsReply::Ended) => {
                            self.flow.holds.hold_ended(call.queue);
                            self.flow.reopen(call.queue);
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
