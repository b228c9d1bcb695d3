//! One Redis and one namespace, from which a service makes its producers, workers and
//! admin handles, so that they share a connection and never disagree on the namespace
//! or the job policy.

use std::time::Duration;

use flotilla_proto::{JobPolicy, Keys, ProtoError, RedisTarget, SharedConnection, TargetError};

/// How long a call on the shared connection may take: a producer's bulk pipeline or wait
/// for replicas, the slowest calls made on it, may take longer than redis-rs's 500 ms.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a [`Client`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Redis did not answer.
    #[error("cannot reach Redis at {redis}: {reason}")]
    Unreachable {
        /// Where Redis was looked for, with any password hidden.
        redis: String,
        /// What failed.
        reason: String,
    },
    /// The namespace is not a name Flotilla takes.
    #[error(transparent)]
    Namespace(#[from] ProtoError),
}

/// A Redis, a namespace and a job policy: `Client::connect(url).await?.in_namespace("billing")?`,
/// then [`Client::producer`], [`Client::worker`] and (feature `admin`) `Client::admin`.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use flotilla::{Client, Registry, Shutdown, WorkerConfig};
///
/// let client = Client::connect("redis://127.0.0.1:6379").await?.in_namespace("billing")?;
/// let producer = client.producer();
/// let worker = client.worker(WorkerConfig::default(), Registry::with_builtins()).await?;
/// tokio::spawn(worker.run(Shutdown::new()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    target: RedisTarget,
    conn: SharedConnection,
    keys: Keys,
    policy: JobPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("redis", &self.target.shown())
            .field("namespace", &self.keys.namespace())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `target` (a URL or a [`RedisTarget`]) now, in the default namespace with
    /// the default job policy; the error says why Redis cannot be reached.
    pub async fn connect(
        target: &(impl flotilla_proto::ToRedisTarget + ?Sized),
    ) -> Result<Self, ClientError> {
        let target = target.to_redis_target()?;
        let conn = SharedConnection::connect_waiting(&target, RESPONSE_TIMEOUT)
            .await
            .map_err(|e| ClientError::Unreachable {
                redis: target.shown().to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            target,
            conn,
            keys: Keys::default(),
            policy: JobPolicy::default(),
        })
    }

    /// The same client in `namespace` (its keys start `<namespace>:`), so that services,
    /// or tests, sharing one Redis never see each other's jobs.
    pub fn in_namespace(mut self, namespace: &str) -> Result<Self, ClientError> {
        flotilla_proto::check_name("namespace", namespace)?;
        self.keys = Keys::new(namespace);
        Ok(self)
    }

    /// The same client with `policy` (limits, retention, job defaults) for everything it
    /// makes.
    pub fn with_policy(mut self, policy: JobPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The namespace's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The shared connection, for a part built by hand.
    pub fn connection(&self) -> SharedConnection {
        self.conn.clone()
    }

    /// A producer on the shared connection, in the client's namespace, with its policy.
    #[cfg(feature = "producer")]
    pub fn producer(&self) -> flotilla_producer::Producer {
        flotilla_producer::Producer::new(self.conn.clone(), self.keys.clone(), self.policy.clone())
    }

    /// A worker serving `registry` with `config`, in the client's namespace and with its
    /// policy (`config.namespace` and `config.jobs` are set from the client). A worker
    /// opens connections of its own for its blocking reads.
    #[cfg(feature = "worker")]
    pub async fn worker(
        &self,
        mut config: flotilla_worker::WorkerConfig,
        registry: flotilla_worker::Registry,
    ) -> Result<flotilla_worker::Worker, flotilla_worker::WorkerError> {
        config.namespace = self.keys.namespace().to_owned();
        config.jobs = self.policy.clone();
        flotilla_worker::Worker::connect(&self.target, config, registry).await
    }

    /// An admin handle on the shared connection and the client's namespace, showing jobs
    /// that leave their attempts, timeout or backoff unset with the policy's defaults.
    #[cfg(feature = "admin")]
    pub fn admin(&self) -> flotilla_admin::Admin {
        flotilla_admin::Admin::new(self.conn.clone(), self.keys.clone())
            .with_defaults(self.policy.defaults.clone())
    }
}
