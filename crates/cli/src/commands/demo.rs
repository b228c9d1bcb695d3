//! `flotilla demo`: a whole fleet on one machine. Starts a private redis-server (unless
//! FLOTILLA_REDIS_URL is set), a few workers, enqueues a mix of jobs and narrates what
//! happens to each.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{Backoff, ContentType, JobRecord, Keys, Payload, Status};
use flotilla_scheduler::{Schedule, Scheduler, SchedulerConfig};
use flotilla_worker::{Registry, Shutdown, Worker, WorkerConfig};
use serde_json::json;

use crate::cli::DemoArgs;
use crate::local_redis::LocalRedis;

/// A job the demo follows, and what it is meant to show.
struct Tracked {
    id: String,
    queue: String,
    what: &'static str,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (url, _server, namespace) = match std::env::var("FLOTILLA_REDIS_URL") {
        Ok(url) => {
            println!(
                "Using Redis at {} (namespace flotilla-demo)",
                flotilla_proto::redact_url(&url)
            );
            (url, None, "flotilla-demo".to_owned())
        }
        Err(_) => {
            let server = LocalRedis::start().await?;
            println!(
                "Started a private redis-server at {} (no persistence)",
                server.url
            );
            (server.url.clone(), Some(server), "flotilla".to_owned())
        }
    };
    let mut config = WorkerConfig {
        namespace: namespace.clone(),
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
    let shutdown = Shutdown::new();
    let mut workers = Vec::new();
    for _ in 0..args.workers.max(1) {
        let worker = Worker::connect(&url, config.clone(), Registry::with_builtins()).await?;
        println!(
            "Worker {} serving critical (6), default (3), low (1)",
            worker.id()
        );
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }

    let schedulers = start_schedulers(&url, &namespace).await?;
    let keys = Keys::new(namespace);
    let client = redis::Client::open(url.as_str())?;
    let mut conn = redis::aio::ConnectionManager::new(client)
        .await
        .context("cannot connect to Redis")?;
    let producer = Producer::new(conn.clone(), keys.clone(), config.jobs.clone());
    let tracked = enqueue_mix(&producer, &mut conn, &keys).await?;
    println!("\nEnqueued {} jobs; following them:\n", tracked.len());

    let started = Instant::now();
    let mut last: HashMap<String, String> = HashMap::new();
    let mut records: HashMap<String, JobRecord> = HashMap::new();
    while started.elapsed() < args.timeout {
        for job in &tracked {
            let hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(keys.job(&job.queue, &job.id))
                .query_async(&mut conn)
                .await?;
            let Some(record) = JobRecord::from_hash(&hash)? else {
                continue;
            };
            let state = format!(
                "{} {}",
                record.status.map_or("?", |s| s.as_str()),
                record.attempts
            );
            if last.get(&job.id) != Some(&state) {
                println!(
                    "  {:>5.1}s  {:<36} {:<9} {:<9} attempt {}/{}  {}",
                    started.elapsed().as_secs_f64(),
                    &job.id,
                    record.job_type,
                    record.status.map_or("?", |s| s.as_str()),
                    record.attempts,
                    record.max_attempts,
                    job.what,
                );
                last.insert(job.id.clone(), state);
            }
            records.insert(job.id.clone(), record);
        }
        let done = tracked.iter().all(|j| {
            records
                .get(&j.id)
                .and_then(|r| r.status)
                .is_some_and(Status::is_terminal)
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!("\nWhat happened:");
    for job in &tracked {
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
    let dead: u64 = redis::cmd("XLEN")
        .arg(keys.dead("default"))
        .query_async(&mut conn)
        .await?;
    println!("\nThe dead-letter queue of `default` holds {dead} entries. One of them, as");
    if let Some((job, record)) = tracked
        .iter()
        .filter_map(|j| records.get(&j.id).map(|r| (j, r)))
        .find(|(_, r)| r.status == Some(Status::Dead) && r.job_type == "fail")
    {
        println!("`flotilla jobs show {}` prints it:\n", job.id);
        for line in super::jobs::render(record).lines() {
            println!("  {line}");
        }
    }
    show_schedule(&mut conn, &keys).await?;
    schedulers.stop.trigger();
    for task in schedulers.tasks {
        task.await.context("scheduler task failed")??;
    }
    shutdown.trigger();
    for worker in workers {
        worker.await.context("worker task failed")??;
    }
    println!("\nWorkers drained and left; demo finished.");
    Ok(())
}

/// Two scheduler replicas (one leads) and the schedule they fire.
struct Schedulers {
    stop: Shutdown,
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
    let stop = Shutdown::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let scheduler = Scheduler::connect(url, config.clone()).await?;
        println!(
            "Scheduler replica {} joined the leader election",
            scheduler.id()
        );
        if tasks.is_empty() {
            let mut schedule = Schedule::new(DEMO_SCHEDULE, "noop");
            schedule.every = Some("1s".to_owned());
            schedule.queue = "low".to_owned();
            schedule.payload = json!({ "report": "pulse" });
            scheduler.store().put(&schedule).await?;
            println!("Schedule {DEMO_SCHEDULE}: a noop job every second on queue low");
        }
        tasks.push(tokio::spawn(scheduler.run(stop.clone())));
    }
    Ok(Schedulers { stop, tasks })
}

/// Prints who leads and the schedule's most recent ticks.
async fn show_schedule(
    conn: &mut redis::aio::ConnectionManager,
    keys: &Keys,
) -> anyhow::Result<()> {
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
        let hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(keys.job("low", &id))
            .query_async(conn)
            .await?;
        let status = JobRecord::from_hash(&hash)?
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

async fn enqueue_mix(
    producer: &Producer,
    conn: &mut redis::aio::ConnectionManager,
    keys: &Keys,
) -> anyhow::Result<Vec<Tracked>> {
    let mut tracked = Vec::new();
    let mut add = |id: String, queue: &str, what: &'static str| {
        tracked.push(Tracked {
            id,
            queue: queue.to_owned(),
            what,
        })
    };
    for (i, queue) in ["critical", "default", "low"].into_iter().enumerate() {
        let job = NewJob::new("noop", &json!({ "n": i }))?.queue(queue);
        add(producer.enqueue(job).await?.id, queue, "succeeds at once");
    }
    let job = NewJob::new("sleep", &json!({ "ms": 800 }))?;
    add(producer.enqueue(job).await?.id, "default", "runs for 0.8 s");
    let job = NewJob::new("fail", &json!({ "times": 1 }))?.max_attempts(3);
    add(
        producer.enqueue(job).await?.id,
        "default",
        "fails once, retried, succeeds",
    );
    let job = NewJob::new("fail", &json!({ "times": -1 }))?.max_attempts(2);
    add(
        producer.enqueue(job).await?.id,
        "default",
        "always fails: dead after 2 attempts",
    );
    let job = NewJob::new("noop", &json!({}))?.delay(Duration::from_secs(2));
    add(producer.enqueue(job).await?.id, "default", "delayed by 2 s");
    let unique = || {
        NewJob::new("noop", &json!({ "report": "daily" }))
            .map(|j| j.unique("daily-report", Duration::from_secs(60)))
    };
    let first = producer.enqueue(unique()?).await?;
    let second = producer.enqueue(unique()?).await?;
    println!(
        "Unique job enqueued twice: both calls returned {} ({:?})",
        &second.id, second.outcome
    );
    add(first.id, "default", "unique: enqueued twice, runs once");
    // What a producer in any other language does: a plain XADD.
    let entry_id: String = redis::cmd("XADD")
        .arg(keys.stream("default"))
        .arg("*")
        .arg("type")
        .arg("sleep")
        .arg("payload")
        .arg(r#"{"ms": 200}"#)
        .query_async(conn)
        .await?;
    add(entry_id, "default", "raw XADD, as from Python or Go");
    let bad = Payload {
        content_type: ContentType::Json,
        bytes: b"{not json".to_vec(),
    };
    let entry_id: String = redis::cmd("XADD")
        .arg(keys.stream("default"))
        .arg("*")
        .arg("type")
        .arg("noop")
        .arg("payload")
        .arg(&bad.bytes)
        .query_async(conn)
        .await?;
    add(
        entry_id,
        "default",
        "malformed payload: straight to the DLQ",
    );
    Ok(tracked)
}
