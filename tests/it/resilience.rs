//! Redis going away: a worker survives a restart of its server and carries on by itself.

use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, WorkerProcess, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG};

#[tokio::test]
async fn an_in_process_worker_reconnects_after_redis_restarts() {
    let mut env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let before = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &before, Status::Completed, LONG)
        .await;
    env.redis.kill();
    // The time is the point: gone for a few of the worker's heartbeats and blocking reads,
    // so that they fail and are retried before the server is back.
    let config = fast_config();
    tokio::time::sleep(3 * config.heartbeat_interval.max(config.block_time)).await;
    env.redis.restart();
    env.reconnect().await;
    // The restarted server is empty: no group, no scripts. The worker recreates both.
    let after = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &after, Status::Completed, LONG)
        .await;
    assert!(!worker.is_finished());
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_process_survives_a_redis_restart_without_restarting_itself() {
    let mut env = Env::start().await;
    let mut worker = WorkerProcess::start(&env.url(), &[], None);
    let before = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &before, Status::Completed, LONG)
        .await;
    env.redis.kill();
    // Proves something does not happen: over five of its heartbeats and blocking reads
    // (the process runs with the settings of `fast_config`), all failing, it stays up.
    let config = fast_config();
    tokio::time::sleep(5 * config.heartbeat_interval.max(config.block_time)).await;
    assert!(
        !worker.has_exited(),
        "worker crashed when Redis went away:\n{}",
        worker.log()
    );
    env.redis.restart();
    env.reconnect().await;
    let after = env.enqueue("sleep", json!({"ms": 50})).await;
    env.wait_status("default", &after, Status::Completed, LONG)
        .await;
    assert!(!worker.has_exited());
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{}", worker.log());
}

#[tokio::test]
async fn an_outcome_reached_while_redis_is_unreachable_is_written_once_it_is_back() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let id = env.enqueue("sleep", json!({"ms": 400})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    // A frozen server: connections hang and time out, but nothing is lost. Frozen for two
    // leases: the job ends meanwhile, its outcome waits, and its entry looks abandoned by
    // the time the server wakes.
    env.redis.signal("STOP");
    tokio::time::sleep(2 * fast_config().lease_ttl).await;
    env.redis.signal("CONT");
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(
        record.attempts, 1,
        "the completion landed; the job did not run again"
    );
    assert_eq!(record.result, Some(json!({"slept_ms": 400})));
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_never_restarts_its_own_running_job_when_its_entry_looks_abandoned() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let id = env.enqueue("sleep", json!({"ms": 2000})).await;
    let running = env.wait_status("default", &id, Status::Running, LONG).await;
    let owner = running.worker.expect("owner");
    let entry = env.entry_of("default", &id).await;
    // What a Redis frozen past the lease leaves behind: the running job's entry, still
    // owned by its live worker, idle far longer than the lease. The worker's own reclaim
    // pass finds it; it must not start the job a second time.
    for _ in 0..10 {
        let _: redis::Value = env
            .cmd(
                redis::cmd("XCLAIM")
                    .arg(env.keys.stream("default"))
                    .arg("workers")
                    .arg(&owner)
                    .arg(0)
                    .arg(&entry)
                    .arg("IDLE")
                    .arg(600_000)
                    .arg("JUSTID"),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(
        record.attempts, 1,
        "the worker started its own running job again"
    );
    worker.stop().await;
}
