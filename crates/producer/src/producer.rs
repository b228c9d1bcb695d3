//! The producer: turns [`NewJob`]s into enqueue-script calls, one at a time or pipelined.

use flotilla_proto::millis;
use std::time::UNIX_EPOCH;

use flotilla_proto::scripts::{
    self, Cancel, CancelReply, Debounce, Enqueue, EnqueueReply, ScriptError, UniqueLock, When,
};
use flotilla_proto::{
    JobPolicy, Keys, Status, check_duration_ms, check_expires_at_ms, check_job_id,
    check_max_attempts, check_name, check_run_at_ms, check_timeout_ms, field, new_job_id,
};
use flotilla_proto::{SharedConnection, ToRedisTarget};
use redis::aio::ConnectionLike;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::enqueued::{Enqueued, Outcome};
use crate::fast::{DepthGauge, enqueue_fast, is_fast};
use crate::job::Schedule;
use crate::placement::Placement;
use crate::{IntoNewJob, NewJob, ProducerError};
use flotilla_proto::connect::{Acknowledging, Replication};
use flotilla_proto::trace_context;
use tracing::Instrument;

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The job was stopped.
    Cancelled {
        /// The state it was in.
        was: Option<Status>,
    },
    /// The job had already finished; nothing changed.
    AlreadyFinished {
        /// How it finished.
        status: Option<Status>,
    },
    /// No job with that id in that queue.
    NotFound,
}

/// Enqueues jobs. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Producer {
    pub(crate) conn: SharedConnection,
    pub(crate) keys: Keys,
    pub(crate) policy: JobPolicy,
    /// Replicas that must acknowledge each enqueue, and how long to wait for them.
    replication: Option<Replication>,
    /// Queues this producer has listed in the fleet-wide set, so it lists each once.
    registered: Arc<Mutex<HashSet<String>>>,
    /// Queue depths seen by fast-path writes, for the length cap.
    pub(crate) depths: DepthGauge,
    /// Which partition of a partitioned queue each job goes to.
    pub(crate) placement: Arc<Placement>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("namespace", &self.keys.namespace())
            .field("policy", &self.policy)
            .finish()
    }
}

/// How long [`Producer::connect`]'s connection waits for a reply: a bulk pipeline, or a
/// WAIT for replicas, may take longer than redis-rs's 500 ms default.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Producer {
    /// A producer that checks jobs against `policy` (rule 10). Its defaults fill in the
    /// records it writes (jobs with an id, a unique key or a time); a fast-path entry
    /// carries only what its job sets, and its worker's defaults fill in the rest.
    pub fn new(conn: SharedConnection, keys: Keys, policy: JobPolicy) -> Self {
        Self {
            conn,
            keys,
            policy,
            replication: None,
            registered: Arc::default(),
            depths: DepthGauge::default(),
            placement: Arc::default(),
        }
    }

    /// Makes every enqueue wait until `replicas` replicas have the job, or `timeout`
    /// passes (Redis's `WAIT`). When fewer acknowledge in time, the enqueue returns
    /// [`ProducerError::NotReplicated`] with the job's id: the job exists, and is lost only
    /// if the primary fails before it reaches a replica. Each waiting enqueue holds the
    /// shared connection until its replicas answer, so give waiting producers their own;
    /// `timeout` must stay below the connection's response timeout (5 s with
    /// [`Producer::connect`]).
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: std::time::Duration) -> Self {
        self.replication = (replicas > 0).then_some(Replication { replicas, timeout });
        self
    }

    /// Connects to `target`, a URL or a [`flotilla_proto::RedisTarget`], with the default
    /// namespace and job policy.
    pub async fn connect(target: &(impl ToRedisTarget + ?Sized)) -> Result<Self, ProducerError> {
        let target = target.to_redis_target()?;
        let conn = SharedConnection::connect_waiting(&target, RESPONSE_TIMEOUT).await?;
        Ok(Self::new(conn, Keys::default(), JobPolicy::default()))
    }

    /// The same producer in namespace `namespace` instead (its keys start `<namespace>:`),
    /// so that services, or tests in one binary, sharing one Redis never see each other's
    /// jobs: `Producer::connect(url).await?.in_namespace("billing")?`. A name as
    /// [`flotilla_proto::check_name`] takes it.
    pub fn in_namespace(self, namespace: &str) -> Result<Self, ProducerError> {
        flotilla_proto::check_name("namespace", namespace)?;
        Ok(Self::new(self.conn, Keys::new(namespace), self.policy)
            .with_replication(self.replication))
    }

    /// The same producer with `policy` (limits, retention, job defaults) instead.
    pub fn with_policy(self, policy: JobPolicy) -> Self {
        Self::new(self.conn, self.keys, policy).with_replication(self.replication)
    }

    fn with_replication(mut self, replication: Option<Replication>) -> Self {
        self.replication = replication;
        self
    }

    /// The keys of the producer's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A clone of the producer's connection, for reads beside enqueueing.
    pub fn connection(&self) -> SharedConnection {
        self.conn.clone()
    }

    /// Enqueues one job: a typed [`Job`](crate::Job) as it is (`producer.enqueue(&SendEmail { … })`),
    /// or a [`NewJob`] with options (`NewJob::typed(&email)?.delay(…)`).
    ///
    /// On a partitioned queue the job goes to one partition (by its unique key, else its
    /// id, else in turn), and [`Enqueued::queue`] names that partition.
    ///
    /// A job to run now with no id, unique key or time of its own is one XADD carrying the
    /// whole job (its entry id becomes its id); any other goes through the enqueue script,
    /// which writes its record.
    ///
    /// With tracing on, each call is an `enqueue` span, and the job carries its context
    /// so that the span that runs it is its child.
    pub async fn enqueue(&self, job: impl IntoNewJob) -> Result<Enqueued, ProducerError> {
        let mut job = job.into_new_job()?;
        if !trace_context::enabled() {
            return self.enqueue_one(job).await;
        }
        let span = tracing::info_span!("enqueue", id = tracing::field::Empty,
            r#type = %job.job_type, queue = %job.queue);
        job.trace = trace_context::of_span(&span);
        let enqueued = self.enqueue_one(job).instrument(span.clone()).await;
        if let Ok(enqueued) = &enqueued {
            span.record("id", enqueued.id.as_str());
        }
        enqueued
    }

    async fn enqueue_one(&self, job: NewJob) -> Result<Enqueued, ProducerError> {
        if !job.parents.is_empty() {
            // A job that waits for others is a flow of one.
            let mut flow = crate::Flow::unnamed();
            flow.add(job)?;
            let mut created = self.enqueue_flow(flow).await?;
            return created
                .pop()
                .ok_or_else(|| ProducerError::Invalid("no reply for the enqueued job".into()));
        }
        let Some(wait) = self.replication else {
            return self.write_one(&mut self.conn.clone(), job).await;
        };
        let mut conn = Acknowledging::new(self.conn.clone(), wait);
        let enqueued = self.write_one(&mut conn, job).await?;
        replicated(enqueued, conn.acknowledged(), wait)
    }

    async fn write_one<C: ConnectionLike>(
        &self,
        conn: &mut C,
        mut job: NewJob,
    ) -> Result<Enqueued, ProducerError> {
        let id = self.check(&job)?;
        self.placement
            .place(&mut self.conn.clone(), &self.keys, &mut job)
            .await?;
        self.register_queue(&job.queue).await?;
        if is_fast(&job) {
            let mut results = enqueue_fast(
                conn,
                &self.keys,
                &self.policy,
                &self.depths,
                &job.queue,
                &[&job],
            )
            .await?;
            return results.pop().unwrap_or_else(|| {
                Err(ProducerError::Invalid(
                    "no reply for the enqueued job".into(),
                ))
            });
        }
        let reply = scripts::run(conn, &self.keys, &self.binding(&job, &id)).await;
        outcome(reply, id, &job.queue)
    }

    /// Enqueues many jobs, pipelined in batches. Each job gets its own result, in order:
    /// one full queue or bad payload does not fail the others.
    /// With tracing on, the call is one `enqueue_bulk` span that every job's run follows.
    pub async fn enqueue_bulk(
        &self,
        mut jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued, ProducerError>>, ProducerError> {
        if !trace_context::enabled() {
            return self.enqueue_many(jobs).await;
        }
        let span = tracing::info_span!("enqueue_bulk", jobs = jobs.len());
        let trace = trace_context::of_span(&span);
        for job in &mut jobs {
            job.trace.clone_from(&trace);
        }
        self.enqueue_many(jobs).instrument(span).await
    }

    async fn enqueue_many(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued, ProducerError>>, ProducerError> {
        let Some(wait) = self.replication else {
            return self.write_many(&mut self.conn.clone(), jobs).await;
        };
        let mut conn = Acknowledging::new(self.conn.clone(), wait);
        let results = self.write_many(&mut conn, jobs).await?;
        let acknowledged = conn.acknowledged();
        Ok(results
            .into_iter()
            .map(|result| result.and_then(|enqueued| replicated(enqueued, acknowledged, wait)))
            .collect())
    }

    /// Cancels a job that has not finished. A pending or scheduled job never runs; a running
    /// job's worker stops its handler within a second (it watches its queues' cancels) and its result is ignored.
    /// On a partitioned queue every partition is asked, the one the id places it in first.
    pub async fn cancel(&self, queue: &str, id: &str) -> Result<Cancelled, ProducerError> {
        let partitions = self
            .placement
            .candidates(&mut self.conn.clone(), &self.keys, queue, id)
            .await?;
        for partition in partitions {
            match self.cancel_in(&partition, id).await? {
                Cancelled::NotFound => continue,
                found => return Ok(found),
            }
        }
        Ok(Cancelled::NotFound)
    }

    /// Cancels `id` of one partition.
    async fn cancel_in(&self, queue: &str, id: &str) -> Result<Cancelled, ProducerError> {
        let mut conn = self.conn.clone();
        let cancel = Cancel {
            queue,
            job_id: id,
            retention_ms: millis(self.policy.retention.completed),
        };
        Ok(match scripts::run(&mut conn, &self.keys, &cancel).await? {
            CancelReply::Cancelled { was } => Cancelled::Cancelled { was },
            CancelReply::AlreadyFinished { status } => Cancelled::AlreadyFinished { status },
            CancelReply::NotFound => {
                // A fast-path job keeps no record once completed: its completion is in
                // the queue's `done` stream.
                match flotilla_proto::describe_job(
                    &mut conn,
                    &self.keys,
                    queue,
                    id,
                    &self.policy.defaults,
                )
                .await
                {
                    Ok(Some(record)) => Cancelled::AlreadyFinished {
                        status: record.status,
                    },
                    Ok(None) => Cancelled::NotFound,
                    Err(flotilla_proto::DescribeError::Redis(e)) => return Err(e.into()),
                    Err(flotilla_proto::DescribeError::Proto(e)) => return Err(e.into()),
                }
            }
        })
    }

    /// Records the queue in the fleet-wide set so workers and operators can find it. This
    /// key lives in another cluster slot, so it cannot share the enqueue script.
    pub(crate) async fn register_queue(&self, queue: &str) -> Result<(), ProducerError> {
        let listed = |registered: &Mutex<HashSet<String>>| {
            registered
                .lock()
                .map(|set| set.contains(queue))
                .unwrap_or(false)
        };
        if listed(&self.registered) {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        flotilla_proto::list_queues(&mut conn, &self.keys, &[queue]).await?;
        if let Ok(mut set) = self.registered.lock() {
            set.insert(queue.to_owned());
        }
        Ok(())
    }

    /// Checks a job against the protocol and the limits; returns its id (empty for a
    /// fast-path job, which its entry id names once written).
    pub(crate) fn check(&self, job: &NewJob) -> Result<String, ProducerError> {
        let size = job.payload.bytes.len();
        if size > self.policy.limits.max_payload_bytes {
            return Err(ProducerError::PayloadTooLarge {
                size,
                limit: self.policy.limits.max_payload_bytes,
            });
        }
        check_name(field::QUEUE, &job.queue)?;
        check_name(field::TYPE, &job.job_type)?;
        check_max_attempts(u64::from(
            job.max_attempts
                .unwrap_or(self.policy.defaults.max_attempts),
        ))?;
        check_timeout_ms(millis(job.timeout.unwrap_or(self.policy.defaults.timeout)))?;
        if let Some((key, hold)) = &job.unique {
            check_name("unique key", key)?;
            check_duration_ms("unique key's hold", millis(*hold))?;
        }
        if let Some((key, delay, max)) = &job.debounce {
            if job.unique.is_some() {
                return Err(ProducerError::Invalid(
                    "a debounced job cannot hold a unique key: debounce already runs one job per burst of its key".into(),
                ));
            }
            check_name("debounce key", key)?;
            if delay.is_zero() {
                return Err(ProducerError::Invalid(
                    "debounce delay: expected at least 1ms".into(),
                ));
            }
            check_duration_ms("debounce delay", millis(*delay))?;
            if let Some(max) = max {
                check_duration_ms("debounce max", millis(*max))?;
            }
        }
        match job.schedule {
            Some(Schedule::At(t)) if t < UNIX_EPOCH => {
                return Err(ProducerError::Invalid("run time is before 1970".into()));
            }
            Some(Schedule::At(t)) => {
                check_run_at_ms(millis(t.duration_since(UNIX_EPOCH).unwrap_or_default()))?;
            }
            Some(Schedule::After(delay)) => {
                check_duration_ms(field::DELAY, millis(delay))?;
            }
            None => {}
        }
        if let Some(backoff) = &job.backoff {
            backoff.check()?;
        }
        match job.expiry {
            Some(Schedule::At(t)) if t <= UNIX_EPOCH => {
                return Err(ProducerError::Invalid("expiry is not after 1970".into()));
            }
            Some(Schedule::At(t)) => {
                check_expires_at_ms(millis(t.duration_since(UNIX_EPOCH).unwrap_or_default()))?;
            }
            Some(Schedule::After(ttl)) if ttl.is_zero() => {
                return Err(ProducerError::Invalid(
                    "expires in: expected at least 1ms".into(),
                ));
            }
            Some(Schedule::After(ttl)) => {
                check_duration_ms("expires in", millis(ttl))?;
            }
            None => {}
        }
        if let Some(group) = &job.group {
            check_name(field::GROUP, group)?;
        }
        // A fast-path job is named by the entry id its XADD returns: no id is made for it.
        let id = match &job.id {
            Some(id) => id.clone(),
            None if is_fast(job) => return Ok(String::new()),
            None => new_job_id(),
        };
        check_job_id(&id)?;
        Ok(id)
    }

    /// The enqueue call for a checked job.
    pub(crate) fn binding<'a>(&'a self, job: &'a NewJob, id: &'a str) -> Enqueue<'a> {
        let when = when_of(job);
        Enqueue {
            queue: &job.queue,
            id,
            job_type: &job.job_type,
            payload: &job.payload,
            max_attempts: job
                .max_attempts
                .unwrap_or(self.policy.defaults.max_attempts),
            timeout_ms: millis(job.timeout.unwrap_or(self.policy.defaults.timeout)),
            backoff: job
                .backoff
                .as_ref()
                .unwrap_or(&self.policy.defaults.backoff),
            when,
            unique: job.unique.as_ref().map(|(key, ttl)| UniqueLock {
                key,
                ttl_ms: millis(*ttl),
                until_expiry: job.unique_until_expiry,
            }),
            debounce: job.debounce.as_ref().map(|(key, delay, max)| Debounce {
                key,
                delay_ms: millis(*delay),
                max_ms: max.map_or(0, millis),
            }),
            max_queue_len: self.policy.limits.max_queue_len,
            trace: &job.trace,
            expires_at_ms: job.expires_at_ms().unwrap_or(0),
            group: job.group.as_deref().unwrap_or_default(),
        }
    }
}

/// When a job may first run, as the enqueue script takes it.
pub(crate) fn when_of(job: &NewJob) -> When {
    match job.schedule {
        None => When::Now,
        Some(Schedule::At(t)) => When::At(millis(t.duration_since(UNIX_EPOCH).unwrap_or_default())),
        Some(Schedule::After(d)) => When::After(millis(d)),
    }
}

/// A job's enqueue reply as the producer answers it.
pub(crate) fn outcome(
    reply: Result<EnqueueReply, ScriptError>,
    id: String,
    queue: &str,
) -> Result<Enqueued, ProducerError> {
    let (id, outcome) = match reply? {
        EnqueueReply::Created => (id, Outcome::Created),
        EnqueueReply::Exists => (id, Outcome::Exists),
        EnqueueReply::Duplicate { holder } => (holder, Outcome::Duplicate),
        EnqueueReply::Debounced { into } => (into, Outcome::Debounced),
        EnqueueReply::QueueFull(detail) => return Err(ProducerError::QueueFull(detail)),
    };
    Ok(Enqueued {
        id,
        queue: queue.to_owned(),
        outcome,
    })
}

/// An enqueue that wanted `wait.replicas` replicas: done, or written but not replicated.
fn replicated(
    enqueued: Enqueued,
    acknowledged: u32,
    wait: Replication,
) -> Result<Enqueued, ProducerError> {
    if acknowledged >= wait.replicas {
        return Ok(enqueued);
    }
    Err(ProducerError::NotReplicated {
        id: enqueued.id,
        acknowledged,
        wanted: wait.replicas,
    })
}
