//! Workers that die, freeze or are told to stop: nothing is lost, nothing runs twice
//! where it must not, and late results from a frozen worker are refused.

use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{JSON_LOGS, WorkerProcess, eventually, fast_config};
use serde_json::json;

use crate::util::{Env, LONG};

/// A worker settings file with an `exec` handler whose result names the worker's pid.
const REPORT_PID: &str = r#"
[handlers.report_pid]
kind = "exec"
command = ["sh", "-c", "sleep 1.5; echo \"{\\\"pid\\\": $PPID}\""]

[handlers.kill_my_worker]
kind = "exec"
command = ["sh", "-c", "kill -9 $PPID; sleep 5"]
"#;

#[tokio::test]
async fn a_job_of_a_killed_worker_is_completed_by_another_after_its_heartbeat_expires() {
    let env = Env::start().await;
    let mut first = WorkerProcess::start(&env.url(), &[], None);
    let id = env.enqueue("sleep", json!({"ms": 3000})).await;
    let running = env.wait_status("default", &id, Status::Running, LONG).await;
    first.signal("KILL");
    assert!(first.wait_exit(Duration::from_secs(5)).is_some());
    let killed_at = Instant::now();
    let second = WorkerProcess::start(&env.url(), &[], None);
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 2, "the interrupted attempt counts");
    assert_ne!(record.worker, running.worker, "another worker finished it");
    // Reclaim waits for the lease (1.5 s here) to run out, not less.
    assert!(killed_at.elapsed() >= Duration::from_millis(1500) - Duration::from_millis(300));
    drop(second);
}

#[tokio::test]
async fn a_job_longer_than_the_lease_on_a_live_worker_runs_once() {
    let env = Env::start().await;
    // The job runs for over twice the lease while a second worker looks for work to reclaim.
    let owner = WorkerProcess::start(&env.url(), &[], None);
    let id = env.enqueue("sleep", json!({"ms": 4000})).await;
    let running = env.wait_status("default", &id, Status::Running, LONG).await;
    let other = WorkerProcess::start(&env.url(), JSON_LOGS, None);
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 1, "never started twice");
    assert_eq!(record.worker, running.worker);
    let reclaims: Vec<_> = other
        .json_logs()
        .into_iter()
        .filter(|line| !line["fields"]["reclaimed"].is_null())
        .collect();
    assert!(reclaims.is_empty(), "{reclaims:?}");
    drop(owner);
}

#[tokio::test]
async fn a_frozen_worker_that_wakes_up_cannot_overwrite_the_newer_attempt() {
    let env = Env::start().await;
    let zombie = WorkerProcess::start(&env.url(), JSON_LOGS, Some(REPORT_PID));
    let id = env.enqueue("report_pid", json!({})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    zombie.signal("STOP");
    let rescuer = WorkerProcess::start(&env.url(), &[], Some(REPORT_PID));
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2);
    assert_eq!(done.result, Some(json!({"pid": rescuer.pid()})));
    zombie.signal("CONT");
    let noticed = eventually(
        LONG,
        "the woken worker to notice its lease is gone",
        || async {
            zombie.json_logs().into_iter().find(|line| {
                line["level"] == "WARN"
                    && line["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("lease lost"))
            })
        },
    )
    .await;
    assert_eq!(noticed["fields"]["job"], id.as_str());
    // Proves something does not happen: the woken worker's heartbeat and outcome writer act
    // within a heartbeat interval (the process runs with the settings of `fast_config`);
    // three of them pass without its late result landing.
    tokio::time::sleep(3 * fast_config().heartbeat_interval).await;
    let after = env.record("default", &id).await.expect("record");
    assert_eq!(
        after.result,
        Some(json!({"pid": rescuer.pid()})),
        "the late result was refused"
    );
    assert_eq!(after.finished_at, done.finished_at);
    assert_eq!(after.attempts, 2);
}

#[tokio::test]
async fn sigterm_finishes_short_jobs_hands_back_long_ones_and_exits_zero() {
    let env = Env::start().await;
    let mut worker =
        WorkerProcess::start(&env.url(), &[("FLOTILLA_WORKER__CONCURRENCY", "4")], None);
    let short: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(env.enqueue("sleep", json!({"ms": 600})).await);
        }
        ids
    };
    let long = env.enqueue("sleep", json!({"ms": 30000})).await;
    for id in short.iter().chain([&long]) {
        env.wait_status("default", id, Status::Running, LONG).await;
    }
    let signalled = Instant::now();
    worker.signal("TERM");
    let status = worker
        .wait_exit(Duration::from_secs(10))
        .expect("worker exits");
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}\n{}", worker.log());
    assert!(
        took < Duration::from_millis(2000 + 1500),
        "took {took:?} with a 2 s grace"
    );
    for id in &short {
        assert_eq!(
            env.record("default", id).await.and_then(|r| r.status),
            Some(Status::Completed)
        );
    }
    let handed_back = env.record("default", &long).await.expect("record");
    assert_eq!(handed_back.status, Some(Status::Pending));
    assert_eq!(
        handed_back.attempts, 0,
        "a handed-back attempt is not charged"
    );
    // The worker left its consumer group.
    let consumers: Vec<redis::Value> = env
        .cmd(
            redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(env.keys.stream("default"))
                .arg("workers"),
        )
        .await;
    assert!(consumers.is_empty(), "consumer left behind");
    let workers: u64 = env.cmd(redis::cmd("ZCARD").arg(env.keys.workers())).await;
    assert_eq!(workers, 0);
    // Another worker picks the long job up and finishes it.
    let _next = WorkerProcess::start(&env.url(), &[], None);
    // Shorten the handed-back job so the test need not wait 30 s for it.
    env.set_payload("default", &long, json!({"ms": 10})).await;
    let record = env
        .wait_status("default", &long, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 1);
}

#[tokio::test]
async fn a_poison_pill_that_kills_every_worker_ends_dead() {
    let env = Env::start().await;
    let job = NewJob::new("kill_my_worker", &json!({}))
        .expect("encodes")
        .max_attempts(3);
    let id = env.enqueue_job(job).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut deaths = 0;
    let record = loop {
        assert!(
            Instant::now() < deadline,
            "poison pill still not dead after {deaths} worker deaths"
        );
        let mut worker = WorkerProcess::start(&env.url(), &[], Some(REPORT_PID));
        // Each worker either dies on the job or finds it already dead.
        let mut finished = None;
        while finished.is_none() && Instant::now() < deadline {
            if worker.has_exited() {
                deaths += 1;
                break;
            }
            let record = env.record("default", &id).await.expect("record");
            if record.status == Some(Status::Dead) {
                finished = Some(record);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(record) = finished {
            break record;
        }
    };
    assert_eq!(deaths, 3, "each attempt killed a worker");
    assert_eq!(record.attempts, 3);
    // Each interrupted attempt is in the history, though none of its workers wrote a word.
    let attempts: Vec<u32> = record.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "{:?}", record.errors);
    assert!(
        record
            .errors
            .iter()
            .all(|e| e.error.contains("stopped responding")),
        "{:?}",
        record.errors
    );
    let error = record.error.expect("reason");
    assert!(error.contains("attempts spent"), "{error}");
    assert!(error.contains("stopped responding"), "{error}");
    assert_eq!(env.dead_entries("default").await.len(), 1);
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let env = Env::start().await;
    let mut worker = WorkerProcess::start(
        &env.url(),
        &[("FLOTILLA_WORKER__SHUTDOWN_GRACE", "20s")],
        None,
    );
    // With a record, so the test can shorten the job for its rescuer.
    let id = env.enqueue_with_record("sleep", json!({"ms": 30000})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    worker.signal("TERM");
    // Proves something does not happen: a worker that did not wait for its job would be
    // gone once its blocking read returned (the process runs with the settings of
    // `fast_config`); half a read more and it is still draining.
    tokio::time::sleep(fast_config().block_time * 3 / 2).await;
    assert!(
        !worker.has_exited(),
        "the first signal drains within the 20 s grace"
    );
    let second = Instant::now();
    worker.signal("INT");
    let status = worker.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "took {:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{}", worker.log());
    // The job it abandoned is still safe: its entry stays pending for reclaim.
    let _rescuer = WorkerProcess::start(&env.url(), &[], None);
    env.set_payload("default", &id, json!({"ms": 10})).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 2);
}
