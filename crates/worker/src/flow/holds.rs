//! A capped queue's slots as this worker holds them: a [`Slot`] per admitted job, given
//! back once the job's last trace here is gone (its outcome written, or its entry handed
//! back or dropped), in batches by [`GiveBack`]; the heartbeat renews the rest. While the
//! cap is far from reached, a worker keeps the slots of ended jobs (and spares its
//! admission gave) for its next jobs, and gives back those it did not need for a moment:
//! a cap far above the load then costs almost no Redis call per job.
//!
//! A hold has a generation. When Redis says a hold ended (the worker stopped beating for
//! a lease and others took its slots), the worker forgets it whole: the slots of its
//! jobs are of an old generation, give nothing back to a newer hold, and the heartbeat
//! stops the jobs that run under them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flotilla_proto::scripts::{self, Holds as HoldsCall, HoldsReply};
use flotilla_proto::{Keys, SharedConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Flow;

/// How often spare slots that were not needed go back: those left unused through a
/// whole period.
pub(crate) const SPARE_LINGER: Duration = Duration::from_millis(50);

/// Slots held, by queue, and the way back for those given up.
#[derive(Debug)]
pub(crate) struct Holds {
    counts: Mutex<HashMap<String, Held>>,
    given_back: mpsc::UnboundedSender<(String, u64)>,
    /// The generation the next hold gets.
    next_generation: AtomicU64,
    /// Told when a hold ended, so the heartbeat stops the jobs under it at once rather
    /// than at its next beat.
    pub lost: tokio::sync::Notify,
}

/// This worker's hold of one queue's slots.
#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    /// Slots its hold in Redis counts: the spare ones and those of its jobs.
    slots: usize,
    /// Slots held for its next jobs (admitted as spares, or kept from jobs that ended).
    spare: usize,
    /// The fewest spare slots since the last give-back: that many were not needed.
    unneeded: usize,
    /// Whether a slot of an ended job is kept as a spare: the last admission found the
    /// cap far from reached. Otherwise it goes back at once.
    keep: bool,
}

/// One job's slot in a capped queue: given back (or kept as a spare) when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    queue: String,
    generation: u64,
    holds: Arc<Holds>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.holds.job_ended(&self.queue, self.generation);
    }
}

impl Slot {
    /// Whether the hold this slot belongs to is still this worker's: a job whose slot's
    /// hold ended runs over the cap.
    pub(crate) fn is_current(&self) -> bool {
        self.holds
            .counts()
            .get(&self.queue)
            .is_some_and(|held| held.generation == self.generation)
    }
}

impl Holds {
    /// The holds, and what `GiveBack` reads the slots given back from.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<(String, u64)>) {
        let (given_back, rx) = mpsc::unbounded_channel();
        let holds = Self {
            counts: Mutex::default(),
            given_back,
            next_generation: AtomicU64::new(1),
            lost: tokio::sync::Notify::new(),
        };
        (Arc::new(holds), rx)
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(self: &Arc<Self>, queue: &str, generation: u64, n: usize) -> Vec<Arc<Slot>> {
        (0..n)
            .map(|_| {
                Arc::new(Slot {
                    queue: queue.to_owned(),
                    generation,
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
        let generation = {
            let mut counts = self.counts();
            let held = counts.entry(queue.to_owned()).or_insert_with(|| Held {
                generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
                slots: 0,
                spare: 0,
                unneeded: 0,
                keep,
            });
            held.slots += n + spare;
            held.spare += spare;
            held.keep = keep;
            held.generation
        };
        self.slots(queue, generation, n)
    }

    /// Up to `n` of the spare slots of `queue`, for jobs about to start.
    pub(crate) fn take_spare(self: &Arc<Self>, queue: &str, n: usize) -> Vec<Arc<Slot>> {
        let (taken, generation) = match self.counts().get_mut(queue) {
            Some(held) => {
                let taken = n.min(held.spare);
                held.spare -= taken;
                held.unneeded = held.unneeded.min(held.spare);
                (taken, held.generation)
            }
            None => (0, 0),
        };
        self.slots(queue, generation, taken)
    }

    /// How many spare slots of `queue` this worker holds.
    pub(crate) fn spare(&self, queue: &str) -> usize {
        self.counts().get(queue).map_or(0, |held| held.spare)
    }

    /// How many slots of `queue` this worker's hold counts, as far as it knows.
    pub(crate) fn held(&self, queue: &str) -> usize {
        self.counts().get(queue).map_or(0, |held| held.slots)
    }

    /// A job of `queue` ended: its slot is kept as a spare, or given back. A slot of a
    /// hold that ended gives nothing back: Redis forgot that hold.
    fn job_ended(&self, queue: &str, generation: u64) {
        let mut counts = self.counts();
        let Some(held) = counts.get_mut(queue).filter(|h| h.generation == generation) else {
            return;
        };
        if held.keep {
            held.spare += 1;
            return;
        }
        // The hold stays known at zero slots, with its generation, so that this slot's
        // give-back still counts if the worker takes slots again before it is sent.
        held.slots = held.slots.saturating_sub(1);
        drop(counts);
        // The loop is gone only after the worker stopped; the lease frees the slot then.
        let _ = self.given_back.send((queue.to_owned(), generation));
    }

    /// Takes out the spare slots to give back: those not needed since the last call,
    /// every one of a queue whose cap is near, or, with `all`, every one.
    fn spare_to_give_back(&self, all: bool) -> Vec<((String, u64), usize)> {
        let mut counts = self.counts();
        let mut back = Vec::new();
        for (queue, held) in counts.iter_mut() {
            let n = if all || !held.keep {
                held.spare
            } else {
                held.unneeded.min(held.spare)
            };
            if n > 0 {
                back.push(((queue.clone(), held.generation), n));
                held.slots = held.slots.saturating_sub(n);
                held.spare -= n;
            }
            held.unneeded = held.spare;
        }
        back
    }

    /// Redis said this worker's hold of `queue` ended (it stopped beating for a lease and
    /// its slots went to others): the hold is forgotten, with its spares; its jobs' slots
    /// are of an old generation from now on.
    pub(crate) fn hold_ended(&self, queue: &str) {
        if self.counts().remove(queue).is_some() {
            self.lost.notify_one();
        }
    }

    /// Stops keeping the slots of ended jobs of `queue` (its limit changed, say); the
    /// spare ones go back with the next give-back.
    pub(crate) fn stop_keeping(&self, queue: &str) {
        if let Some(held) = self.counts().get_mut(queue) {
            held.keep = false;
        }
    }

    /// Whether `generation` is the hold of `queue` this worker has now.
    fn is_current(&self, queue: &str, generation: u64) -> bool {
        self.counts()
            .get(queue)
            .is_some_and(|held| held.generation == generation)
    }

    /// The queues this worker holds slots of now, for the heartbeat to renew.
    pub(crate) fn held_queues(&self) -> Vec<String> {
        self.counts()
            .iter()
            .filter(|(_, held)| held.slots > 0)
            .map(|(queue, _)| queue.clone())
            .collect()
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
    /// every [`SPARE_LINGER`] the spare slots not needed through it; opens each queue's
    /// gate for this worker's next read. A give-back that fails is tried again with the
    /// next. Runs until `stop`, then gives back what is left.
    pub(crate) async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<(String, u64)>,
        stop: CancellationToken,
    ) {
        let mut linger = tokio::time::interval(SPARE_LINGER);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Slots to give back, by queue and the generation of the hold they belong to.
        let mut batch: HashMap<(String, u64), usize> = HashMap::new();
        loop {
            let mut lingered = false;
            tokio::select! {
                first = rx.recv() => {
                    if let Some(slot) = first {
                        *batch.entry(slot).or_default() += 1;
                    }
                }
                _ = linger.tick() => lingered = true,
                () = stop.cancelled() => {}
            }
            while let Ok(slot) = rx.try_recv() {
                *batch.entry(slot).or_default() += 1;
            }
            let stopping = stop.is_cancelled();
            if lingered || stopping {
                for (slot, spare) in self.flow.holds.spare_to_give_back(stopping) {
                    *batch.entry(slot).or_default() += spare;
                }
            }
            if !batch.is_empty() {
                batch = self.send(batch).await;
            }
            if stopping {
                return;
            }
        }
    }

    /// Gives back `batch`; answers what could not be, to try again. Slots of a hold that
    /// ended meanwhile are dropped: Redis forgot that hold, and a newer one must not lose
    /// them.
    async fn send(
        &self,
        mut batch: HashMap<(String, u64), usize>,
    ) -> HashMap<(String, u64), usize> {
        let holds = &self.flow.holds;
        batch.retain(|(queue, generation), _| holds.is_current(queue, *generation));
        let calls: Vec<(u64, HoldsCall)> = batch
            .iter()
            .map(|((queue, generation), &given_back)| {
                let call = HoldsCall {
                    queue,
                    worker: &self.worker_id,
                    given_back,
                    lease: self.lease,
                };
                (*generation, call)
            })
            .collect();
        let (generations, calls): (Vec<u64>, Vec<HoldsCall>) = calls.into_iter().unzip();
        let mut conn = self.conn.clone();
        let replies = match scripts::run_all(&mut conn, &self.keys, &calls).await {
            Ok(replies) => replies,
            Err(e) => {
                tracing::warn!("could not give back concurrency slots (will try again): {e}");
                return batch;
            }
        };
        let mut failed = HashMap::new();
        for ((call, generation), reply) in calls.iter().zip(generations).zip(replies) {
            match reply {
                Ok(HoldsReply::Holding(_)) => self.flow.reopen(call.queue),
                Ok(HoldsReply::Ended) => {
                    self.flow.holds.hold_ended(call.queue);
                    self.flow.reopen(call.queue);
                }
                Err(e) => {
                    tracing::warn!(queue = %call.queue, "could not give back concurrency slots (will try again): {e}");
                    failed.insert((call.queue.to_owned(), generation), call.given_back);
                }
            }
        }
        failed
    }
}
