//! The worker: wires the fetch loop, handler tasks, outcome writer, heartbeat and
//! promotion together, and runs the graceful shutdown of rule 8.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flotilla_proto::Keys;
use redis::aio::ConnectionManager;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::completer::{Completer, Completion};
use crate::connections::{BlockingPool, blocking_pool, shared_connection};
use crate::fetch::{self, FetchError, Fetched};
use crate::heartbeat::{self, Heartbeat, now_ms};
use crate::inflight::InFlight;
use crate::lottery::fetch_order;
use crate::{Registry, Shutdown, WorkerConfig, WorkerError, runner};

/// Entries asked for in one read at most, however many slots are free.
const MAX_FETCH: usize = 256;
/// Due delayed jobs moved per queue per promotion pass.
const PROMOTE_BATCH: usize = 1000;
/// How long outcome writes may keep retrying after the drain before the worker exits.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

/// What the fetch loop and the handler tasks share.
pub(crate) struct Shared {
    pub conn: ConnectionManager,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub registry: Registry,
    pub worker_id: String,
    pub inflight: InFlight,
    pub completions: mpsc::Sender<Completion>,
    /// Fired when the shutdown grace period ends: running jobs are handed back.
    pub handback: CancellationToken,
    pub tracker: TaskTracker,
}

/// A worker process's runtime. Build with [`Worker::connect`], then [`Worker::run`].
pub struct Worker {
    conn: ConnectionManager,
    pool: BlockingPool,
    keys: Keys,
    config: WorkerConfig,
    registry: Registry,
    id: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish()
    }
}

impl Worker {
    /// Prepares a worker for the Redis at `url`. Connections are made lazily, so this
    /// succeeds while Redis is still starting; the worker keeps trying once it runs.
    pub async fn connect(
        url: &str,
        config: WorkerConfig,
        registry: Registry,
    ) -> Result<Self, WorkerError> {
        config.validate().map_err(WorkerError::Config)?;
        let client = redis::Client::open(url)?;
        let conn = shared_connection(client.clone())?;
        let pool = blocking_pool(client, config.block_time, 2);
        let keys = Keys::new(config.namespace.clone());
        let id = flotilla_proto::instance_id();
        Ok(Self {
            conn,
            pool,
            keys,
            config,
            registry,
            id,
        })
    }

    /// This worker's consumer name and registry id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serves jobs until `shutdown` fires, then drains: running jobs get the grace period
    /// to finish, the rest are handed back, and the worker leaves its consumer groups.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), WorkerError> {
        let Worker {
            conn,
            pool,
            keys,
            config,
            registry,
            id,
        } = self;
        tracing::info!(worker = %id, queues = ?config.queues.iter().map(|q| &q.name).collect::<Vec<_>>(),
            concurrency = config.concurrency, handlers = ?registry.types(), "worker starting");
        let inflight = InFlight::default();
        let (tx, rx) = mpsc::channel(config.concurrency * 2 + 16);
        let completer = tokio::spawn(
            Completer {
                conn: conn.clone(),
                keys: keys.clone(),
                config: config.clone(),
                inflight: inflight.clone(),
            }
            .run(rx),
        );
        let background = CancellationToken::new();
        let heartbeat = tokio::spawn(
            Heartbeat {
                conn: conn.clone(),
                keys: keys.clone(),
                config: config.clone(),
                worker_id: id.clone(),
                inflight: inflight.clone(),
                started_at: now_ms(),
            }
            .run(background.clone()),
        );
        let paused = Arc::new(RwLock::new(HashSet::new()));
        let promoter = tokio::spawn(promote_loop(
            conn.clone(),
            keys.clone(),
            config.clone(),
            Arc::clone(&paused),
            background.clone(),
        ));
        let shared = Arc::new(Shared {
            conn,
            keys,
            config,
            registry,
            worker_id: id,
            inflight,
            completions: tx,
            handback: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });

        fetch_loop(&shared, &pool, &paused, &shutdown).await;

        // Rule 8: no more fetching; running jobs get the grace period, then go back.
        let running = shared.inflight.len();
        tracing::info!(running, grace = ?shared.config.shutdown_grace, "draining");
        shared.tracker.close();
        if tokio::time::timeout(shared.config.shutdown_grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = shared.inflight.len(),
                "grace period over: handing back running jobs"
            );
            shared.handback.cancel();
            shared.tracker.wait().await;
        }
        let mut conn = shared.conn.clone();
        let (keys, config, worker_id) = (
            shared.keys.clone(),
            shared.config.clone(),
            shared.worker_id.clone(),
        );
        drop(shared);
        if tokio::time::timeout(FINAL_FLUSH, completer).await.is_err() {
            tracing::error!(
                "some outcomes could not be written; their entries stay pending for reclaim"
            );
        }
        background.cancel();
        let _ = tokio::join!(heartbeat, promoter);
        // An exec job stopped at hand-back gets its SIGKILL if it ignores SIGTERM.
        crate::builtin::wait_for_ending_groups(crate::builtin::DEFAULT_KILL_GRACE * 2).await;
        if let Err(e) = heartbeat::deregister(&mut conn, &keys, &config, &worker_id).await {
            tracing::warn!("could not leave the consumer groups cleanly: {e}");
        }
        tracing::info!(worker = %worker_id, "worker stopped");
        Ok(())
    }
}

async fn fetch_loop(
    shared: &Arc<Shared>,
    pool: &BlockingPool,
    paused: &RwLock<HashSet<String>>,
    shutdown: &Shutdown,
) {
    let slots = Arc::new(Semaphore::new(shared.config.concurrency));
    let all: Vec<&str> = shared
        .config
        .queues
        .iter()
        .map(|q| q.name.as_str())
        .collect();
    let mut groups_ready = false;
    let mut error_delay = Duration::from_millis(100);
    let mut next_reclaim = Instant::now();
    let mut conn = shared.conn.clone();
    while !shutdown.is_triggered() {
        if !groups_ready {
            match fetch::ensure_groups(&mut conn, &shared.keys, &all).await {
                Ok(()) => groups_ready = true,
                Err(e) => {
                    tracing::warn!(
                        "cannot set up consumer groups, retrying in {error_delay:?}: {e}"
                    );
                    pause(shutdown, &mut error_delay).await;
                    continue;
                }
            }
        }
        let first = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.triggered() => return,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_FETCH {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let active: Vec<usize> = {
            let paused = paused.read().unwrap_or_else(|p| p.into_inner());
            (0..all.len())
                .filter(|&i| !paused.contains(all[i]))
                .collect()
        };
        if active.is_empty() {
            drop(permits);
            tokio::select! {
                _ = tokio::time::sleep(shared.config.block_time) => {}
                _ = shutdown.triggered() => {}
            }
            continue;
        }
        let reclaim_due = Instant::now() >= next_reclaim;
        if reclaim_due {
            next_reclaim = Instant::now() + shared.config.heartbeat_interval;
        }
        match fetch_once(shared, pool, &mut conn, &active, permits.len(), reclaim_due).await {
            Ok(fetched) if fetched.is_empty() => {}
            Ok(fetched) => runner::dispatch(shared, fetched, permits, &slots, shutdown).await,
            Err(e) if e.is_no_group() => {
                // Redis came back without our data (or the stream was deleted): make the
                // groups again now rather than after the backoff of the outage.
                tracing::warn!("consumer group missing (Redis lost its data?): creating it again");
                groups_ready = false;
                error_delay = Duration::from_millis(100);
                continue;
            }
            Err(e) => {
                tracing::warn!("fetch failed, retrying in {error_delay:?}: {e}");
                pause(shutdown, &mut error_delay).await;
                continue;
            }
        }
        error_delay = Duration::from_millis(100);
    }
}

/// One fetch: reclaimed entries first (when due), then ready ones in lottery order, else
/// a blocking wait on every active queue.
async fn fetch_once(
    shared: &Shared,
    pool: &BlockingPool,
    conn: &mut ConnectionManager,
    active: &[usize],
    count: usize,
    reclaim_due: bool,
) -> Result<Vec<Fetched>, FetchError> {
    let config = &shared.config;
    let queues: Vec<&str> = active
        .iter()
        .map(|&i| config.queues[i].name.as_str())
        .collect();
    if reclaim_due {
        // An entry idle past the lease, owned by a worker whose heartbeat is older than
        // the lease, is abandoned.
        let lease_ms = config.lease_ttl.as_millis() as u64;
        for queue in &queues {
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
                .filter(|f| !shared.inflight.contains_entry(&f.queue, &f.entry.entry_id))
                .collect();
            if !entries.is_empty() {
                tracing::info!(queue = %queue, reclaimed = entries.len(),
                    "reclaimed entries from workers that stopped responding");
                return Ok(entries);
            }
        }
    }
    let weights: Vec<_> = active.iter().map(|&i| config.queues[i].clone()).collect();
    let order: Vec<&str> = fetch_order(&weights, config.strict_priority, &mut rand::rng())
        .into_iter()
        .map(|i| queues[i])
        .collect();
    let ready = fetch::read_ready(conn, &shared.keys, &order, &shared.worker_id, count).await?;
    if !ready.is_empty() {
        return Ok(ready);
    }
    let block_ms = config.block_time.as_millis() as u64;
    fetch::read_blocking(pool, &shared.keys, &order, &shared.worker_id, block_ms).await
}

/// Promotes due delayed jobs and refreshes the paused set, every `promote_interval`.
async fn promote_loop(
    mut conn: ConnectionManager,
    keys: Keys,
    config: WorkerConfig,
    paused: Arc<RwLock<HashSet<String>>>,
    stop: CancellationToken,
) {
    let queues: Vec<&str> = config.queues.iter().map(|q| q.name.as_str()).collect();
    let mut ticker = tokio::time::interval(config.promote_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        match fetch::promote(&mut conn, &keys, &queues, PROMOTE_BATCH).await {
            Ok(0) => {}
            Ok(moved) => tracing::debug!(moved, "promoted due jobs"),
            Err(e) => tracing::debug!("promotion failed (will retry): {e}"),
        }
        if let Ok(now_paused) = fetch::paused(&mut conn, &keys).await {
            *paused.write().unwrap_or_else(|p| p.into_inner()) = now_paused;
        }
    }
}

/// Sleeps `delay` (or until shutdown), doubling it for next time up to 5 s.
async fn pause(shutdown: &Shutdown, delay: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*delay) => {}
        _ = shutdown.triggered() => {}
    }
    *delay = (*delay * 2).min(Duration::from_secs(5));
}
