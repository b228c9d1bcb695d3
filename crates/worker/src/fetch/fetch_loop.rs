//! The fetch loop: wait for a free slot, pick the queues that are not paused and order
//! their partitions, fetch (abandoned entries first when due, then ready ones, else a
//! blocking wait, one per node on a cluster), ahead of the free slots while handlers
//! finish quickly, and hand what came back to dispatch, until shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::SharedConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Shutdown;
use crate::fetch::connections::{BlockingReads, HeldConnection};
use crate::fetch::lottery::fetch_order;
use crate::fetch::reads::{self as fetch, FetchError, Fetched};
use crate::fetch::served::ServedQueue;
use crate::fetch::waits::Waits;
use crate::run::{dispatch, slots};
use crate::shared::Shared;

/// Entries asked for in one read at most, however many slots are free.
const MAX_FETCH: usize = 256;
/// The first wait after a failure; it doubles up to [`MAX_ERROR_DELAY`].
const FIRST_ERROR_DELAY: Duration = Duration::from_millis(100);
const MAX_ERROR_DELAY: Duration = Duration::from_secs(5);

/// Fetches and dispatches until shutdown; Redis errors are waited out with backoff.
pub(crate) async fn fetch_loop(
    shared: &Arc<Shared>,
    blocking_reads: &BlockingReads,
    shutdown: &Shutdown,
) {
    let slots = Arc::new(Semaphore::new(shared.config.concurrency));
    let tickets = Arc::new(Semaphore::new(shared.config.prefetch_limit()));
    let mut state = LoopState::new();
    let mut conn = shared.conn.clone();
    let mut blocking = HeldConnection::new(blocking_reads.clone());
    let mut waits = Waits::for_reads(blocking_reads);
    while !shutdown.is_triggered() {
        let Some(version) = state
            .ready_to_read(shared, &mut conn, &mut waits, shutdown)
            .await
        else {
            continue;
        };
        let Some((permits, ahead)) = room_to_fetch(shared, &slots, &tickets, shutdown).await else {
            return;
        };
        let served = shared.served.current();
        let active = active_queues(&served, shared);
        if active.is_empty() {
            drop(permits);
            tokio::select! {
                _ = tokio::time::sleep(wait_time(shared)) => {}
                _ = shutdown.triggered() => {}
            }
            continue;
        }
        let reclaim_due = state.reclaim_due(shared.config.heartbeat_interval);
        let order = read_order(
            &served,
            &active,
            shared.config.strict_priority,
            state.next_turn(),
        );
        let sent = Instant::now();
        let count = permits.len() + ahead.len();
        let quiet = waits
            .quiet_streams(&shared.keys, &order)
            .filter(|_| !reclaim_due);
        let fetched = match quiet {
            Some(streams) => {
                let (keys, consumer) = (&shared.keys, &shared.worker_id);
                let size = |stream: &str| shared.flow.read_size(stream, count);
                fetch::read_ready(&mut conn, keys, &streams, consumer, size).await
            }
            None => {
                let read = FetchOnce {
                    order: &order,
                    count,
                    reclaim_due,
                    alone: waits.may_read_alone(),
                };
                fetch_once(shared, &mut blocking, &mut conn, read).await
            }
        };
        let outcome = match fetched {
            Ok(fetched) if !fetched.is_empty() => {
                let batch = dispatch::Batch {
                    place: (fetched.len() > permits.len()).then(|| shared.start_line.join()),
                    fetched,
                    permits,
                    ahead,
                    sent,
                };
                start_dispatch(shared, batch, &slots, shutdown);
                Ok(())
            }
            Ok(_) => {
                let room = (permits, ahead, &slots);
                waits
                    .wait_for_work(shared, &mut conn, version, &order, room, shutdown)
                    .await
            }
            Err(e) => Err(e),
        };
        state.after(outcome, shutdown).await;
    }
}

/// Starts a fetched batch beside the next read, so a round trip to start one batch never
/// holds up fetching the next; tracked, so draining waits for it.
fn start_dispatch(
    shared: &Arc<Shared>,
    batch: dispatch::Batch,
    slots: &Arc<Semaphore>,
    shutdown: &Shutdown,
) {
    let (shared_for_start, slots, shutdown) =
        (Arc::clone(shared), Arc::clone(slots), shutdown.clone());
    shared.tracker.spawn(async move {
        dispatch::dispatch(&shared_for_start, batch, &slots, &shutdown).await;
    });
}

/// What the fetch loop keeps from one fetch to the next.
struct LoopState {
    /// The queues' partition counts were raised to this worker's setting.
    counts_raised: bool,
    /// The version of the served set whose consumer groups are set up.
    groups_ready_for: Option<u64>,
    /// How long the next failure waits.
    error_delay: Duration,
    /// When abandoned entries are next looked for.
    next_reclaim: Instant,
    /// Fetches so far: each partition of a queue is asked first in turn.
    turn: usize,
}

impl LoopState {
    fn new() -> Self {
        Self {
            counts_raised: false,
            groups_ready_for: None,
            error_delay: FIRST_ERROR_DELAY,
            next_reclaim: Instant::now(),
            turn: 0,
        }
    }

    /// Sets up what a read needs (the partition counts, the consumer groups of the served
    /// set) and reaps finished node reads: the served set's version, or `None` after
    /// waiting out a failure (the loop then starts over).
    async fn ready_to_read(
        &mut self,
        shared: &Shared,
        conn: &mut SharedConnection,
        waits: &mut Waits,
        shutdown: &Shutdown,
    ) -> Option<u64> {
        if !self.counts_raised {
            if let Err(e) = shared.served.raise(conn, &shared.keys).await {
                let delay = self.error_delay;
                tracing::warn!("cannot read the queues' partitions, retrying in {delay:?}: {e}");
                back_off(shutdown, &mut self.error_delay).await;
                return None;
            }
            self.counts_raised = true;
        }
        let version = shared.served.version();
        if self.groups_ready_for != Some(version) {
            let streams = shared.served.streams();
            let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
            if let Err(e) = fetch::ensure_groups(conn, &shared.keys, &streams).await {
                let delay = self.error_delay;
                tracing::warn!("cannot set up consumer groups, retrying in {delay:?}: {e}");
                back_off(shutdown, &mut self.error_delay).await;
                return None;
            }
            self.groups_ready_for = Some(version);
        }
        if let Err(e) = waits.reap() {
            self.after(Err(e), shutdown).await;
            return None;
        }
        Some(version)
    }

    /// Whether abandoned entries are due to be looked for; if so, the next look is a
    /// heartbeat `interval` away.
    fn reclaim_due(&mut self, interval: Duration) -> bool {
        let due = Instant::now() >= self.next_reclaim;
        if due {
            self.next_reclaim = Instant::now() + interval;
        }
        due
    }

    fn next_turn(&mut self) -> usize {
        self.turn = self.turn.wrapping_add(1);
        self.turn
    }

    /// Takes a fetch's outcome: success resets the backoff; a failure is waited out (see
    /// [`after_failed_read`]).
    async fn after(&mut self, outcome: Result<(), FetchError>, shutdown: &Shutdown) {
        match outcome {
            Ok(()) => self.error_delay = FIRST_ERROR_DELAY,
            Err(e) => {
                after_failed_read(
                    e,
                    &mut self.groups_ready_for,
                    shutdown,
                    &mut self.error_delay,
                )
                .await
            }
        }
    }
}

/// Waits out a failed read with backoff, or, when the consumer group is missing (Redis
/// came back without our data, or the stream was deleted), has the groups made again now
/// rather than after the backoff of the outage.
async fn after_failed_read(
    error: FetchError,
    groups_ready_for: &mut Option<u64>,
    shutdown: &Shutdown,
    error_delay: &mut Duration,
) {
    if error.is_no_group() {
        tracing::warn!("consumer group missing (Redis lost its data?): creating it again");
        *groups_ready_for = None;
        *error_delay = FIRST_ERROR_DELAY;
    } else {
        tracing::warn!("fetch failed, retrying in {error_delay:?}: {error}");
        back_off(shutdown, error_delay).await;
    }
}

/// Waits until there is room to fetch into: while handlers are quick, room to wait (a
/// ticket each, so at most `prefetch` wait at once), plus any slot free now; otherwise a
/// free slot. Slots go to the next fetch only while no fetched batch waits for one, so
/// jobs start in the order they were fetched. `None` on shutdown.
async fn room_to_fetch(
    shared: &Shared,
    slots: &Arc<Semaphore>,
    tickets: &Arc<Semaphore>,
    shutdown: &Shutdown,
) -> Option<(Vec<OwnedSemaphorePermit>, Vec<OwnedSemaphorePermit>)> {
    let line = &shared.start_line;
    if shared.pace.quick() && shared.config.prefetch_limit() > 0 {
        let ahead = slots::wait_for_some(tickets, shutdown, MAX_FETCH).await?;
        let permits = if line.is_empty() {
            slots::take_free(slots, MAX_FETCH - ahead.len())
        } else {
            Vec::new()
        };
        Some((permits, ahead))
    } else {
        // Handlers turned slow while entries fetched ahead still wait: they go first.
        tokio::select! {
            () = line.until_empty() => {}
            _ = shutdown.triggered() => return None,
        }
        let permits = slots::wait_for_some(slots, shutdown, MAX_FETCH).await?;
        Some((permits, Vec::new()))
    }
}

/// Indexes of the served queues that are not paused, nor held shut by a flow limit.
fn active_queues(served: &[ServedQueue], shared: &Shared) -> Vec<usize> {
    let paused = shared.paused.read().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    (0..served.len())
        .filter(|&i| {
            let queue = &served[i].weight.name;
            !paused.contains(queue) && !shared.flow.is_closed(queue, now)
        })
        .collect()
}

/// How long a read may wait for work: the block time, but no later than a flow limit's
/// next start, so a queue held shut is read again when its start is due.
pub(crate) fn wait_time(shared: &Shared) -> Duration {
    let now = Instant::now();
    match shared.flow.reopens_at(now) {
        Some(at) => shared
            .config
            .block_time
            .min(at - now)
            .max(Duration::from_millis(1)),
        None => shared.config.block_time,
    }
}

/// The streams to ask, in order: the active queues by lottery (or strictly by weight),
/// each queue's partitions in turn, starting one further on at every fetch, so that each
/// partition is asked first as often as the others.
fn read_order<'a>(
    served: &'a [ServedQueue],
    active: &[usize],
    strict: bool,
    turn: usize,
) -> Vec<&'a str> {
    let weights: Vec<_> = active.iter().map(|&i| served[i].weight.clone()).collect();
    fetch_order(&weights, strict, &mut rand::rng())
        .into_iter()
        .flat_map(|drawn| {
            let partitions = &served[active[drawn]].partitions;
            let start = turn % partitions.len().max(1);
            partitions[start..]
                .iter()
                .chain(&partitions[..start])
                .map(String::as_str)
        })
        .collect()
}

/// What one fetch asks for.
struct FetchOnce<'a> {
    /// The streams, in order.
    order: &'a [&'a str],
    /// Entries wanted at most.
    count: usize,
    /// Whether abandoned entries are looked for first.
    reclaim_due: bool,
    /// Whether a blocking read of a single stream may go out (no other is in flight).
    alone: bool,
}

/// One fetch: abandoned entries first (when due), then ready ones from the streams in
/// `order`, else a blocking wait on them (on a cluster, the fetch loop's node reads).
async fn fetch_once(
    shared: &Shared,
    blocking: &mut HeldConnection,
    conn: &mut SharedConnection,
    read: FetchOnce<'_>,
) -> Result<Vec<Fetched>, FetchError> {
    let FetchOnce {
        order,
        count,
        reclaim_due,
        alone,
    } = read;
    if reclaim_due {
        let reclaimed = reclaim_abandoned(shared, conn, order, count).await?;
        if !reclaimed.is_empty() {
            return Ok(reclaimed);
        }
    }
    let block_ms = wait_time(shared).as_millis() as u64;
    let size = |stream: &str| shared.flow.read_size(stream, count);
    if let ([only], true) = (order, alone) {
        // A blocking read returns at once what there is: one call where a quiet queue
        // would take two.
        return fetch::read_blocking(
            blocking,
            &shared.keys,
            &[only],
            &shared.worker_id,
            size(only),
            block_ms,
        )
        .await;
    }
    let ready = fetch::read_ready(conn, &shared.keys, order, &shared.worker_id, size).await?;
    if !ready.is_empty() {
        return Ok(ready);
    }
    if blocking.is_cluster() {
        // A read may not span slots on a cluster: the fetch loop waits with one read per
        // node instead.
        return Ok(ready);
    }
    fetch::read_blocking(
        blocking,
        &shared.keys,
        order,
        &shared.worker_id,
        1,
        block_ms,
    )
    .await
}

/// Claims the first queue's worth of abandoned entries: idle past the lease and owned by
/// a worker whose heartbeat is older than the lease. Entries deleted while pending are
/// reported as lost.
async fn reclaim_abandoned(
    shared: &Shared,
    conn: &mut SharedConnection,
    queues: &[&str],
    count: usize,
) -> Result<Vec<Fetched>, FetchError> {
    let lease_ms = shared.config.lease_ttl.as_millis() as u64;
    for queue in queues {
        let found = fetch::reclaim(
            conn,
            &shared.keys,
            queue,
            &shared.worker_id,
            lease_ms,
            count,
        )
        .await?;
        if !found.lost.is_empty() {
            tracing::error!(queue = %queue, lost = ?found.lost,
                "jobs lost: entries were deleted from the stream while still pending");
            if let Err(e) = fetch::report_lost(conn, &shared.keys, queue, &found.lost).await {
                tracing::error!(queue = %queue, "could not record the lost jobs for alerting: {e}");
            }
        }
        // An entry of a job this worker is still running (its refresh was held up, say
        // by a frozen Redis) is ours already: claiming it reset its idle time, and
        // starting it again would run the job twice.
        let entries: Vec<Fetched> = found
            .entries
            .into_iter()
            .filter(|f| {
                !shared
                    .inflight
                    .claim_own(&f.queue, &f.entry.entry_id, f.delivery)
            })
            .collect();
        if !entries.is_empty() {
            tracing::info!(queue = %queue, reclaimed = entries.len(),
                "reclaimed entries from workers that stopped responding");
            return Ok(entries);
        }
    }
    Ok(Vec::new())
}

/// Sleeps `delay` (or until shutdown), doubling it for next time up to the maximum.
async fn back_off(shutdown: &Shutdown, delay: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*delay) => {}
        _ = shutdown.triggered() => {}
    }
    *delay = (*delay * 2).min(MAX_ERROR_DELAY);
}
