//! The producer: turns [`NewJob`]s into enqueue-script calls, one at a time or pipelined.

use std::time::{Duration, UNIX_EPOCH};

use flotilla_proto::scripts::{self, Call};
use flotilla_proto::{
    Backoff, CONSUMER_GROUP, Keys, PROTOCOL_VERSION, Status, check_max_attempts, check_name,
    check_timeout_ms, field, new_job_id,
};
use redis::aio::ConnectionManager;

use crate::{Job, NewJob, ProducerError};

/// Limits the producer enforces before anything reaches Redis (rule 10).
#[derive(Debug, Clone)]
pub struct ProducerLimits {
    /// Largest encoded payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// A queue holding this many jobs (ready plus delayed) refuses new ones; 0 = no cap.
    pub max_queue_len: u64,
    /// Attempts for jobs that do not say.
    pub default_max_attempts: u32,
    /// Attempt timeout for jobs that do not say.
    pub default_timeout: Duration,
    /// Backoff for jobs that do not say.
    pub default_backoff: Backoff,
    /// How long a cancelled job's record is kept.
    pub retention: Duration,
}

impl Default for ProducerLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 512 * 1024,
            max_queue_len: 1_000_000,
            default_max_attempts: 3,
            default_timeout: Duration::from_secs(30 * 60),
            default_backoff: Backoff::default(),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The job was stopped; `was` is the state it was in.
    Cancelled { was: Option<Status> },
    /// The job had already finished; nothing changed.
    AlreadyFinished { status: Option<Status> },
    /// No job with that id in that queue.
    NotFound,
}

/// What happened to an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new job was created.
    Created,
    /// Another job holds the unique key; `id` is that job's.
    Duplicate,
    /// A job with this id already exists; nothing was changed.
    Exists,
}

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    pub queue: String,
    pub outcome: Outcome,
}

/// Enqueues jobs. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Producer {
    conn: ConnectionManager,
    keys: Keys,
    limits: ProducerLimits,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("namespace", &self.keys.namespace())
            .field("limits", &self.limits)
            .finish()
    }
}

/// Jobs per pipeline in bulk enqueue: large enough to amortise round trips, small enough
/// not to hold the server for long.
const BULK_BATCH: usize = 500;

impl Producer {
    pub fn new(conn: ConnectionManager, keys: Keys, limits: ProducerLimits) -> Self {
        Self { conn, keys, limits }
    }

    /// Connects to `url` with the default namespace and limits.
    pub async fn connect(url: &str) -> Result<Self, ProducerError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self::new(conn, Keys::default(), ProducerLimits::default()))
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A clone of the producer's connection, for reads beside enqueueing.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A typed job, ready for options and [`Producer::enqueue`].
    pub fn typed<J: Job>(&self, job: &J) -> Result<NewJob, ProducerError> {
        Ok(NewJob::typed(job)?)
    }

    /// Enqueues one job.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, ProducerError> {
        let (call, id) = self.call_for(&job)?;
        self.register_queue(&job.queue).await?;
        let mut conn = self.conn.clone();
        let reply: Vec<String> = call.invoke(&mut conn).await.map_err(queue_full)?;
        outcome(reply, id, &job.queue)
    }

    /// Enqueues many jobs, pipelined in batches. Each job gets its own result, in order:
    /// one full queue or bad payload does not fail the others.
    pub async fn enqueue_bulk(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Result<Enqueued, ProducerError>>, ProducerError> {
        let mut queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            self.register_queue(queue).await?;
        }
        let mut results = Vec::with_capacity(jobs.len());
        let mut conn = self.conn.clone();
        for batch in jobs.chunks(BULK_BATCH) {
            let mut commands = Vec::with_capacity(batch.len());
            let mut pending = Vec::with_capacity(batch.len());
            for job in batch {
                match self.call_for(job) {
                    Ok((call, id)) => {
                        commands.push(call.cmd());
                        pending.push(Ok((id, job.queue.clone())));
                    }
                    Err(e) => pending.push(Err(e)),
                }
            }
            let mut replies = scripts::exec_pipeline(&mut conn, &commands)
                .await?
                .into_iter();
            for item in pending {
                results.push(item.and_then(|(id, queue)| {
                    let reply = replies.next().unwrap_or_else(|| {
                        Err(redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "pipeline returned fewer replies than commands",
                        )))
                    });
                    let reply: Vec<String> = reply
                        .and_then(|v| redis::from_redis_value(v).map_err(redis::RedisError::from))
                        .map_err(queue_full)?;
                    outcome(reply, id, &queue)
                }));
            }
        }
        Ok(results)
    }

    /// Cancels a job that has not finished. A pending or scheduled job never runs; a running
    /// job's worker stops its handler at its next heartbeat and its result is ignored.
    pub async fn cancel(&self, queue: &str, id: &str) -> Result<Cancelled, ProducerError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = Call::new(&scripts::CANCEL)
            .key(self.keys.stream(queue))
            .key(self.keys.job(queue, id))
            .key(self.keys.delayed(queue))
            .key(self.keys.index(queue, Status::Cancelled))
            .arg(CONSUMER_GROUP)
            .arg(self.limits.retention.as_millis() as u64)
            .invoke(&mut conn)
            .await?;
        let status = |i: usize| reply.get(i).and_then(|s| s.parse::<Status>().ok());
        Ok(match reply.first().map(String::as_str) {
            Some("cancelled") => Cancelled::Cancelled { was: status(1) },
            Some("finished") => Cancelled::AlreadyFinished { status: status(1) },
            _ => Cancelled::NotFound,
        })
    }

    /// Records the queue in the fleet-wide set so workers and operators can find it. This
    /// key lives in another cluster slot, so it cannot share the enqueue script.
    async fn register_queue(&self, queue: &str) -> Result<(), ProducerError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("SADD")
            .arg(self.keys.queues())
            .arg(queue)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    fn call_for(&self, job: &NewJob) -> Result<(Call, String), ProducerError> {
        let size = job.payload.bytes.len();
        if size > self.limits.max_payload_bytes {
            return Err(ProducerError::PayloadTooLarge {
                size,
                limit: self.limits.max_payload_bytes,
            });
        }
        check_name(field::QUEUE, &job.queue)?;
        check_name(field::TYPE, &job.job_type)?;
        let max_attempts = check_max_attempts(u64::from(
            job.max_attempts.unwrap_or(self.limits.default_max_attempts),
        ))?;
        let id = job.id.clone().unwrap_or_else(new_job_id);
        check_name(field::ID, &id)?;
        let run_at_ms = match job.run_at {
            None => 0,
            Some(t) => t
                .duration_since(UNIX_EPOCH)
                .map_err(|_| ProducerError::Invalid("run time is before 1970".into()))?
                .as_millis()
                .max(1),
        };
        let delay_ms = job.delay.map_or(0, |d| d.as_millis());
        let timeout = job.timeout.unwrap_or(self.limits.default_timeout);
        check_timeout_ms(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))?;
        let backoff = job.backoff.as_ref().unwrap_or(&self.limits.default_backoff);
        let queue = &job.queue;
        let mut call = Call::new(&scripts::ENQUEUE)
            .key(self.keys.stream(queue))
            .key(self.keys.job(queue, &id))
            .key(self.keys.delayed(queue));
        let mut unique_ttl_ms = 0;
        if let Some((key, ttl)) = &job.unique {
            check_name("unique key", key)?;
            call = call.key(self.keys.unique(queue, key));
            unique_ttl_ms = ttl.as_millis().max(1);
        }
        let call = call
            .arg(&id)
            .arg(&job.job_type)
            .arg(&job.payload.bytes)
            .arg(job.payload.content_type.as_str())
            .arg(max_attempts)
            .arg(timeout.as_millis() as u64)
            .arg(backoff.to_string())
            .arg(run_at_ms as u64)
            .arg(delay_ms as u64)
            .arg(unique_ttl_ms as u64)
            .arg(self.limits.max_queue_len)
            .arg(queue)
            .arg("")
            .arg(PROTOCOL_VERSION)
            .arg(if job.unique_until_expiry {
                "expiry"
            } else {
                "finished"
            });
        Ok((call, id))
    }
}

fn queue_full(err: redis::RedisError) -> ProducerError {
    if err.code() == Some("QUEUE_FULL") {
        ProducerError::QueueFull(err.detail().unwrap_or("queue at its cap").to_owned())
    } else {
        ProducerError::Redis(err)
    }
}

fn outcome(
    reply: Vec<String>,
    fallback_id: String,
    queue: &str,
) -> Result<Enqueued, ProducerError> {
    let mut reply = reply.into_iter();
    let id = reply.next().unwrap_or(fallback_id);
    let outcome = match reply.next().as_deref() {
        Some("duplicate") => Outcome::Duplicate,
        Some("exists") => Outcome::Exists,
        _ => Outcome::Created,
    };
    Ok(Enqueued {
        id,
        queue: queue.to_owned(),
        outcome,
    })
}
