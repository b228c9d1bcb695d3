//! Per-test set-up: a private Redis, a producer on it, and record look-ups.

use std::time::Duration;

use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{JobRecord, Keys, SharedConnection, Status};
use flotilla_tests::{RedisServer, eventually, fast_policy, job_record};
use flotilla_worker::WorkerConfig;

pub struct Env {
    pub redis: RedisServer,
    pub conn: SharedConnection,
    pub keys: Keys,
    pub producer: Producer,
}

impl Env {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// An environment whose redis-server gets extra arguments, e.g. a TCP or TLS port.
    pub async fn start_with(args: &[&str]) -> Self {
        let redis = RedisServer::start_with(args);
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
        wait_status(&self.conn, &self.keys, queue, id, status, timeout).await
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

    /// Enqueues a job with a record from the start (an explicit id and a unique key), that a
    /// test can read and rewrite.
    pub async fn enqueue_with_record(&self, job_type: &str, payload: serde_json::Value) -> String {
        let id = flotilla_proto::new_job_id();
        // A job holding a unique key has a record from its enqueue on.
        let job = NewJob::new(job_type, &payload)
            .expect("encodes")
            .id(&id)
            .unique(&id, Duration::from_secs(3600));
        self.enqueue_job(job).await
    }

    /// The stream entry a job stands on: the one its record points at, or for a job on the
    /// fast path (no record) the one its id key names, or its own id.
    pub async fn entry_of(&self, queue: &str, id: &str) -> String {
        let entry: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.job(queue, id))
                    .arg("entry"),
            )
            .await;
        if let Some(entry) = entry {
            return entry;
        }
        let held: Option<String> = self
            .cmd(redis::cmd("GET").arg(self.keys.id_key(queue, id)))
            .await;
        held.filter(|held| flotilla_proto::is_entry_id(held))
            .unwrap_or_else(|| id.to_owned())
    }

    /// Whether `queue` remembers `id` as a job that completed without a record (a member
    /// of its `done_ids`).
    pub async fn remembered_done(&self, queue: &str, id: &str) -> bool {
        let since: Option<f64> = self
            .cmd(redis::cmd("ZSCORE").arg(self.keys.done_ids(queue)).arg(id))
            .await;
        since.is_some()
    }

    /// Every entry of `stream`, in order.
    /// Every completion `queue`'s `done` stream holds, oldest first: an entry may hold
    /// several (a worker's batch), each under that entry's id.
    pub async fn completions(&self, queue: &str) -> Vec<flotilla_proto::StreamEntry> {
        let reply: redis::Value = self
            .cmd(
                redis::cmd("XRANGE")
                    .arg(self.keys.done(queue))
                    .arg("-")
                    .arg("+"),
            )
            .await;
        flotilla_proto::range_completions(reply).0
    }

    pub async fn all_entries(&self, stream: &str) -> Vec<redis::streams::StreamId> {
        let reply: redis::streams::StreamRangeReply = self
            .cmd(redis::cmd("XRANGE").arg(stream).arg("-").arg("+"))
            .await;
        reply.ids
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

/// How often a `flotilla scheduler` process the support starts polls: its
/// `FLOTILLA_SCHEDULER__POLL_INTERVAL` in the fast test settings (tests/support/fleet.rs).
pub const SCHEDULER_POLL: Duration = Duration::from_millis(50);

/// How long a worker with `config` may go on taking a queue's entries after the queue was
/// paused: it rereads the paused set every promote interval, and a blocking read it began
/// just before lasts up to a block time. Four times both, for a loaded machine (a CI
/// runner busy with other tests). Worker processes run with the same settings as
/// [`flotilla_tests::fast_config`].
pub fn pause_settle(config: &WorkerConfig) -> Duration {
    4 * (config.promote_interval + config.block_time)
}

/// A raw entry's field/value pairs.
pub type Fields<'a> = &'a [(&'a str, &'a [u8])];

/// The core scenarios every way of reaching Redis must pass, enqueued through the
/// producer under test: a fast-path job, one with an id that fails once and is retried,
/// one that fails until it is dead, and a delayed one.
pub struct CoreJobs {
    pub plain: String,
    pub retried: String,
    pub dies: String,
    pub delayed: String,
}

impl CoreJobs {
    pub async fn enqueue(producer: &Producer) -> Self {
        let quick_retries = flotilla_proto::Backoff::Fixed(Duration::from_millis(50));
        let mut ids = Vec::new();
        for job in [
            NewJob::new("noop", &serde_json::json!({})).expect("job"),
            NewJob::new("fail", &serde_json::json!({ "times": 1 }))
                .expect("job")
                .id("fails-once")
                .backoff(quick_retries.clone()),
            NewJob::new("fail", &serde_json::json!({ "times": -1 }))
                .expect("job")
                .max_attempts(2)
                .backoff(quick_retries),
            NewJob::new("noop", &serde_json::json!({}))
                .expect("job")
                .delay(Duration::from_millis(300)),
        ] {
            ids.push(producer.enqueue(job).await.expect("enqueue").id);
        }
        let [plain, retried, dies, delayed] = <[String; 4]>::try_from(ids).expect("four jobs");
        Self {
            plain,
            retried,
            dies,
            delayed,
        }
    }

    /// Waits until each has ended as it should: three completed, one dead after both of
    /// its attempts.
    pub async fn wait_done(&self, conn: &SharedConnection, keys: &Keys) {
        for id in [&self.plain, &self.retried, &self.delayed] {
            wait_status(conn, keys, "default", id, Status::Completed, LONG).await;
        }
        let dead = wait_status(conn, keys, "default", &self.dies, Status::Dead, LONG).await;
        assert_eq!(dead.attempts, 2, "retried, then dead");
    }
}

/// Waits until the schedule `name` has fired a job and that job completed.
pub async fn wait_schedule_ran(conn: &SharedConnection, keys: &Keys, name: &str) {
    let schedules = flotilla_scheduler::ScheduleStore::new(conn.clone(), keys.clone());
    let fired = eventually(LONG, &format!("schedule {name} to fire"), || async {
        schedules.state(name).await.ok()?.last_job
    })
    .await;
    wait_status(conn, keys, "default", &fired, Status::Completed, LONG).await;
}

/// Waits until the job reaches `status` and returns its record.
pub async fn wait_status(
    conn: &SharedConnection,
    keys: &Keys,
    queue: &str,
    id: &str,
    status: Status,
    timeout: Duration,
) -> JobRecord {
    eventually(timeout, &format!("job {id} to be {status}"), || async {
        job_record(&mut conn.clone(), keys, queue, id)
            .await
            .filter(|r| r.status == Some(status))
    })
    .await
}

/// Runs `flotilla ARGS` against the Redis at `url`, with `extra_env` set, and returns what
/// it printed; fails the test unless it succeeded.
pub fn run_flotilla(url: &str, extra_env: &[(&str, &str)], args: &[&str]) -> String {
    let output = std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(args)
        .env("FLOTILLA_REDIS_URL", url)
        .envs(extra_env.iter().copied())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "flotilla {} failed:\n{printed}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// Crash recovery: enqueues a one-second job, kills `worker` (SIGKILL) while it runs it,
/// starts the next worker with `next`, and waits until that one has run the job again.
/// Returns the next worker.
pub async fn crash_mid_job(
    conn: &SharedConnection,
    keys: &Keys,
    producer: &Producer,
    mut worker: flotilla_tests::WorkerProcess,
    next: impl FnOnce() -> flotilla_tests::WorkerProcess,
) -> flotilla_tests::WorkerProcess {
    let crashed = producer
        .enqueue(
            NewJob::new("sleep", &serde_json::json!({ "ms": 1000 }))
                .expect("job")
                .id("crashed"),
        )
        .await
        .expect("enqueue")
        .id;
    wait_status(conn, keys, "default", &crashed, Status::Running, LONG).await;
    worker.signal("KILL");
    worker.wait_exit(LONG);
    let next_worker = next();
    let record = wait_status(conn, keys, "default", &crashed, Status::Completed, LONG).await;
    assert_eq!(record.attempts, 2, "run again after the crash");
    next_worker
}

/// Calls the published enqueue script (protocol/v2/enqueue.lua) as a producer in another
/// language would, for a job `id` of type noop with this run-at time (`"0"`: none).
pub async fn published_enqueue(
    env: &Env,
    id: &str,
    run_at: &str,
) -> redis::RedisResult<redis::Value> {
    published_enqueue_of(env, id, "noop", "{}", run_at, None, &[]).await
}

/// Calls the published enqueue script for a job `id` of `job_type` with a JSON `payload`
/// and this run-at time, with `KEYS[4]` when given (a unique or debounce key) and `more`
/// arguments after the fifteen every caller passes.
pub async fn published_enqueue_of(
    env: &Env,
    id: &str,
    job_type: &str,
    payload: &str,
    run_at: &str,
    key: Option<String>,
    more: &[u64],
) -> redis::RedisResult<redis::Value> {
    let source =
        std::fs::read_to_string(flotilla_tests::repo_root().join("protocol/v2/enqueue.lua"))
            .expect("the published script");
    let script = redis::Script::new(&source);
    let mut call = script.prepare_invoke();
    call.key(env.keys.stream("default"))
        .key(env.keys.job("default", id))
        .key(env.keys.delayed("default"));
    if let Some(key) = key {
        call.key(key);
    }
    call.arg(id)
        .arg(job_type)
        .arg(payload)
        .arg("json")
        .arg(3)
        .arg(1000)
        .arg("fixed:10")
        .arg(run_at)
        .arg(0)
        .arg(0)
        .arg(0)
        .arg("default")
        .arg("")
        .arg(2)
        .arg("finished");
    for value in more {
        call.arg(*value);
    }
    call.invoke_async(&mut env.conn.clone()).await
}

/// True when the process is gone (or only a zombie waiting to be reaped).
pub fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
