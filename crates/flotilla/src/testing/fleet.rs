//! An in-process fleet for tests: a producer, workers on the test's runtime and an admin
//! handle, in a namespace of their own on a [`TestRedis`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flotilla_admin::{Admin, DeadFilter, DeadLetter};
use flotilla_producer::{IntoNewJob, Producer};
use flotilla_proto::{Backoff, JobOutput, JobPolicy, JobRecord, Keys, Shutdown};
use flotilla_worker::{QueueWeight, Registry, Worker, WorkerConfig, WorkerError};
use tokio::task::JoinHandle;

use super::{TestError, TestRedis};

/// How long [`TestFleet::run`] and [`TestFleet::drain`] wait unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How often [`TestFleet::drain`] looks at the queues.
const DRAIN_CHECK: Duration = Duration::from_millis(20);
/// The most dead letters [`TestFleet::dead`] reads.
const DEAD_READ: usize = 10_000;

/// The default job policy with retries 50 ms apart, so that failing jobs move along in a
/// test's time (a job's own backoff still applies).
pub fn fast_policy() -> JobPolicy {
    let mut policy = JobPolicy::default();
    policy.defaults.backoff = Backoff::Fixed(Duration::from_millis(50));
    policy
}

/// Worker settings for tests in `namespace`: heartbeats, leases, reads and promotion in
/// tens or hundreds of milliseconds rather than seconds, concurrency 4 and
/// [`fast_policy`].
pub fn fast_config(namespace: &str) -> WorkerConfig {
    WorkerConfig {
        namespace: namespace.to_owned(),
        concurrency: 4,
        heartbeat_interval: Duration::from_millis(200),
        lease_ttl: Duration::from_millis(1500),
        block_time: Duration::from_millis(200),
        promote_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        jobs: fast_policy(),
        ..WorkerConfig::default()
    }
}

/// A namespace no other fleet uses, even on a shared Redis.
fn fresh_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "flotilla-test-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One worker running on the test's runtime.
#[derive(Debug)]
struct RunningWorker {
    shutdown: Shutdown,
    task: JoinHandle<Result<(), WorkerError>>,
}

/// A Redis, a producer, workers and an admin handle sharing a namespace of their own.
/// Dropping it stops its workers and its Redis; [`TestFleet::stop`] also says whether the
/// workers stopped cleanly.
#[derive(Debug)]
pub struct TestFleet {
    producer: Producer,
    admin: Admin,
    namespace: String,
    workers: Vec<RunningWorker>,
    /// Dropped last: the workers and connections above use it.
    redis: TestRedis,
}

impl TestFleet {
    /// A fleet with one worker serving `registry` with [`fast_config`], on the queues
    /// `critical`, `default` and `low` and those its [`Job`](flotilla_proto::Job) types
    /// name.
    pub async fn start(registry: Registry) -> Result<Self, TestError> {
        let mut fleet = Self::without_workers().await?;
        let config = fast_config(&fleet.namespace);
        fleet.add_worker(config, registry).await?;
        Ok(fleet)
    }

    /// A fleet with no worker yet: enqueue first, then [`TestFleet::add_worker`].
    pub async fn without_workers() -> Result<Self, TestError> {
        let redis = TestRedis::start().await?;
        let namespace = fresh_namespace();
        let conn = redis.connect().await?;
        let producer = Producer::new(conn.clone(), Keys::new(&namespace), fast_policy());
        let admin = Admin::new(conn, Keys::new(&namespace));
        Ok(Self {
            producer,
            admin,
            namespace,
            workers: Vec::new(),
            redis,
        })
    }

    /// Starts one more worker with `config` (its namespace is set to the fleet's, and the
    /// queues its registry's [`Job`](flotilla_proto::Job) types name are added to those it
    /// serves).
    pub async fn add_worker(
        &mut self,
        mut config: WorkerConfig,
        registry: Registry,
    ) -> Result<(), TestError> {
        config.namespace = self.namespace.clone();
        for queue in registry.job_queues() {
            if !config.queues.iter().any(|q| q.name == queue) {
                config.queues.push(QueueWeight::new(&queue, 1));
            }
        }
        let worker = Worker::connect(self.redis.url(), config, registry).await?;
        let shutdown = Shutdown::new();
        let task = tokio::spawn(worker.run(shutdown.clone()));
        self.workers.push(RunningWorker { shutdown, task });
        Ok(())
    }

    /// The fleet's producer: enqueue, read back, wait, cancel.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// An admin handle on the fleet's namespace: stats, listing, retrying, deleting.
    pub fn admin(&self) -> Admin {
        self.admin.clone()
    }

    /// The fleet's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Redis URL, for a part the test starts itself.
    pub fn url(&self) -> &str {
        self.redis.url()
    }

    /// Enqueues `job` and waits up to [`DEFAULT_WAIT`] for it to end: its record, completed,
    /// dead or cancelled.
    pub async fn run(&self, job: impl IntoNewJob) -> Result<JobRecord, TestError> {
        let enqueued = self.producer.enqueue(job).await?;
        self.wait(&enqueued.full_id(), DEFAULT_WAIT).await
    }

    /// Enqueues `job` and waits up to [`DEFAULT_WAIT`] for its result, decoded as its
    /// type's declared output; a job that died or was cancelled is an error naming its
    /// last error.
    pub async fn output<J: JobOutput>(&self, job: &J) -> Result<J::Output, TestError> {
        let enqueued = self.producer.enqueue(job).await?;
        Ok(self
            .producer
            .wait_output::<J>(&enqueued.full_id(), DEFAULT_WAIT)
            .await?)
    }

    /// Waits up to `timeout` for the job `id` (a full id, or an own id) to end, and
    /// answers its record whether it completed, died or was cancelled.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobRecord, TestError> {
        use flotilla_producer::ProducerError::{Failed, WaitTimedOut};
        match self.producer.wait(id, timeout).await {
            Ok(record) => Ok(record),
            // Ending any way is an end; the caller asserts which.
            Err(Failed { .. }) => self.status(id).await,
            Err(WaitTimedOut { status, .. }) => Err(TestError::TimedOut {
                what: format!(
                    "job {id} ending (last seen {})",
                    status.map_or("nowhere", |s| s.as_str())
                ),
                waited: timeout,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The job `id`'s record now.
    pub async fn status(&self, id: &str) -> Result<JobRecord, TestError> {
        self.producer.status(id).await?.ok_or_else(|| {
            TestError::Producer(flotilla_producer::ProducerError::NoSuchJob(id.to_owned()))
        })
    }

    /// Waits up to `timeout` until no job of any queue waits, runs, or waits for its time
    /// or a retry: everything enqueued so far has ended.
    pub async fn drain(&self, timeout: Duration) -> Result<(), TestError> {
        let deadline = Instant::now() + timeout;
        let mut admin = self.admin();
        loop {
            let busy: Vec<String> = admin
                .queue_stats()
                .await?
                .into_iter()
                .filter(|q| {
                    q.state.pending + q.state.running + q.state.scheduled + q.state.waiting
                        + q.retrying
                        > 0
                })
                .map(|q| {
                    format!(
                        "{}: {} waiting, {} running, {} scheduled, {} retrying, {} waiting for parents",
                        q.queue,
                        q.state.pending,
                        q.state.running,
                        q.state.scheduled,
                        q.retrying,
                        q.state.waiting
                    )
                })
                .collect();
            if busy.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestError::TimedOut {
                    what: format!("draining ({})", busy.join("; ")),
                    waited: timeout,
                });
            }
            tokio::time::sleep(DRAIN_CHECK).await;
        }
    }

    /// The dead letters of every queue, newest first.
    pub async fn dead(&self) -> Result<Vec<DeadLetter>, TestError> {
        Ok(self
            .admin()
            .dead_list(&DeadFilter::default(), DEAD_READ)
            .await?)
    }

    /// Stops every worker gracefully (each finishes what it runs) and the Redis; says
    /// whether a worker failed.
    pub async fn stop(mut self) -> Result<(), TestError> {
        for worker in &self.workers {
            worker.shutdown.trigger();
        }
        for worker in self.workers.drain(..) {
            match worker.task.await {
                Ok(ran) => ran?,
                Err(e) => return Err(TestError::WorkerTask(e.to_string())),
            }
        }
        Ok(())
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.shutdown.trigger();
            worker.task.abort();
        }
    }
}
