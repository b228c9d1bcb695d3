//! `flotilla chaos`: the pod-killing drill. A local fleet of real processes
//! (one redis-server with an append-only file, workers, scheduler replicas), producers
//! enqueueing throughout, a schedule ticking every second with catch-up `all`, and a
//! monkey that kills, freezes and rolls processes; then a verdict on what was lost, run
//! twice, left behind or missed.

#![warn(missing_docs)]

mod against;
pub mod args;
mod cap_check;
mod fleet;
mod gather;
mod ledger;
mod monkey;
mod produce;
mod verdict;
mod workflows;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flotilla_harness::{RedisOptions, RedisServer, STARTUP};
use flotilla_proto::Keys;
use flotilla_proto::{RedisTarget, SharedConnection};
use flotilla_scheduler::scheduled_job_id;

pub use args::{ChaosArgs, ChaosWorkerArgs};
pub use ledger::{JOB_TYPE, open_ledger, register_ledger};

use fleet::{Fleet, FleetPaths, Role};
use verdict::{Evidence, Verdict};

/// The namespace of the drill's own Redis.
const NAMESPACE: &str = "chaos";
/// The schedule that ticks every second through the run, and its queue.
const TICK_SCHEDULE: &str = "chaos_tick";
const TICK_QUEUE: &str = "critical";
/// The workers' lease: short, so that a minute's drill sees many reclaims, yet six
/// heartbeats long, so a busy machine's stalls are not taken for deaths.
const LEASE: Duration = Duration::from_secs(3);
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long a worker may be silent before the leader forgets its consumer.
const WORKER_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a frozen worker stays frozen: past its lease, so its jobs are taken over,
/// and short of the worker timeout, so it comes back as the same consumer.
const FREEZE: Duration = Duration::from_secs(5);

/// The fleet's settings: short leases and heartbeats so recovery shows within a short
/// run, attempts enough that the monkey cannot exhaust them, completed jobs kept for the
/// verdict, and the leader repairing stale consumers.
fn settings_toml(jobs: usize) -> String {
    let keep = jobs * 2 + 10_000;
    format!(
        r#"namespace = "{NAMESPACE}"

[queues]
critical = 6
default = 3
low = 1

[worker]
concurrency = 8
heartbeat_interval = "{heartbeat}ms"
lease_ttl = "{lease}ms"
shutdown_grace = "1s"
block_time = "200ms"
promote_interval = "50ms"

[defaults]
max_attempts = 100
timeout = "30s"
backoff = "fixed:100"

[retention]
completed_max_len = {keep}

[scheduler]
lease_ttl = "2s"
safety_margin = "500ms"
retry_interval = "100ms"
poll_interval = "50ms"
misfire_grace = "1s"
promote_interval = "50ms"

[reconcile]
interval = "1s"
repair = true
worker_timeout = "{timeout}ms"

[schedules.{TICK_SCHEDULE}]
every = "1s"
type = "{job_type}"
queue = "{TICK_QUEUE}"
payload = {{ ms = 5 }}
catch_up = "all"
catch_up_limit = 1000
"#,
        lease = LEASE.as_millis(),
        heartbeat = HEARTBEAT.as_millis(),
        timeout = WORKER_TIMEOUT.as_millis(),
        job_type = ledger::JOB_TYPE,
    )
}

/// Runs the drill (or, with `--against`, watches an existing fleet) and fails unless the
/// verdict passes. `flotilla` is the binary whose `worker`, `scheduler` and `chaos-worker`
/// roles make up the fleet.
pub async fn run(args: ChaosArgs, flotilla: PathBuf) -> anyhow::Result<()> {
    if let Some(url) = &args.against {
        return against::run(url, &args).await;
    }
    let dir = tempfile::Builder::new()
        .prefix("flotilla-chaos-")
        .tempdir()
        .context("cannot create the drill's directory")?;
    let passed = match drill(&args, dir.path(), flotilla).await {
        Ok(verdict) => print_verdict(&verdict, &args),
        Err(e) => Err(e),
    };
    match passed {
        Ok(true) => Ok(()),
        // Keep the fleet's logs and ledger for a look.
        Ok(false) => bail!(
            "the drill failed; the fleet's logs and ledger are in {}",
            dir.keep().display()
        ),
        Err(e) => Err(e.context(format!(
            "the fleet's logs and ledger are in {}",
            dir.keep().display()
        ))),
    }
}

/// Caps each of the drill's queues at `cap` jobs running at once, and each group at
/// `group_cap`, before any worker starts.
async fn cap_every_queue(
    conn: &mut SharedConnection,
    keys: &Keys,
    cap: Option<u32>,
    group_cap: Option<u32>,
) -> anyhow::Result<()> {
    let limit = flotilla_proto::flow::QueueLimit {
        concurrency: cap,
        group_concurrency: group_cap,
        ..Default::default()
    };
    for queue in ["critical", "default", "low"] {
        flotilla_proto::flow::set_limit(conn, keys, queue, &limit, false).await?;
    }
    if let Some(cap) = cap {
        println!("chaos: every queue capped at {cap} jobs running at once, fleet-wide");
    }
    if let Some(cap) = group_cap {
        println!("chaos: every group capped at {cap} jobs running at once, fleet-wide");
    }
    Ok(())
}

/// Runs the drill with its files in `dir` and judges it.
async fn drill(args: &ChaosArgs, dir: &Path, flotilla: PathBuf) -> anyhow::Result<Verdict> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let (mut redis, paths) = start_redis(args, dir).await?;
    let keys = Keys::new(NAMESPACE);
    let mut conn = connect(&paths.redis_url).await?;
    println!(
        "chaos: {} workers, {} schedulers, {} jobs over {}, an action every {}{} (seed {seed})",
        args.workers,
        args.schedulers,
        args.jobs,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.kill_every),
        if args.redis_fault {
            ", one Redis crash"
        } else {
            ""
        },
    );
    if args.cap.is_some() || args.group_cap.is_some() {
        cap_every_queue(&mut conn, &keys, args.cap, args.group_cap).await?;
    }
    let mut fleet = Fleet::new(flotilla, paths.clone())?;
    for _ in 0..args.schedulers {
        fleet.spawn(Role::Scheduler)?;
    }
    for _ in 0..args.workers {
        fleet.spawn(Role::Worker)?;
    }
    wait_until_up(&mut conn, &keys, usize::from(args.workers)).await?;

    let producers = tokio::spawn(produce::run(
        conn.clone(),
        keys.clone(),
        produce::Plan {
            jobs: args.jobs,
            over: args.duration.mul_f64(0.8),
            job_ms: args.job_ms,
            job_type: ledger::JOB_TYPE,
            seed,
            groups: args.group_cap.map(|_| args.groups),
        },
    ));
    let workflows = tokio::spawn(workflows::run(
        conn.clone(),
        keys.clone(),
        workflows::Plan {
            flows: args.flows,
            batches: args.batches,
            batch_size: usize::try_from(args.batch_size).unwrap_or(50),
            over: args.duration.mul_f64(0.8),
            job_ms: args.job_ms,
            job_type: ledger::JOB_TYPE,
            seed,
        },
    ));
    let plan = monkey::Plan {
        duration: args.duration,
        every: args.kill_every,
        freeze_for: FREEZE,
        crash_redis: args.redis_fault,
        seed,
    };
    let outcome = monkey::run(&mut fleet, &mut redis, &mut conn, &keys, &plan).await?;
    let run_ended_ms = ledger::now_ms();
    let mut produced = producers.await.context("the producers failed")?;
    let made = workflows
        .await
        .context("the flows' and batches' producer failed")?;
    produced.jobs.extend(made.jobs.iter().cloned());
    produced.retries += made.retries;
    produced.abandoned += made.abandoned;
    println!(
        "chaos: the run is over ({} actions); waiting for the fleet to settle",
        outcome.events.len()
    );
    let mut evidence = settle_and_gather(
        args,
        &mut conn,
        &keys,
        fleet,
        outcome,
        produced,
        run_ended_ms,
    )
    .await?;
    if args.flows + args.batches > 0 {
        let (fired, waiting) = workflows::read_state(&mut conn, &keys, &made).await?;
        evidence.workflows = Some((made, fired, waiting));
    }
    // Read once every process has stopped: the ledger then holds every execution.
    evidence.executions = Some(ledger::read(&paths.ledger)?);
    Ok(verdict::judge(&evidence))
}

/// The drill's durable redis-server, and where the fleet finds it, its settings, the
/// ledger and its logs.
async fn start_redis(args: &ChaosArgs, dir: &Path) -> anyhow::Result<(RedisServer, FleetPaths)> {
    let redis = RedisServer::launch(RedisOptions {
        tcp: true,
        durable: true,
        ..RedisOptions::default()
    })?;
    redis.ready(STARTUP).await?;
    let paths = FleetPaths {
        redis_url: redis.url(),
        settings: dir.join("flotilla.toml"),
        ledger: dir.join("ledger"),
        logs: dir.join("logs"),
    };
    std::fs::write(&paths.settings, settings_toml(args.jobs))
        .context("cannot write the fleet's settings")?;
    Ok((redis, paths))
}

/// Once the monkey stopped: waits until every job and due tick has ended, stops the fleet
/// as a scale-down would, and gathers what the verdict judges (but the ledger, which the
/// caller reads).
async fn settle_and_gather(
    args: &ChaosArgs,
    conn: &mut SharedConnection,
    keys: &Keys,
    mut fleet: Fleet,
    mut outcome: monkey::Outcome,
    produced: produce::Produced,
    run_ended_ms: i64,
) -> anyhow::Result<Evidence> {
    let expected_ticks = expected_ticks(conn, keys, run_ended_ms).await?;
    let expected_to_end: Vec<String> = produced
        .jobs
        .iter()
        .map(|job| ledger::job_key(job.queue, &job.id))
        .chain(expected_ticks.iter().cloned())
        .collect();
    let settled = gather::settle(
        conn,
        keys,
        WORKER_TIMEOUT,
        &expected_to_end,
        Instant::now() + args.settle,
    )
    .await?;
    // Failures while settling count too, and so does a process that would not drain.
    outcome.failures.extend(monkey::replace_failed(&mut fleet)?);
    outcome
        .failures
        .extend(fleet.stop(Duration::from_secs(10)).await);
    Ok(Evidence {
        enqueued: produced.jobs,
        enqueue_retries: produced.retries,
        abandoned: produced.abandoned,
        executions: None,
        events: outcome.events,
        failures: outcome.failures,
        completions: settled.completions,
        dead: settled.dead,
        expected_ticks,
        leftovers: settled.leftovers,
        cap: args.cap,
        group_cap: args.group_cap,
        workflows: None,
    })
}

/// Prints the verdict and writes its JSON; returns whether it passed.
fn print_verdict(verdict: &Verdict, args: &ChaosArgs) -> anyhow::Result<bool> {
    println!("\n{}", verdict.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(verdict)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(verdict.passed)
}

/// A connection to the drill's Redis (or, with `--against`, the fleet's).
async fn connect(url: &str) -> anyhow::Result<SharedConnection> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    SharedConnection::connect(&RedisTarget::parse(url)?, config)
        .await
        .with_context(|| {
            format!(
                "cannot connect to Redis at {}",
                flotilla_proto::redact_url(url)
            )
        })
}

/// Waits until every worker has registered and a scheduler leads.
async fn wait_until_up(
    conn: &mut SharedConnection,
    keys: &Keys,
    workers: usize,
) -> anyhow::Result<()> {
    flotilla_admin::Admin::new(conn.clone(), keys.clone())
        .wait_for_workers(workers, Duration::from_secs(20))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while flotilla_scheduler::leader_status(conn, keys)
        .await?
        .holder
        .is_none()
    {
        if Instant::now() > deadline {
            bail!("no scheduler replica took the lead within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The ids of the tick jobs due from when the schedule was first seen to the run's end.
async fn expected_ticks(
    conn: &SharedConnection,
    keys: &Keys,
    until_ms: i64,
) -> anyhow::Result<Vec<String>> {
    let store = flotilla_scheduler::ScheduleStore::new(conn.clone(), keys.clone());
    let state = store.state(TICK_SCHEDULE).await?;
    let Some(since) = state.since else {
        return Ok(Vec::new());
    };
    let mut ticks = Vec::new();
    let mut tick = since.div_euclid(1000) * 1000 + 1000;
    while tick <= until_ms {
        ticks.push(ledger::job_key(
            TICK_QUEUE,
            &scheduled_job_id(TICK_SCHEDULE, tick),
        ));
        tick += 1000;
    }
    Ok(ticks)
}
