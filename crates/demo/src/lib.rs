//! `flotilla demo`: a whole fleet on one machine. Starts a private redis-server (unless
//! FLOTILLA_REDIS_URL is set), a few workers, enqueues a mix of jobs and narrates what
//! happens to each.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use flotilla_harness::{RedisOptions, RedisServer, STARTUP};
use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{
    Backoff, ContentType, JobDefaults, JobRecord, Keys, Payload, Status, describe_job,
};
use flotilla_proto::{RedisTarget, SharedConnection};
use flotilla_scheduler::{Schedule, Scheduler, SchedulerConfig};
use flotilla_worker::{Registry, Shutdown, Worker, WorkerConfig, WorkerError};
use serde_json::json;

/// A job the demo follows, and what it is meant to show.
struct Tracked {
    id: String,
    queue: String,
    what: &'static str,
}

impl Tracked {
    /// `id` is the job's id within `queue`; the demo names it by its full id, which no
    /// job of another queue shares.
    fn new(id: String, queue: &str, what: &'static str) -> Self {
        Self {
            id: flotilla_proto::full_id(queue, &id),
            queue: queue.to_owned(),
            what,
        }
    }
}

/// Runs the demo: a private redis-server (unless FLOTILLA_REDIS_URL is set), workers, a
/// scheduler and the dashboard in this process, a mix of jobs, and the story of each.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let redis = pick_redis().await?;
    let config = worker_config(&redis.namespace);
    let workers = start_workers(&redis.url, &config, args.workers).await?;
    let schedulers = start_schedulers(&redis.url, &redis.namespace).await?;
    let keys = Keys::new(redis.namespace.clone());
    let mut conn = open_connection(&redis.url).await?;
    let producer = Producer::new(conn.clone(), keys.clone(), config.jobs.clone());
    let dashboard = start_dashboard(&conn, &keys, args.dashboard).await?;
    let tracked = enqueue_mix(&producer, &mut conn, &keys).await?;
    println!("\nEnqueued {} jobs; following them:\n", tracked.len());

    let records = follow_jobs(&mut conn, &keys, &tracked, args.timeout).await?;
    print_outcomes(&tracked, &records);
    print_dead_letters(&mut conn, &keys, &tracked, &records).await?;
    show_schedule(&mut conn, &keys).await?;
    if args.keep_running {
        println!(
            "\nThe fleet keeps running: see {}. Ctrl-C stops it.",
            dashboard.url
        );
        Shutdown::on_signals().triggered().await;
    }
    dashboard.stop().await;
    schedulers.stop().await?;
    workers.drain().await?;
    println!("\nWorkers drained and left; demo finished.");
    Ok(())
}

/// The demo's dashboard, serving until stopped.
struct DemoDashboard {
    url: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DemoDashboard {
    async fn stop(self) {
        self.shutdown.trigger();
        if let Ok(Err(e)) = self.task.await {
            tracing::warn!(error = %e, "the demo's dashboard stopped with an error");
        }
    }
}

/// Serves the dashboard on `listen` (or any free loopback port when that is taken), with
/// a token made for this run so changes can be tried.
async fn start_dashboard(
    conn: &SharedConnection,
    keys: &Keys,
    listen: std::net::SocketAddr,
) -> anyhow::Result<DemoDashboard> {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(_) => tokio::net::TcpListener::bind((listen.ip(), 0)).await?,
    };
    let url = format!("http://{}/", listener.local_addr()?);
    let token = uuid::Uuid::new_v4().simple().to_string();
    let admin = flotilla_admin::Admin::new(conn.clone(), keys.clone());
    // Beyond loopback, reads need the token too, as for `flotilla dashboard`.
    let reads = if listen.ip().is_loopback() {
        flotilla_dashboard::Reads::Open
    } else {
        flotilla_dashboard::Reads::NeedToken
    };
    let config = flotilla_dashboard::DashboardConfig {
        token: Some(token.clone()),
        reads,
        ..Default::default()
    };
    let state = flotilla_dashboard::AppState::new(admin, config)?;
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(flotilla_dashboard::serve(listener, state, async move {
        stop.triggered().await
    }));
    println!("Dashboard: {url} (sign in with token {token} to try its buttons)");
    Ok(DemoDashboard {
        url,
        shutdown,
        task,
    })
}

/// The Redis the demo runs against, and the namespace its keys live in.
struct DemoRedis {
    url: String,
    namespace: String,
    /// The private redis-server, if the demo started one; dropping it kills the server,
    /// so it is held until `run` returns.
    _server: Option<RedisServer>,
}

/// Uses FLOTILLA_REDIS_URL when set, under its own namespace so the demo's keys stay apart
/// from real ones; otherwise starts a private redis-server that goes away with the demo.
async fn pick_redis() -> anyhow::Result<DemoRedis> {
    match std::env::var("FLOTILLA_REDIS_URL") {
        Ok(url) => {
            println!(
                "Using Redis at {} (namespace flotilla-demo)",
                flotilla_proto::redact_url(&url)
            );
            Ok(DemoRedis {
                url,
                namespace: "flotilla-demo".to_owned(),
                _server: None,
            })
        }
        Err(_) => {
            let server = RedisServer::launch(RedisOptions {
                tcp: true,
                ..RedisOptions::default()
            })?;
            server.ready(STARTUP).await?;
            let url = server.url();
            println!("Started a private redis-server at {url} (no persistence)");
            Ok(DemoRedis {
                url,
                namespace: "flotilla".to_owned(),
                _server: Some(server),
            })
        }
    }
}

/// Settings tuned for watching: quick heartbeats, leases and polling, so every state change
/// shows within a fraction of a second.
fn worker_config(namespace: &str) -> WorkerConfig {
    let mut config = WorkerConfig {
        namespace: namespace.to_owned(),
        concurrency: 4,
        heartbeat_interval: Duration::from_secs(1),
        lease_ttl: Duration::from_secs(5),
        block_time: Duration::from_millis(500),
        promote_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    // Short retries, so the demo's failing job reaches the DLQ while you watch.
    config.jobs.defaults.backoff =
        Backoff::List(vec![Duration::from_millis(300), Duration::from_millis(600)]);
    config
}

/// The demo's running workers and the signal that drains them.
struct Workers {
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<Result<(), WorkerError>>>,
}

/// Starts `count` workers (at least one, or nothing would run) on one shared config.
async fn start_workers(url: &str, config: &WorkerConfig, count: usize) -> anyhow::Result<Workers> {
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    for _ in 0..count.max(1) {
        let worker = Worker::connect(url, config.clone(), Registry::with_builtins()).await?;
        println!(
            "Worker {} serving critical (6), default (3), low (1)",
            worker.id()
        );
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    Ok(Workers { shutdown, tasks })
}

impl Workers {
    /// Asks every worker to finish its jobs and leave, and waits until they have.
    async fn drain(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        for worker in self.tasks {
            worker.await.context("worker task failed")??;
        }
        Ok(())
    }
}

/// The demo's own connection, for enqueueing and for watching the jobs' records.
async fn open_connection(url: &str) -> anyhow::Result<SharedConnection> {
    let config = redis::aio::ConnectionManagerConfig::new();
    SharedConnection::connect(&RedisTarget::parse(url)?, config)
        .await
        .context("cannot connect to Redis")
}

/// What the demo has seen of its jobs: the latest record of each, and the state last
/// printed for each, so that only changes are narrated.
#[derive(Default)]
struct Watch {
    records: HashMap<String, JobRecord>,
    printed: HashMap<String, String>,
}

/// Polls the tracked jobs, printing each change of status or attempt, until all of them
/// are in a terminal state or `timeout` has passed. Returns the last record of each job.
async fn follow_jobs(
    conn: &mut SharedConnection,
    keys: &Keys,
    tracked: &[Tracked],
    timeout: Duration,
) -> anyhow::Result<HashMap<String, JobRecord>> {
    let started = Instant::now();
    let mut watch = Watch::default();
    while started.elapsed() < timeout {
        for job in tracked {
            let Some(record) = read_record(conn, keys, &job.queue, &job.id).await? else {
                continue;
            };
            watch.narrate(job, &record, started);
            watch.records.insert(job.id.clone(), record);
        }
        if watch.all_terminal(tracked) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(watch.records)
}

impl Watch {
    /// Prints one line for `job` if its status or attempt count changed since last printed.
    fn narrate(&mut self, job: &Tracked, record: &JobRecord, started: Instant) {
        let status = record.status.map_or("?", |s| s.as_str());
        let state = format!("{status} {}", record.attempts);
        if self.printed.get(&job.id) == Some(&state) {
            return;
        }
        println!(
            "  {:>5.1}s  {:<36} {:<9} {:<9} attempt {:<7} {}",
            started.elapsed().as_secs_f64(),
            &job.id,
            record.job_type,
            status,
            record.attempts_shown(),
            job.what,
        );
        self.printed.insert(job.id.clone(), state);
    }

    /// Whether every tracked job has been seen in a state it will not leave.
    fn all_terminal(&self, tracked: &[Tracked]) -> bool {
        tracked.iter().all(|j| {
            self.records
                .get(&j.id)
                .and_then(|r| r.status)
                .is_some_and(Status::is_terminal)
        })
    }
}

/// A job as a record wherever it is kept (its record, its stream entry, or the queue's
/// recent completions, where a fast-path job that succeeded at once is found), or `None`
/// while it is nowhere yet.
async fn read_record(
    conn: &mut SharedConnection,
    keys: &Keys,
    queue: &str,
    id: &str,
) -> anyhow::Result<Option<JobRecord>> {
    // The demo's workers differ from the default job settings only in backoff, which
    // what the demo prints does not show.
    Ok(describe_job(conn, keys, queue, id, &JobDefaults::default()).await?)
}

/// Prints how each tracked job ended: its status and its error or result.
fn print_outcomes(tracked: &[Tracked], records: &HashMap<String, JobRecord>) {
    println!("\nWhat happened:");
    for job in tracked {
        let Some(r) = records.get(&job.id) else {
            continue;
        };
        let detail = r
            .error
            .clone()
            .or_else(|| r.result.as_ref().map(|v| format!("result {v}")))
            .unwrap_or_default();
        println!(
            "  {:<36} {:<9} {:<9} {}",
            &job.id,
            r.job_type,
            r.status.map_or("?", |s| s.as_str()),
            detail
        );
    }
}

/// Prints how many entries the `default` dead-letter queue holds, and shows the job that
/// always fails the way `flotilla jobs show` would, so the DLQ's contents are visible.
async fn print_dead_letters(
    conn: &mut SharedConnection,
    keys: &Keys,
    tracked: &[Tracked],
    records: &HashMap<String, JobRecord>,
) -> anyhow::Result<()> {
    let now = flotilla_proto::server_time_ms(conn).await?;
    let dead = flotilla_proto::read_queue_state(conn, keys, "default", now)
        .await?
        .dead;
    println!("\nThe dead-letter queue of `default` holds {dead} entries. One of them, as");
    if let Some((job, record)) = tracked
        .iter()
        .filter_map(|j| records.get(&j.id).map(|r| (j, r)))
        .find(|(_, r)| r.status == Some(Status::Dead) && r.job_type == "fail")
    {
        println!("`flotilla jobs show {}` prints it:\n", job.id);
        for line in flotilla_admin::job_text(record).lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

/// Two scheduler replicas (one leads) and the schedule they fire.
struct Schedulers {
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<Result<(), flotilla_scheduler::SchedulerError>>>,
}

/// The demo's schedule: a job every second on the `low` queue.
const DEMO_SCHEDULE: &str = "every-second";

async fn start_schedulers(url: &str, namespace: &str) -> anyhow::Result<Schedulers> {
    let config = SchedulerConfig {
        namespace: namespace.to_owned(),
        lease_ttl: Duration::from_secs(3),
        safety_margin: Duration::from_secs(1),
        retry_interval: Duration::from_millis(200),
        ..SchedulerConfig::default()
    };
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let scheduler = Scheduler::connect(url, config.clone()).await?;
        println!(
            "Scheduler replica {} joined the leader election",
            scheduler.id()
        );
        if tasks.is_empty() {
            scheduler.store().put(&demo_schedule()).await?;
            println!("Schedule {DEMO_SCHEDULE}: a noop job every second on queue low");
        }
        tasks.push(tokio::spawn(scheduler.run(shutdown.clone())));
    }
    Ok(Schedulers { shutdown, tasks })
}

/// A noop job every second on `low`: frequent enough to show several ticks in a short demo.
fn demo_schedule() -> Schedule {
    let mut schedule = Schedule::new(DEMO_SCHEDULE, "noop");
    schedule.every = Some("1s".to_owned());
    schedule.queue = "low".to_owned();
    schedule.payload = json!({ "report": "pulse" });
    schedule
}

impl Schedulers {
    /// Stops both replicas and waits until they have left.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        for task in self.tasks {
            task.await.context("scheduler task failed")??;
        }
        Ok(())
    }
}

/// Prints who leads and the schedule's most recent ticks.
async fn show_schedule(conn: &mut SharedConnection, keys: &Keys) -> anyhow::Result<()> {
    let status = flotilla_scheduler::leader_status(conn, keys).await?;
    println!(
        "\nScheduler leader {} (fencing epoch {}); schedule {DEMO_SCHEDULE} fired one job per tick:",
        status.holder.as_deref().unwrap_or("none"),
        status.epoch
    );
    let store = flotilla_scheduler::ScheduleStore::new(conn.clone(), keys.clone());
    let state = store.state(DEMO_SCHEDULE).await?;
    let Some(last) = state.last_tick else {
        println!("  (no tick yet)");
        return Ok(());
    };
    let first = state.since.unwrap_or(last).max(last - 4_000);
    let mut tick = first.div_euclid(1000) * 1000 + 1000;
    while tick <= last {
        let id = flotilla_scheduler::scheduled_job_id(DEMO_SCHEDULE, tick);
        let status = read_record(conn, keys, "low", &id)
            .await?
            .and_then(|r| r.status)
            .map_or("not enqueued", |s| s.as_str());
        let at = jiff::Timestamp::from_millisecond(tick)
            .map(|t| t.to_string())
            .unwrap_or_default();
        println!("  tick {at}  job {id:<28} {status}");
        tick += 1000;
    }
    Ok(())
}

/// Enqueues one of each kind of job the demo shows, in the order it narrates them:
/// through the producer first, then as raw stream entries a producer in another language
/// would write.
async fn enqueue_mix(
    producer: &Producer,
    conn: &mut SharedConnection,
    keys: &Keys,
) -> anyhow::Result<Vec<Tracked>> {
    let mut tracked = enqueue_producer_jobs(producer).await?;
    tracked.push(enqueue_unique_twice(producer).await?);
    // What a producer in any other language does: a plain XADD.
    let entry_id = xadd_raw(conn, keys, "sleep", br#"{"ms": 200}"#).await?;
    tracked.push(Tracked::new(
        entry_id,
        "default",
        "raw XADD, as from Python or Go",
    ));
    let bad = Payload {
        content_type: ContentType::Json,
        bytes: b"{not json".to_vec(),
    };
    let entry_id = xadd_raw(conn, keys, "noop", &bad.bytes).await?;
    tracked.push(Tracked::new(
        entry_id,
        "default",
        "malformed payload: straight to the DLQ",
    ));
    Ok(tracked)
}

/// The jobs that show the ordinary paths: success on each queue, a slow job, a retry that
/// succeeds, a job that runs out of attempts, and a delayed job.
async fn enqueue_producer_jobs(producer: &Producer) -> anyhow::Result<Vec<Tracked>> {
    let mut tracked = Vec::new();
    for (i, queue) in ["critical", "default", "low"].into_iter().enumerate() {
        let job = NewJob::new("noop", &json!({ "n": i }))?.queue(queue);
        tracked.push(enqueue_tracked(producer, job, queue, "succeeds at once").await?);
    }
    let job = NewJob::new("sleep", &json!({ "ms": 800 }))?;
    tracked.push(enqueue_tracked(producer, job, "default", "runs for 0.8 s").await?);
    let job = NewJob::new("fail", &json!({ "times": 1 }))?.max_attempts(3);
    let what = "fails once, retried, succeeds";
    tracked.push(enqueue_tracked(producer, job, "default", what).await?);
    let job = NewJob::new("fail", &json!({ "times": -1 }))?.max_attempts(2);
    let what = "always fails: dead after 2 attempts";
    tracked.push(enqueue_tracked(producer, job, "default", what).await?);
    let job = NewJob::new("noop", &json!({}))?.delay(Duration::from_secs(2));
    tracked.push(enqueue_tracked(producer, job, "default", "delayed by 2 s").await?);
    Ok(tracked)
}

/// Enqueues `job` and remembers it under `queue`, which must be the queue the job goes to.
async fn enqueue_tracked(
    producer: &Producer,
    job: NewJob,
    queue: &str,
    what: &'static str,
) -> anyhow::Result<Tracked> {
    let enqueued = producer.enqueue(job).await?;
    Ok(Tracked::new(enqueued.id, queue, what))
}

/// Enqueues the same unique job twice, to show that the second call returns the first
/// job instead of adding another.
async fn enqueue_unique_twice(producer: &Producer) -> anyhow::Result<Tracked> {
    // Held for the whole minute, not only until the job finishes: a worker may finish the
    // first job before the second call, and the demo shows the second call refused.
    let unique = || {
        NewJob::new("noop", &json!({ "report": "daily" }))
            .map(|j| j.unique_until_expiry("daily-report", Duration::from_secs(60)))
    };
    let first = producer.enqueue(unique()?).await?;
    let second = producer.enqueue(unique()?).await?;
    println!(
        "Unique job enqueued twice: both calls returned {} ({:?})",
        second.full_id(),
        second.outcome
    );
    Ok(Tracked::new(
        first.id,
        "default",
        "unique: enqueued twice, runs once",
    ))
}

/// Adds an entry to the `default` stream with a plain XADD, bypassing the producer;
/// returns the entry's id, which is also the job's.
async fn xadd_raw(
    conn: &mut SharedConnection,
    keys: &Keys,
    job_type: &str,
    payload: &[u8],
) -> anyhow::Result<String> {
    let fields: [(&str, &[u8]); 2] = [("type", job_type.as_bytes()), ("payload", payload)];
    Ok(flotilla_proto::add_raw_entry(conn, keys, "default", &fields).await?)
}

/// How many workers the demo starts, how long it waits, where its dashboard listens.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Workers to start.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Give up waiting for the jobs after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// Where the demo's dashboard listens; another free port when this one is taken.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub dashboard: std::net::SocketAddr,

    /// Keep the fleet and the dashboard running after the narrative, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}
