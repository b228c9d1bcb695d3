//! Flow limits as this worker keeps to them: the limits it last read, the queues it does
//! not fetch from until a start is due again (their gates), and how many entries a read
//! of a limited queue may take. Asking before a limited queue's jobs start is
//! `admission`; holding and giving back a capped queue's slots is `holds`.

pub(crate) mod admission;
pub(crate) mod holds;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use flotilla_proto::flow::QueueLimit;
use flotilla_proto::scripts::Admission;
use flotilla_proto::{Keys, SharedConnection, queue_of_partition};

use holds::{Holds, Slot};

/// How soon a queue at its concurrency cap is asked again: a slot frees when a job of
/// another worker ends, which nothing announces (this worker's own are heard at once).
pub(crate) const CAP_RECHECK: Duration = Duration::from_millis(100);

/// How long spare starts of a rate may be used after they were given: a start used later
/// than given shifts by at most this, so no window sees more than the rate, the burst and
/// this long's worth of the rate (spares are given only while the rate is far from spent).
pub(crate) const SPARE_STARTS_FOR: Duration = Duration::from_millis(10);

/// What this worker knows of one limited queue beyond its limit.
#[derive(Debug, Clone, Copy, Default)]
struct Gate {
    /// Not fetched from until then: its rate had no start left, or its cap no slot.
    closed_until: Option<Instant>,
    /// How many more could start when last asked (`None`: not asked yet, or unbounded).
    allowance: Option<usize>,
}

/// The limits and gates of the served queues.
#[derive(Debug)]
pub(crate) struct Flow {
    /// Queue name → its limit, as last read.
    limits: RwLock<HashMap<String, QueueLimit>>,
    /// Queues whose stored limit this version cannot read: not served, as a limit
    /// half obeyed is no limit.
    unreadable: RwLock<HashSet<String>>,
    gates: Mutex<HashMap<String, Gate>>,
    /// Queue → entries this worker holds back for its limit: while there are any, the
    /// queue is not read (its held entries are asked for again instead), so a worker
    /// never piles up entries it cannot start.
    held: Mutex<HashMap<String, usize>>,
    /// Queue → spare starts of its rate this worker may still use, and until when.
    spare_starts: Mutex<HashMap<String, (usize, Instant)>>,
    /// The capped queues' slots this worker holds.
    pub holds: Arc<Holds>,
    /// The worker's concurrency: it keeps spare slots only while the cap has twice that
    /// left.
    concurrency: usize,
    /// Wakes entries held back when they may start sooner than they were told: a limit
    /// changed, or this worker gave back a slot.
    pub changed: tokio::sync::Notify,
}

impl Flow {
    /// The flow state of a worker running `concurrency` jobs at once.
    pub(crate) fn new(holds: Arc<Holds>, concurrency: usize) -> Self {
        Self {
            concurrency,
            changed: tokio::sync::Notify::new(),
            limits: RwLock::default(),
            unreadable: RwLock::default(),
            gates: Mutex::default(),
            held: Mutex::default(),
            spare_starts: Mutex::default(),
            holds,
        }
    }

    fn gates(&self) -> MutexGuard<'_, HashMap<String, Gate>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the stored limits: a queue whose limit changed is asked afresh; one whose
    /// stored limit this version cannot read is not served until it can be (said once).
    pub(crate) async fn refresh(
        &self,
        conn: &mut SharedConnection,
        keys: &Keys,
    ) -> redis::RedisResult<()> {
        let (mut limits, unreadable) = flotilla_proto::flow::read_limits(conn, keys).await?;
        // A limit on groups alone is kept where jobs are enqueued and let through.
        limits.retain(|_, limit| limit.limits_starts());
        let unreadable_now: HashSet<String> = unreadable.iter().map(|(q, _)| q.clone()).collect();
        let mut known_unreadable = self.unreadable.write().unwrap_or_else(|p| p.into_inner());
        for (queue, why) in &unreadable {
            if !known_unreadable.contains(queue) {
                tracing::error!(queue = %queue, "not serving the queue: its flow limit cannot be read ({why}); set it again with `flotilla queues limit`");
            }
        }
        *known_unreadable = unreadable_now;
        drop(known_unreadable);
        let mut known = self.limits.write().unwrap_or_else(|p| p.into_inner());
        if *known != limits {
            for queue in known.keys().chain(limits.keys()) {
                if known.get(queue) != limits.get(queue) {
                    self.gates().remove(queue);
                    self.spare_starts().remove(queue);
                    self.holds.stop_keeping(queue);
                }
            }
            *known = limits;
            self.changed.notify_waiters();
        }
        Ok(())
    }

    /// The limit of the queue `stream` belongs to, if it has one.
    pub(crate) fn limit_of(&self, stream: &str) -> Option<QueueLimit> {
        let limits = self.limits.read().unwrap_or_else(|p| p.into_inner());
        if limits.is_empty() {
            return None;
        }
        limits.get(queue_of_partition(stream)).copied()
    }

    /// Whether `queue` is not to be fetched from now: its gate is closed, or its stored
    /// limit cannot be read.
    pub(crate) fn is_closed(&self, queue: &str, now: Instant) -> bool {
        if self
            .unreadable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(queue)
        {
            return true;
        }
        if self.held().get(queue).is_some_and(|&n| n > 0) {
            return true;
        }
        self.gates()
            .get(queue)
            .and_then(|gate| gate.closed_until)
            .is_some_and(|until| until > now)
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` more entries of `queue` held back (or, negative, fewer).
    pub(crate) fn count_held(&self, queue: &str, n: isize) {
        let mut held = self.held();
        let count = held.entry(queue.to_owned()).or_default();
        *count = count.saturating_add_signed(n);
        if *count == 0 {
            held.remove(queue);
        }
    }

    /// How many entries a read of `stream` may take when `count` are wanted: for a
    /// limited queue, no more than could start when it was last asked, so that a read
    /// seldom takes what must wait.
    pub(crate) fn read_size(&self, stream: &str, count: usize) -> usize {
        if self.limit_of(stream).is_none() {
            return count;
        }
        // Before the first admission, one entry: a read never takes a batch it would hold
        // back, keeping its local slots from other queues.
        let allowance = self
            .gates()
            .get(queue_of_partition(stream))
            .and_then(|gate| gate.allowance)
            .unwrap_or(1);
        count.min(allowance).max(1)
    }

    /// When the first closed gate may open again, if any is closed: its next start, or,
    /// for a queue whose held entries are being asked for, a cap's recheck away.
    pub(crate) fn reopens_at(&self, now: Instant) -> Option<Instant> {
        let held = (!self.held().is_empty()).then(|| now + CAP_RECHECK);
        self.gates()
            .values()
            .filter_map(|gate| gate.closed_until)
            .filter(|&until| until > now)
            .chain(held)
            .min()
    }

    /// Learns from an admission of `queue`: with nothing left, its gate closes until the
    /// next start is due (or, at a cap, for a moment); otherwise reads take what is left.
    pub(crate) fn admitted(&self, queue: &str, admission: &Admission) -> Option<Duration> {
        let mut gates = self.gates();
        let gate = gates.entry(queue.to_owned()).or_default();
        if admission.left == Some(0) {
            let wait = admission.next_in.unwrap_or(CAP_RECHECK);
            gate.closed_until = Some(Instant::now() + wait);
            gate.allowance = Some(1);
            Some(wait)
        } else {
            gate.closed_until = None;
            gate.allowance = admission.left;
            None
        }
    }

    fn spare_starts(&self) -> MutexGuard<'_, HashMap<String, (usize, Instant)>> {
        self.spare_starts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what this worker holds spare for up to `n` jobs of `queue` about to start: a
    /// start of its rate each (while they last, [`SPARE_STARTS_FOR`]) and a slot of its
    /// cap each. Returns how many are covered, and their slots when the queue has a cap.
    pub(crate) fn take_spare(
        &self,
        queue: &str,
        limit: &QueueLimit,
        n: usize,
    ) -> (usize, Vec<Arc<Slot>>) {
        let mut starts = self.spare_starts();
        let mut covered = n;
        if limit.rate.is_some() {
            covered = match starts.get(queue) {
                Some(&(count, until)) if until > Instant::now() => covered.min(count),
                _ => 0,
            };
        }
        if covered == 0 {
            return (0, Vec::new());
        }
        let slots = if limit.concurrency.is_some() {
            let slots = self.holds.take_spare(queue, covered);
            covered = slots.len();
            slots
        } else {
            Vec::new()
        };
        if limit.rate.is_some()
            && let Some((count, _)) = starts.get_mut(queue)
        {
            *count -= covered;
        }
        (covered, slots)
    }

    /// Takes what an admission of `queue` gave: `new_slots` slots for admitted jobs (when
    /// the queue has a cap), and its spares, kept for this worker's next jobs. Spare
    /// starts replace any left from before, so none is used later than
    /// [`SPARE_STARTS_FOR`] after it was given.
    pub(crate) fn took(
        &self,
        queue: &str,
        limit: &QueueLimit,
        admission: &Admission,
        new_slots: usize,
    ) -> Vec<Arc<Slot>> {
        if limit.rate.is_some() && admission.spare_starts > 0 {
            let until = Instant::now() + SPARE_STARTS_FOR;
            self.spare_starts()
                .insert(queue.to_owned(), (admission.spare_starts, until));
        }
        if limit.concurrency.is_none() {
            return Vec::new();
        }
        // Slots of ended jobs are kept while the cap is far from reached: while twice a
        // worker's concurrency is left after this admission.
        let keep = admission
            .left
            .is_none_or(|left| left >= 2 * self.concurrency);
        self.holds
            .took(queue, new_slots, admission.spare_slots, keep)
    }

    /// Opens `queue`'s gate: this worker just gave back slots of it.
    pub(crate) fn reopen(&self, queue: &str) {
        self.changed.notify_waiters();
        // The gate opens; reads keep to what the last admission said could start (one
        // entry, if it found the limit reached), and the next admission says more.
        if let Some(gate) = self.gates().get_mut(queue) {
            gate.closed_until = None;
        }
    }
}
