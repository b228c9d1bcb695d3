//! Per-test set-up: a private Redis, a producer on it, and record look-ups.

use std::time::Duration;

use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{JobRecord, Keys, Status};
use flotilla_tests::{RedisServer, eventually, fast_policy, job_record};
use redis::aio::ConnectionManager;

pub struct Env {
    pub redis: RedisServer,
    pub conn: ConnectionManager,
    pub keys: Keys,
    pub producer: Producer,
}

impl Env {
    pub async fn start() -> Self {
        let redis = RedisServer::start();
        let conn = redis.manager().await;
        let keys = Keys::default();
        let producer = Producer::new(conn.clone(), keys.clone(), fast_policy());
        Self {
            redis,
            conn,
            keys,
            producer,
        }
    }

    /// New connections after the server was restarted.
    pub async fn reconnect(&mut self) {
        self.conn = self.redis.manager().await;
        self.producer = Producer::new(self.conn.clone(), self.keys.clone(), fast_policy());
    }

    pub fn url(&self) -> String {
        self.redis.url()
    }

    /// Leaves work waiting on `default`: `unread` no-op jobs on its stream and one
    /// delayed by ten minutes.
    pub async fn leave_waiting(&self, unread: usize) {
        for _ in 0..unread {
            self.enqueue("noop", serde_json::json!({})).await;
        }
        self.enqueue_job(
            NewJob::new("noop", &serde_json::json!({}))
                .expect("encodes")
                .delay(Duration::from_secs(600)),
        )
        .await;
    }

    /// Enqueues a built-in-handler job on `default` and returns its id.
    pub async fn enqueue(&self, job_type: &str, payload: serde_json::Value) -> String {
        self.enqueue_job(NewJob::new(job_type, &payload).expect("encodes"))
            .await
    }

    pub async fn enqueue_job(&self, job: NewJob) -> String {
        self.producer.enqueue(job).await.expect("enqueue").id
    }

    pub async fn record(&self, queue: &str, id: &str) -> Option<JobRecord> {
        job_record(&mut self.conn.clone(), &self.keys, queue, id).await
    }

    /// Waits until the job reaches `status` and returns its record.
    pub async fn wait_status(
        &self,
        queue: &str,
        id: &str,
        status: Status,
        timeout: Duration,
    ) -> JobRecord {
        eventually(timeout, &format!("job {id} to be {status}"), || async {
            self.record(queue, id)
                .await
                .filter(|r| r.status == Some(status))
        })
        .await
    }

    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut self.conn.clone())
            .await
            .expect("redis command")
    }

    /// The length of a stream (XLEN), e.g. a queue's or its `done` stream.
    pub async fn xlen(&self, stream: &str) -> usize {
        self.cmd(redis::cmd("XLEN").arg(stream)).await
    }

    /// Replaces a msgpack job's payload, e.g. to shorten a `sleep` that was handed back.
    pub async fn set_payload(&self, queue: &str, id: &str, payload: serde_json::Value) {
        let bytes = rmp_serde::to_vec_named(&payload).expect("encodes");
        self.cmd::<()>(
            redis::cmd("HSET")
                .arg(self.keys.job(queue, id))
                .arg("payload")
                .arg(bytes),
        )
        .await;
    }

    /// Enqueues a job through the enqueue script (an explicit id), so it has a record from
    /// the start that a test can read and rewrite.
    pub async fn enqueue_with_record(&self, job_type: &str, payload: serde_json::Value) -> String {
        let id = flotilla_proto::new_job_id();
        self.enqueue_job(NewJob::new(job_type, &payload).expect("encodes").id(&id))
            .await
    }

    /// The stream entry a job stands on: the one its record points at, or for a job on the
    /// fast path (no record) its own id.
    pub async fn entry_of(&self, queue: &str, id: &str) -> String {
        let entry: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.job(queue, id))
                    .arg("entry"),
            )
            .await;
        entry.unwrap_or_else(|| id.to_owned())
    }

    /// XADDs raw fields to the queue's stream, as a producer in another language would;
    /// returns the entry id.
    pub async fn xadd(&self, queue: &str, fields: &[(&str, &[u8])]) -> String {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.stream(queue)).arg("*");
        for (name, value) in fields {
            cmd.arg(*name).arg(*value);
        }
        self.cmd(&mut cmd).await
    }

    /// Creates the queue's consumer group, as a worker would.
    pub async fn create_group(&self, queue: &str) {
        self.cmd::<()>(
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.keys.stream(queue))
                .arg("workers")
                .arg("0"),
        )
        .await;
    }

    /// Delivers every new entry of the queue to `consumer` without running anything, as a
    /// worker that dies right after reading would leave them.
    pub async fn deliver_to(&self, queue: &str, consumer: &str) {
        let _: redis::Value = self
            .cmd(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("workers")
                    .arg(consumer)
                    .arg("STREAMS")
                    .arg(self.keys.stream(queue))
                    .arg(">"),
            )
            .await;
    }

    /// Entries in the queue's dead-letter stream, as field maps.
    pub async fn dead_entries(
        &self,
        queue: &str,
    ) -> Vec<std::collections::HashMap<String, String>> {
        let reply: redis::streams::StreamRangeReply = self
            .cmd(
                redis::cmd("XRANGE")
                    .arg(self.keys.dead(queue))
                    .arg("-")
                    .arg("+"),
            )
            .await;
        reply
            .ids
            .into_iter()
            .map(|id| {
                id.map
                    .into_iter()
                    .map(|(k, v)| (k, redis::from_redis_value::<String>(v).unwrap_or_default()))
                    .collect()
            })
            .collect()
    }
}

pub const LONG: Duration = Duration::from_secs(20);
