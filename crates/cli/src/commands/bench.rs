//! `flotilla bench`: throughput of the whole path (bulk enqueue, fetch, start, run `noop`,
//! complete) on one worker, with Redis server time per job from INFO commandstats, next
//! to the floor of a bare XADD + XREADGROUP + XACK + XDEL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flotilla_producer::{NewJob, Producer};
use flotilla_proto::JobPolicy;
use flotilla_proto::{Keys, Status};
use flotilla_worker::{Registry, Shutdown, Worker, WorkerConfig};
use redis::aio::ConnectionManager;

use crate::cli::BenchArgs;
use crate::local_redis::LocalRedis;

/// Jobs per pipelined batch in the floor measurement.
const FLOOR_BATCH: usize = 100;

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (url, _server) = match std::env::var("FLOTILLA_REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = LocalRedis::start().await?;
            (server.url.clone(), Some(server))
        }
    };
    let namespace = format!("flotilla-bench-{}", std::process::id());
    let keys = Keys::new(namespace.clone());
    let mut conn = super::connect_redis(&url).await?;
    println!(
        "flotilla bench: {} noop jobs, one worker, concurrency {}, Redis at {}",
        args.jobs,
        args.concurrency,
        flotilla_proto::redact_url(&url)
    );

    let mut policy = JobPolicy::default();
    policy.limits.max_queue_len = 0;
    let producer = Producer::new(conn.clone(), keys.clone(), policy);
    let payload = serde_json::json!({ "pad": "x".repeat(args.payload_bytes) });
    let jobs: Vec<NewJob> = (0..args.jobs)
        .map(|_| NewJob::new("noop", &payload))
        .collect::<Result<_, _>>()?;
    let cpu_at_start = reset_stats(&mut conn).await?;
    let started = Instant::now();
    let results = producer.enqueue_bulk(jobs).await?;
    let enqueue_time = started.elapsed();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        bail!("enqueue failed: {e}");
    }
    let enqueue_stats = command_stats(&mut conn, cpu_at_start).await?;

    let config = WorkerConfig {
        namespace,
        concurrency: args.concurrency,
        queues: vec![flotilla_worker::QueueWeight::new("default", 1)],
        block_time: Duration::from_millis(200),
        ..WorkerConfig::default()
    };
    let worker = Worker::connect(&url, config, Registry::with_builtins()).await?;
    let shutdown = Shutdown::new();
    let cpu_at_start = reset_stats(&mut conn).await?;
    let started = Instant::now();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    let done_key = keys.index("default", Status::Completed);
    loop {
        let done: usize = redis::cmd("ZCARD")
            .arg(&done_key)
            .query_async(&mut conn)
            .await?;
        if done >= args.jobs {
            break;
        }
        if started.elapsed() > args.timeout {
            bail!(
                "only {done} of {} jobs done after {:?}",
                args.jobs,
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let process_time = started.elapsed();
    let process_stats = command_stats(&mut conn, cpu_at_start).await?;
    shutdown.trigger();
    task.await.context("worker task")??;

    let floor_stats = floor(&mut conn, &keys, args.jobs.min(20_000)).await?;
    let cpu = |stats: &Stats, n: usize| stats.cpu_usec / n as f64;
    let scripts = |stats: &Stats, n: usize| stats.script_calls as f64 / n as f64;
    let rate = |d: Duration| args.jobs as f64 / d.as_secs_f64();
    let row = |label: &str, jobs_per_s: Option<f64>, cpu_us: f64, calls: Option<f64>| {
        let jobs_per_s = jobs_per_s.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let calls = calls.map_or_else(|| "-".to_owned(), |c| format!("{c:.3}"));
        println!("  {label:<36} {jobs_per_s:>9}  {cpu_us:>17.1}  {calls:>16}");
    };
    println!(
        "\n  {:<36} {:>9}  {:>17}  {:>16}",
        "", "jobs/s", "redis CPU µs/job", "script calls/job"
    );
    let n = args.jobs;
    row(
        "enqueue (bulk)",
        Some(rate(enqueue_time)),
        cpu(&enqueue_stats, n),
        Some(scripts(&enqueue_stats, n)),
    );
    row(
        "process (noop)",
        Some(rate(process_time)),
        cpu(&process_stats, n),
        Some(scripts(&process_stats, n)),
    );
    row(
        "floor: XADD+XREADGROUP+XACK+XDEL",
        None,
        cpu(&floor_stats.0, floor_stats.1),
        None,
    );
    println!(
        "\n  redis time by command while processing, µs/job (EVALSHA includes what its scripts run):"
    );
    let mut by_cmd: Vec<_> = process_stats.by_command.iter().collect();
    by_cmd.sort_by(|a, b| b.1.total_cmp(a.1));
    for (name, usec) in by_cmd.into_iter().take(8) {
        println!("    {name:<14} {:>6.2}", usec / args.jobs as f64);
    }
    Ok(())
}

/// What Redis spent on a phase: CPU time of the server, script calls, and time by
/// command (EVALSHA's time includes the commands its scripts run, which are also listed).
struct Stats {
    cpu_usec: f64,
    script_calls: u64,
    by_command: HashMap<String, f64>,
}

/// The server's CPU time so far (user + system), in µs; phases are measured as differences.
async fn cpu_usec(conn: &mut ConnectionManager) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((field("used_cpu_user:") + field("used_cpu_sys:")) * 1e6)
}

async fn reset_stats(conn: &mut ConnectionManager) -> anyhow::Result<f64> {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await?;
    cpu_usec(conn).await
}

async fn command_stats(conn: &mut ConnectionManager, cpu_at_start: f64) -> anyhow::Result<Stats> {
    let cpu_usec = cpu_usec(conn).await? - cpu_at_start;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let mut stats = Stats {
        cpu_usec,
        script_calls: 0,
        by_command: HashMap::new(),
    };
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if matches!(name, "info" | "config" | "zcard") {
            continue; // the benchmark's own polling
        }
        let field = |key: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        stats.by_command.insert(name.to_owned(), field("usec="));
        if name == "evalsha" {
            stats.script_calls = field("calls=") as u64;
        }
    }
    Ok(stats)
}

/// The floor: the same number of jobs through bare stream commands, pipelined.
async fn floor(
    conn: &mut ConnectionManager,
    keys: &Keys,
    jobs: usize,
) -> anyhow::Result<(Stats, usize)> {
    let stream = keys.stream("floor");
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    let cpu_at_start = reset_stats(conn).await?;
    let mut done = 0;
    while done < jobs {
        let n = FLOOR_BATCH.min(jobs - done);
        let mut pipe = redis::pipe();
        for _ in 0..n {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("id")
                .arg("x")
                .ignore();
        }
        let _: () = pipe.query_async(conn).await?;
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(n)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(conn)
            .await?;
        let ids: Vec<String> = reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(|id| id.id)
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("XACK").arg(&stream).arg("g").arg(id).ignore();
            pipe.cmd("XDEL").arg(&stream).arg(id).ignore();
        }
        let _: () = pipe.query_async(conn).await?;
        done += n;
    }
    Ok((command_stats(conn, cpu_at_start).await?, jobs))
}
