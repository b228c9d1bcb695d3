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
    let mut bench = set_up(&args).await?;
    let enqueue = measure_enqueue(&mut bench, &args).await?;
    let process = measure_processing(&mut bench, &args).await?;
    let floor_stats = floor(&mut bench.conn, &bench.keys, args.jobs.min(20_000)).await?;
    report(args.jobs, &enqueue, &process, &floor_stats);
    Ok(())
}

/// The Redis the benchmark runs against, with a namespace of its own.
struct Bench {
    url: String,
    keys: Keys,
    conn: ConnectionManager,
    /// The private redis-server, if the bench started one; dropping it kills the server,
    /// so it is held until `run` returns.
    _server: Option<LocalRedis>,
}

/// Connects to FLOTILLA_REDIS_URL or a private redis-server, under a namespace named after
/// this process so that runs never see each other's jobs, and prints what is measured.
async fn set_up(args: &BenchArgs) -> anyhow::Result<Bench> {
    let (url, server) = match std::env::var("FLOTILLA_REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = LocalRedis::start().await?;
            (server.url.clone(), Some(server))
        }
    };
    let keys = Keys::new(format!("flotilla-bench-{}", std::process::id()));
    let conn = super::connect_redis(&url).await?;
    println!(
        "flotilla bench: {} noop jobs, one worker, concurrency {}, Redis at {}",
        args.jobs,
        args.concurrency,
        flotilla_proto::redact_url(&url)
    );
    Ok(Bench {
        url,
        keys,
        conn,
        _server: server,
    })
}

/// One timed phase: its wall time and what Redis spent on it.
struct Phase {
    elapsed: Duration,
    stats: Stats,
}

/// Enqueues all the jobs in one bulk call. The jobs are built before the clock starts, so
/// only the enqueue itself is timed.
async fn measure_enqueue(bench: &mut Bench, args: &BenchArgs) -> anyhow::Result<Phase> {
    let mut policy = JobPolicy::default();
    policy.limits.max_queue_len = 0;
    let producer = Producer::new(bench.conn.clone(), bench.keys.clone(), policy);
    let payload = serde_json::json!({ "pad": "x".repeat(args.payload_bytes) });
    let jobs: Vec<NewJob> = (0..args.jobs)
        .map(|_| NewJob::new("noop", &payload))
        .collect::<Result<_, _>>()?;
    let cpu_at_start = reset_stats(&mut bench.conn).await?;
    let started = Instant::now();
    let results = producer.enqueue_bulk(jobs).await?;
    let elapsed = started.elapsed();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        bail!("enqueue failed: {e}");
    }
    let stats = command_stats(&mut bench.conn, cpu_at_start).await?;
    Ok(Phase { elapsed, stats })
}

/// Runs one worker until it has completed every enqueued job, then stops it. The worker
/// connects before the clock starts, so only fetching and running jobs is timed.
async fn measure_processing(bench: &mut Bench, args: &BenchArgs) -> anyhow::Result<Phase> {
    let config = WorkerConfig {
        namespace: bench.keys.namespace().to_owned(),
        concurrency: args.concurrency,
        queues: vec![flotilla_worker::QueueWeight::new("default", 1)],
        block_time: Duration::from_millis(200),
        ..WorkerConfig::default()
    };
    let worker = Worker::connect(&bench.url, config, Registry::with_builtins()).await?;
    let shutdown = Shutdown::new();
    let cpu_at_start = reset_stats(&mut bench.conn).await?;
    let started = Instant::now();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    wait_until_completed(bench, args, started).await?;
    let elapsed = started.elapsed();
    let stats = command_stats(&mut bench.conn, cpu_at_start).await?;
    shutdown.trigger();
    task.await.context("worker task")??;
    Ok(Phase { elapsed, stats })
}

/// Polls the count of completed jobs until it reaches `args.jobs`; fails if that takes
/// longer than `args.timeout` after `started`.
async fn wait_until_completed(
    bench: &mut Bench,
    args: &BenchArgs,
    started: Instant,
) -> anyhow::Result<()> {
    let done_key = bench.keys.index("default", Status::Completed);
    loop {
        let done: usize = redis::cmd("ZCARD")
            .arg(&done_key)
            .query_async(&mut bench.conn)
            .await?;
        if done >= args.jobs {
            return Ok(());
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
}

/// Prints the table (rate, Redis CPU and script calls per job for each phase, against the
/// floor) and then where Redis spent its time while processing.
fn report(jobs: usize, enqueue: &Phase, process: &Phase, floor: &(Stats, usize)) {
    println!(
        "\n  {:<36} {:>9}  {:>17}  {:>16}",
        "", "jobs/s", "redis CPU µs/job", "script calls/job"
    );
    enqueue.print_row("enqueue (bulk)", jobs);
    process.print_row("process (noop)", jobs);
    let (floor_stats, floor_jobs) = floor;
    print_table_row(
        "floor: XADD+XREADGROUP+XACK+XDEL",
        None,
        floor_stats.cpu_usec / *floor_jobs as f64,
        None,
    );
    print_time_by_command(&process.stats, jobs);
}

/// Where Redis spent its time while processing: the eight costliest commands, per job.
fn print_time_by_command(stats: &Stats, jobs: usize) {
    println!(
        "\n  redis time by command while processing, µs/job (EVALSHA includes what its scripts run):"
    );
    let mut by_cmd: Vec<_> = stats.by_command.iter().collect();
    by_cmd.sort_by(|a, b| b.1.total_cmp(a.1));
    for (name, usec) in by_cmd.into_iter().take(8) {
        println!("    {name:<14} {:>6.2}", usec / jobs as f64);
    }
}

impl Phase {
    /// This phase's row of the table, with every figure divided over `jobs`.
    fn print_row(&self, label: &str, jobs: usize) {
        print_table_row(
            label,
            Some(jobs as f64 / self.elapsed.as_secs_f64()),
            self.stats.cpu_usec / jobs as f64,
            Some(self.stats.script_calls as f64 / jobs as f64),
        );
    }
}

/// One row of the table; a figure that does not apply shows as `-`.
fn print_table_row(label: &str, jobs_per_s: Option<f64>, cpu_us: f64, calls: Option<f64>) {
    let jobs_per_s = jobs_per_s.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
    let calls = calls.map_or_else(|| "-".to_owned(), |c| format!("{c:.3}"));
    println!("  {label:<36} {jobs_per_s:>9}  {cpu_us:>17.1}  {calls:>16}");
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
    // An error here means the group exists already (BUSYGROUP); any other problem shows
    // in the commands that follow.
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
        floor_batch(conn, &stream, n).await?;
        done += n;
    }
    Ok((command_stats(conn, cpu_at_start).await?, jobs))
}

/// One batch of the floor: `n` entries added in one pipeline, read by the group, then
/// acknowledged and deleted in another, as the job path does for each job.
async fn floor_batch(conn: &mut ConnectionManager, stream: &str, n: usize) -> anyhow::Result<()> {
    let mut pipe = redis::pipe();
    for _ in 0..n {
        pipe.cmd("XADD")
            .arg(stream)
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
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await?;
    let ids = reply.keys.into_iter().flat_map(|k| k.ids).map(|id| id.id);
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XACK").arg(stream).arg("g").arg(&id).ignore();
        pipe.cmd("XDEL").arg(stream).arg(&id).ignore();
    }
    let _: () = pipe.query_async(conn).await?;
    Ok(())
}
