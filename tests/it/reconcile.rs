//! Reconciliation and alerts: late or missed ticks, dead workers' jobs, stranded jobs,
//! a growing DLQ, an old backlog and lost jobs are found, alerted on, and repaired.

use std::collections::HashMap;
use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_scheduler::{
    Alert, CatchUp, FindingKind, ReconcileConfig, Reconciler, Schedule, ScheduleStore, Scheduler,
    SchedulerConfig, Shutdown, list_alerts,
};
use flotilla_tests::{
    FlotillaProcess, InProcessWorker, WorkerProcess, eventually, fast_config, http_server,
};
use flotilla_worker::{QueueWeight, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

/// Scheduler settings that reconcile twice a second with short deadlines.
const FAST_CHECKS: [(&str, &str); 4] = [
    ("FLOTILLA_RECONCILE__INTERVAL", "500ms"),
    ("FLOTILLA_RECONCILE__START_DEADLINE", "1s"),
    ("FLOTILLA_RECONCILE__FINISH_DEADLINE", "5s"),
    ("FLOTILLA_RECONCILE__WORKER_TIMEOUT", "1s"),
];

fn env_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    FAST_CHECKS.iter().chain(extra).copied().collect()
}

async fn active(env: &Env) -> Vec<Alert> {
    list_alerts(&mut env.conn.clone(), &env.keys, 0)
        .await
        .expect("alerts")
        .0
}

async fn wait_alert(env: &Env, kind: &str, subject: &str) -> Alert {
    eventually(LONG, &format!("alert {kind} on {subject}"), || async {
        active(env)
            .await
            .into_iter()
            .find(|a| a.kind == kind && a.subject == subject)
    })
    .await
}

async fn wait_resolved(env: &Env, kind: &str, subject: &str) {
    eventually(
        LONG,
        &format!("alert {kind} on {subject} to resolve"),
        || async {
            let (active, history) = list_alerts(&mut env.conn.clone(), &env.keys, 100)
                .await
                .expect("alerts");
            let gone = !active
                .iter()
                .any(|a| a.kind == kind && a.subject == subject);
            let logged = history
                .iter()
                .any(|e| e.event == "resolved" && e.kind == kind && e.subject == subject);
            (gone && logged).then_some(())
        },
    )
    .await
}

#[tokio::test]
async fn a_schedule_whose_jobs_never_run_is_reported_and_alerts_until_they_do() {
    let env = Env::start().await;
    let checks: Vec<_> = env_with(&[]);
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &checks, None);
    let mut schedule = Schedule::new("reports", "noop");
    schedule.every = Some("1s".into());
    schedule.queue = "reports".into();
    schedule.catch_up = CatchUp::All;
    ScheduleStore::new(env.conn.clone(), env.keys.clone())
        .put(&schedule)
        .await
        .expect("saved");

    let alert = wait_alert(&env, "schedule_late", "reports").await;
    assert!(alert.message.contains("not started"), "{}", alert.message);
    // On demand, the same finding.
    let config = ReconcileConfig {
        start_deadline: Duration::from_secs(1),
        ..ReconcileConfig::default()
    };
    let report = Reconciler::new(env.conn.clone(), env.keys.clone(), config)
        .run(false, true)
        .await
        .expect("report");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::TickLate && f.subject == "reports" && f.open)
    );

    // A worker for the queue arrives; the backlog runs and the alert resolves.
    let mut worker_config = fast_config();
    worker_config.queues = vec![QueueWeight::new("reports", 1)];
    let worker = InProcessWorker::start(&env.url(), worker_config, Registry::with_builtins()).await;
    wait_resolved(&env, "schedule_late", "reports").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_killed_worker_raises_not_responding_and_repair_hands_its_job_on() {
    let env = Env::start().await;
    let mut owner = WorkerProcess::start(&env.url(), &[], None);
    let id = env.enqueue("sleep", json!({"ms": 30000})).await;
    let running = env.wait_status("default", &id, Status::Running, LONG).await;
    let dead_worker = running.worker.expect("worker id");
    owner.signal("KILL");
    owner.wait_exit(Duration::from_secs(5));
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &env_with(&[]), None);
    let alert = wait_alert(&env, "worker_not_responding", &dead_worker).await;
    assert!(
        alert.message.contains("owns 1 entries of queue default"),
        "{}",
        alert.message
    );
    // Repair put the job back on its stream; a live worker finishes it.
    let requeued = env.wait_status("default", &id, Status::Pending, LONG).await;
    assert!(
        requeued
            .error
            .as_deref()
            .is_some_and(|e| e.contains("stopped responding"))
    );
    env.set_payload("default", &id, json!({"ms": 10})).await;
    let _rescuer = WorkerProcess::start(&env.url(), &[], None);
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2);
    wait_resolved(&env, "worker_not_responding", &dead_worker).await;
}

#[tokio::test]
async fn repair_hands_on_a_killed_workers_job_with_an_id_of_its_own_and_its_id_key() {
    let env = Env::start().await;
    let mut owner = WorkerProcess::start(&env.url(), &[], None);
    let job = NewJob::new("sleep", &json!({"ms": 1500}))
        .expect("job")
        .id("thumbnail-4");
    let id = env.enqueue_job(job).await;
    let running = env.wait_status("default", &id, Status::Running, LONG).await;
    let dead_worker = running.worker.expect("worker id");
    owner.signal("KILL");
    owner.wait_exit(Duration::from_secs(5));
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &env_with(&[]), None);
    wait_alert(&env, "worker_not_responding", &dead_worker).await;
    // The copy on the stream is the job: its id key names it, and the job is found there.
    env.wait_status("default", &id, Status::Pending, LONG).await;
    let held: String = env
        .cmd(redis::cmd("GET").arg(env.keys.id_key("default", &id)))
        .await;
    let copy: Vec<(String, HashMap<String, Vec<u8>>)> = env
        .cmd(
            redis::cmd("XRANGE")
                .arg(env.keys.stream("default"))
                .arg(&held)
                .arg(&held),
        )
        .await;
    assert_eq!(copy.len(), 1, "the id key names the copy");
    assert_eq!(
        copy[0].1.get("attempts").map(Vec::as_slice),
        Some(&b"1"[..]),
        "charged the attempt its worker died in"
    );
    let _rescuer = WorkerProcess::start(&env.url(), &[], None);
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2, "the interrupted attempt counts");
}

#[tokio::test]
async fn reconcile_finds_stranded_jobs_and_repair_requeues_them() {
    let env = Env::start().await;
    let stream = env.keys.stream("default");
    // A pending job whose entry vanished (jobs with records: the sweep reads records).
    let lost_entry = env.enqueue_with_record("noop", json!({})).await;
    let entry = env.entry_of("default", &lost_entry).await;
    env.create_group("default").await;
    env.cmd::<i64>(redis::cmd("XDEL").arg(&stream).arg(&entry))
        .await;
    // A running job whose entry is no longer pending (acknowledged without a state change).
    let ghost = env.enqueue_with_record("noop", json!({})).await;
    let entry = env.entry_of("default", &ghost).await;
    env.deliver_to("default", "ghost").await;
    env.cmd::<()>(
        redis::cmd("HSET")
            .arg(env.keys.job("default", &ghost))
            .arg("status")
            .arg("running"),
    )
    .await;
    env.cmd::<i64>(redis::cmd("XACK").arg(&stream).arg("workers").arg(&entry))
        .await;

    let cli = |args: &[&str]| {
        std::process::Command::new(flotilla_tests::flotilla_bin())
            .args(args)
            .env("FLOTILLA_REDIS_URL", env.url())
            .output()
            .expect("flotilla runs")
    };
    let output = cli(&["reconcile", "--json"]);
    // Open findings are a failure to whoever runs the check, after the report.
    assert!(
        !output.status.success(),
        "exit 0 with open findings: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let find = |kind: &str, subject: &str| crate::repair::finding(&report, kind, subject);
    assert!(
        find("orphan_pending", &lost_entry).is_some_and(|f| f["open"] == true),
        "{report}"
    );
    assert!(
        find("orphan_running", &ghost).is_some_and(|f| f["open"] == true),
        "{report}"
    );
    assert_eq!(report["complete_sweep"], true);

    let repaired = cli(&["reconcile", "--repair"]);
    assert!(repaired.status.success(), "everything was repaired");
    let text = String::from_utf8_lossy(&repaired.stdout);
    assert_eq!(
        text.matches("orphan_running").count(),
        2,
        "each finding once, and in the counts: {text}"
    );
    assert!(
        !String::from_utf8_lossy(&repaired.stderr).contains("orphan_running"),
        "the findings are printed, not also logged"
    );
    assert!(
        text.contains("repaired")
            && text.contains("orphan_running")
            && text.contains("orphan_pending"),
        "{text}"
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for id in [&lost_entry, &ghost] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    worker.stop().await;
    let clean = cli(&["reconcile"]);
    assert!(String::from_utf8_lossy(&clean.stdout).contains("no findings"));
}

#[tokio::test]
async fn a_growing_dlq_raises_an_alert_posted_to_the_webhook() {
    let env = Env::start().await;
    let (hook, bodies) = http_server(vec![OK; 4]);
    let checks = env_with(&[("FLOTILLA_ALERTS__DLQ_THRESHOLD", "2")]);
    let mut checks: Vec<(&str, &str)> = checks;
    let hook_env = ("FLOTILLA_ALERTS__WEBHOOK_URL", hook.as_str());
    checks.push(hook_env);
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &checks, None);
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for _ in 0..2 {
        env.enqueue_job(
            NewJob::new("fail", &json!({"times": -1}))
                .expect("encodes")
                .max_attempts(1),
        )
        .await;
    }
    let alert = wait_alert(&env, "dlq_growing", "default").await;
    assert!(
        alert.message.contains("2 jobs of queue default went dead"),
        "{}",
        alert.message
    );
    let body = eventually(LONG, "the webhook POST", || async {
        bodies.lock().expect("lock").first().cloned()
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["kind"], "dlq_growing");
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("dlq_growing raised")),
        "{body}"
    );
    worker.stop().await;
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

#[tokio::test]
async fn an_old_backlog_and_lost_jobs_raise_alerts() {
    let env = Env::start().await;
    let checks = env_with(&[("FLOTILLA_ALERTS__BACKLOG_MAX_AGE", "1s")]);
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &checks, None);
    env.enqueue_job(
        NewJob::new("noop", &json!({}))
            .expect("encodes")
            .queue("unserved"),
    )
    .await;
    let alert = wait_alert(&env, "backlog_too_old", "unserved").await;
    assert!(
        alert
            .message
            .contains("oldest waiting job of queue unserved"),
        "{}",
        alert.message
    );

    // An entry deleted while pending under a vanished consumer: reclaim finds it gone.
    let id = env.enqueue("noop", json!({})).await;
    let entry = env.entry_of("default", &id).await;
    env.create_group("default").await;
    env.deliver_to("default", "vanished").await;
    env.cmd::<i64>(
        redis::cmd("XDEL")
            .arg(env.keys.stream("default"))
            .arg(&entry),
    )
    .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let alert = wait_alert(&env, "jobs_lost", "default").await;
    assert!(alert.message.contains(&entry), "{}", alert.message);
    worker.stop().await;
}

#[tokio::test]
async fn a_live_worker_with_a_long_lease_is_not_declared_gone() {
    let env = Env::start().await;
    // Beats every 2 s with a 6 s lease: slower than the reconciler's 1 s worker timeout,
    // so every other second the worker looks gone by that timeout alone.
    const HEARTBEAT: Duration = Duration::from_secs(2);
    let slow = [
        ("FLOTILLA_WORKER__HEARTBEAT_INTERVAL", "2s"),
        ("FLOTILLA_WORKER__LEASE_TTL", "6s"),
    ];
    let _worker = WorkerProcess::start(&env.url(), &slow, None);
    let id = env.enqueue("sleep", json!({"ms": 30000})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &env_with(&[]), None);
    // Proves something does not happen: six passes at least, over two heartbeat gaps.
    tokio::time::sleep(HEARTBEAT * 2).await;
    let alerts = active(&env).await;
    assert!(
        alerts.iter().all(|a| a.kind != "worker_not_responding"),
        "{alerts:?}"
    );
    let record = env.record("default", &id).await.expect("record");
    assert_eq!(
        (record.status, record.attempts),
        (Some(Status::Running), 1),
        "the job was taken away"
    );
}

/// A pending job whose stream entry is gone: only a leader's repair puts it back.
async fn strand_a_pending_job(env: &Env) -> String {
    let id = env.enqueue_with_record("noop", json!({})).await;
    let entry = env.entry_of("default", &id).await;
    env.cmd::<i64>(
        redis::cmd("XDEL")
            .arg(env.keys.stream("default"))
            .arg(&entry),
    )
    .await;
    id
}

async fn stream_len(env: &Env) -> usize {
    env.xlen(&env.keys.stream("default")).await
}

#[tokio::test]
async fn only_a_leading_replica_repairs_and_only_while_it_leads() {
    let env = Env::start().await;
    let hold_lease = |ms: u64| {
        redis::cmd("SET")
            .arg(env.keys.leader())
            .arg("another-replica")
            .arg("PX")
            .arg(ms)
            .clone()
    };
    env.cmd::<()>(&mut hold_lease(60_000)).await;
    let config = SchedulerConfig {
        lease_ttl: Duration::from_millis(1500),
        safety_margin: Duration::from_millis(500),
        retry_interval: Duration::from_millis(100),
        reconcile: ReconcileConfig {
            interval: Duration::from_millis(100),
            ..ReconcileConfig::default()
        },
        ..SchedulerConfig::default()
    };
    let (renew_every, reconcile_every) = (config.renew_interval(), config.reconcile.interval);
    let scheduler = Scheduler::connect(&env.url(), config)
        .await
        .expect("scheduler");
    let shutdown = Shutdown::new();
    let task = tokio::spawn(scheduler.run(shutdown.clone()));
    env.cmd::<()>(
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(env.keys.stream("default"))
            .arg(flotilla_proto::CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM"),
    )
    .await;

    // A standby: ten reconcile intervals pass and nothing is repaired.
    strand_a_pending_job(&env).await;
    tokio::time::sleep(10 * reconcile_every).await;
    assert_eq!(stream_len(&env).await, 0, "a standby repaired a job");

    // The lease is free: this replica leads, and its first pass repairs at once.
    env.cmd::<i64>(redis::cmd("DEL").arg(env.keys.leader()))
        .await;
    eventually(
        LONG,
        "the new leader to requeue the stranded job",
        || async { (stream_len(&env).await == 1).then_some(()) },
    )
    .await;

    // The lease is taken away: at its next renewal the replica steps down, and its checks
    // stop with the term.
    env.cmd::<()>(&mut hold_lease(60_000)).await;
    // Its next renewal is at most a renew interval away (nothing outside shows the step
    // down): twice that, for a loaded machine.
    tokio::time::sleep(2 * renew_every).await;
    strand_a_pending_job(&env).await;
    // Proves something does not happen: ten reconcile intervals pass and nothing is repaired.
    tokio::time::sleep(10 * reconcile_every).await;
    assert_eq!(
        stream_len(&env).await,
        1,
        "a replica that lost its lease repaired a job"
    );

    shutdown.trigger();
    task.await.expect("joins").expect("runs");
}

#[tokio::test]
async fn a_worker_that_reads_again_after_its_heartbeat_lapsed_keeps_what_it_took() {
    let env = Env::start().await;
    let id = env.enqueue("noop", json!({})).await;
    env.create_group("default").await;
    // A consumer without a live heartbeat (none at all: its hash expired during a long
    // freeze) that has just read the job, as a worker does the moment it wakes, before
    // its next beat.
    env.deliver_to("default", "woken").await;
    let owner = || async {
        let pending: Vec<(String, String, u64, u64)> = env
            .cmd(
                redis::cmd("XPENDING")
                    .arg(env.keys.stream("default"))
                    .arg("workers")
                    .arg("-")
                    .arg("+")
                    .arg(10),
            )
            .await;
        pending
            .into_iter()
            .map(|(_, consumer, ..)| consumer)
            .collect::<Vec<_>>()
    };
    let worker_timeout = Duration::from_secs(2);
    let config = ReconcileConfig {
        worker_timeout,
        ..ReconcileConfig::default()
    };
    let mut reconciler = Reconciler::new(env.conn.clone(), env.keys.clone(), config);
    let not_responding = |report: &flotilla_scheduler::Report| {
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::WorkerNotResponding && f.subject == "woken")
    };
    let report = reconciler.run(true, true).await.expect("report");
    assert!(!not_responding(&report), "{:?}", report.findings);
    assert_eq!(
        owner().await,
        ["woken"],
        "the job it just took stays its own"
    );

    // Reading nothing for the timeout, it is a dead worker: its job is handed on. The time
    // is the point: the consumer's idle time (by Redis's clock) must pass the timeout.
    tokio::time::sleep(worker_timeout + Duration::from_millis(200)).await;
    let report = reconciler.run(true, true).await.expect("report");
    assert!(not_responding(&report), "{:?}", report.findings);
    assert!(owner().await.is_empty(), "requeued for a live worker");
    assert_eq!(
        env.wait_status("default", &id, Status::Pending, LONG)
            .await
            .status,
        Some(Status::Pending)
    );
}
