//! The worker: wires the fetch loop, handler tasks, outcome writer, heartbeat and
//! promotion together, and runs the graceful shutdown of rule 8.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use flotilla_proto::{Keys, SharedConnection, ToRedisTarget};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fetch::connections::{BlockingReads, shared_connection};
use crate::fetch::fetch_loop;
use crate::fetch::reads as fetch;
use crate::fetch::served::Served;
use crate::flow::Flow;
use crate::flow::holds::{GiveBack, Holds};
use crate::metrics::WorkerMetrics;
use crate::promoter::{PromoteWake, Promoter};
use crate::run::completer::Completer;
use crate::run::heartbeat::{self, Heartbeat, now_ms};
use crate::run::inflight::InFlight;
use crate::run::slots::RunPace;
use crate::shared::Shared;
use crate::{Registry, Shutdown, WorkerConfig, WorkerError};

/// How long outcome writes may keep retrying after the drain before the worker exits.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

/// A worker process's runtime. Build with [`Worker::connect`], then [`Worker::run`].
pub struct Worker {
    conn: SharedConnection,
    /// Where Redis is, with the password hidden, for log lines.
    redis: String,
    blocking: BlockingReads,
    keys: Keys,
    config: WorkerConfig,
    registry: Registry,
    id: String,
    metrics: Arc<WorkerMetrics>,
    draining: Arc<AtomicBool>,
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
    /// Prepares a worker for the Redis at `target`: a URL or a [`flotilla_proto::RedisTarget`].
    /// Connections are made lazily, so this succeeds while Redis is still starting; the
    /// worker keeps trying once it runs.
    pub async fn connect(
        target: &(impl ToRedisTarget + ?Sized),
        config: WorkerConfig,
        registry: Registry,
    ) -> Result<Self, WorkerError> {
        config.validate().map_err(WorkerError::Config)?;
        let target = target.to_redis_target()?;
        let conn = shared_connection(&target)?;
        let redis = target.shown().to_owned();
        let blocking = BlockingReads::new(target, config.block_time)?;
        let keys = Keys::new(config.namespace.clone());
        let id = flotilla_proto::instance_id();
        Ok(Self {
            conn,
            redis,
            blocking,
            keys,
            config,
            registry,
            id,
            metrics: Arc::default(),
            draining: Arc::default(),
        })
    }

    /// This worker's metrics, to register with the registry `/metrics` serves.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// What a readiness probe asks: whether this worker can reach Redis and is serving.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            conn: self.conn.clone(),
            draining: Arc::clone(&self.draining),
        }
    }

    /// This worker's consumer name and registry id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serves jobs until `shutdown` fires, then drains: running jobs get the grace period
    /// to finish, the rest are handed back, and the worker leaves its consumer groups.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), WorkerError> {
        tracing::info!(worker = %self.id, queues = ?self.config.queues.iter().map(|q| &q.name).collect::<Vec<_>>(),
            concurrency = self.config.concurrency, handlers = ?self.registry.types(), "worker starting");
        let blocking = self.blocking.clone();
        let draining = Arc::clone(&self.draining);
        let mut conn = self.conn.clone();
        let redis = self.redis.clone();
        tokio::spawn(
            async move { flotilla_proto::connect::warn_if_unsafe(&mut conn, &redis).await },
        );
        // A queue paused before this worker started stays paused for it: nothing is
        // fetched until the paused set has been read (a rolling deploy starts workers
        // while operators hold queues).
        let (holds, given_back) = Holds::new();
        let flow = Arc::new(Flow::new(holds, self.config.concurrency));
        let Some(paused) = read_gates(&mut self.conn.clone(), &self.keys, &flow, &shutdown).await
        else {
            tracing::info!(worker = %self.id, "stopped before serving");
            return Ok(());
        };
        let (shared, background) = self.start_background(paused, flow, given_back);
        fetch_loop::fetch_loop(&shared, &blocking, &shutdown).await;
        draining.store(true, Ordering::Release);
        drain(&shared).await;
        background.finish(shared).await;
        Ok(())
    }

    /// Starts the outcome writer, the heartbeat, the promoter and the giving back of
    /// concurrency slots.
    fn start_background(
        self,
        paused: HashSet<String>,
        flow: Arc<Flow>,
        given_back: mpsc::UnboundedReceiver<(String, u64)>,
    ) -> (Arc<Shared>, Background) {
        let Worker {
            conn,
            keys,
            config,
            registry,
            id,
            metrics,
            ..
        } = self;
        let inflight = InFlight::counted(metrics.in_flight().clone());
        let (completions, rx) = mpsc::channel(config.concurrency * 2 + 16);
        let wake = Arc::new(PromoteWake::default());
        let completer = Completer {
            conn: conn.clone(),
            keys: keys.clone(),
            config: config.clone(),
            inflight: inflight.clone(),
            worker_id: id.clone(),
            promote_wake: Arc::clone(&wake),
        };
        let stop = CancellationToken::new();
        let heartbeat = Heartbeat {
            conn: conn.clone(),
            keys: keys.clone(),
            config: config.clone(),
            worker_id: id.clone(),
            inflight: inflight.clone(),
            started_at: now_ms(),
            flow: Arc::clone(&flow),
        };
        let give_back = GiveBack {
            conn: conn.clone(),
            keys: keys.clone(),
            worker_id: id.clone(),
            lease: config.lease_ttl,
            flow: Arc::clone(&flow),
        };
        let paused = Arc::new(RwLock::new(paused));
        let served = Arc::new(Served::new(&config.queues));
        let promoter = Promoter {
            conn: conn.clone(),
            keys: keys.clone(),
            interval: config.promote_interval,
            served: Arc::clone(&served),
            paused: Arc::clone(&paused),
            flow: Arc::clone(&flow),
            wake,
        }
        .run(stop.clone());
        let background = Background {
            completer: tokio::spawn(completer.run(rx)),
            heartbeat: tokio::spawn(heartbeat.run(stop.clone())),
            promoter: tokio::spawn(promoter),
            give_back: tokio::spawn(give_back.run(given_back, stop.clone())),
            stop,
        };
        let shared = Arc::new(Shared {
            conn,
            keys,
            config,
            registry,
            worker_id: id,
            inflight,
            completions,
            handback: CancellationToken::new(),
            tracker: TaskTracker::new(),
            pace: RunPace::default(),
            start_line: crate::run::start_line::StartLine::new(),
            metrics,
            served,
            paused,
            flow,
        });
        (shared, background)
    }
}

/// Whether a worker can serve: it reaches Redis and is not draining. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    conn: SharedConnection,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("draining", &self.draining.load(Ordering::Acquire))
            .finish()
    }
}

impl Readiness {
    /// `Ok` when ready; otherwise why not, in a sentence for the probe's body.
    pub async fn check(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("draining: finishing its running jobs before it exits".into());
        }
        let mut conn = self.conn.clone();
        flotilla_proto::redis_answers(flotilla_proto::ping(&mut conn)).await
    }
}

/// Rule 8: no more fetching; running jobs get the grace period, then go back.
async fn drain(shared: &Shared) {
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
}

/// The tasks that run beside the fetch loop, and what they share with it.
struct Background {
    completer: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
    promoter: JoinHandle<()>,
    give_back: JoinHandle<()>,
    /// Stops the heartbeat, the promoter and the giving back of slots.
    stop: CancellationToken,
}

impl Background {
    /// After the drain: writes the last outcomes, stops the heartbeat and the promoter,
    /// waits for ending exec process groups and leaves the consumer groups.
    async fn finish(self, shared: Arc<Shared>) {
        let mut conn = shared.conn.clone();
        let (keys, streams, worker_id) = (
            shared.keys.clone(),
            shared.served.streams(),
            shared.worker_id.clone(),
        );
        // The completer ends once every sender, the one in `shared` included, is gone.
        drop(shared);
        if tokio::time::timeout(FINAL_FLUSH, self.completer)
            .await
            .is_err()
        {
            tracing::error!(
                "some outcomes could not be written; their entries stay pending for reclaim"
            );
        }
        self.stop.cancel();
        let _ = tokio::join!(self.heartbeat, self.promoter, self.give_back);
        // An exec job stopped at hand-back gets its SIGKILL if it ignores SIGTERM.
        #[cfg(feature = "exec")]
        crate::builtin::wait_for_ending_groups(crate::builtin::DEFAULT_KILL_GRACE * 2).await;
        if let Err(e) = heartbeat::deregister(&mut conn, &keys, &streams, &worker_id).await {
            tracing::warn!("could not leave the consumer groups cleanly: {e}");
        }
        tracing::info!(worker = %worker_id, "worker stopped");
    }
}

/// The paused set and the flow limits (into `flow`), read until Redis answers; `None` if
/// the worker is told to stop first.
async fn read_gates(
    conn: &mut SharedConnection,
    keys: &Keys,
    flow: &Flow,
    shutdown: &Shutdown,
) -> Option<HashSet<String>> {
    let mut warned = false;
    loop {
        let read = match fetch::paused(conn, keys).await {
            Ok(paused) => flow
                .refresh(conn, keys)
                .await
                .map(|()| paused)
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        match read {
            Ok(paused) => return Some(paused),
            Err(e) if !warned => {
                tracing::warn!(
                    "cannot read the paused queues and flow limits yet (will retry before serving): {e}"
                );
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.triggered() => return None,
        }
    }
}
