//! One liveness rule: a worker is alive while its last heartbeat is within the lease it
//! announced, whoever asks (a reclaiming worker, `flotilla workers`, reconciliation).

use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// Registers a worker that last beat `ago` ago (on the server's clock) with `lease`.
async fn register(env: &Env, id: &str, ago: Duration, lease: Duration) {
    let now = flotilla_proto::server_time_ms(&mut env.conn.clone())
        .await
        .expect("TIME");
    let beat = now - i64::try_from(ago.as_millis()).expect("ms");
    env.cmd::<()>(redis::cmd("ZADD").arg(env.keys.workers()).arg(beat).arg(id))
        .await;
    env.cmd::<()>(
        redis::cmd("HSET")
            .arg(env.keys.worker(id))
            .arg("lease_ms")
            .arg(lease.as_millis() as u64)
            .arg("queues")
            .arg("default")
            .arg("heartbeat_at")
            .arg(beat),
    )
    .await;
}

/// The consumer an entry is pending under and how long it has been without a delivery
/// (XPENDING's idle time), if it is pending.
async fn pending_of(env: &Env, entry: &str) -> Option<(String, Duration)> {
    let pending: Vec<(String, String, u64, u64)> = env
        .cmd(
            redis::cmd("XPENDING")
                .arg(env.keys.stream("default"))
                .arg("workers")
                .arg(entry)
                .arg(entry)
                .arg(1),
        )
        .await;
    pending
        .into_iter()
        .next()
        .map(|(_, owner, idle_ms, _)| (owner, Duration::from_millis(idle_ms)))
}

/// The consumer an entry is pending under, if it is pending.
async fn owner_of(env: &Env, entry: &str) -> Option<String> {
    pending_of(env, entry).await.map(|(owner, _)| owner)
}

/// How long an entry has been pending without a delivery, if it is pending.
async fn idle_of(env: &Env, entry: &str) -> Option<Duration> {
    pending_of(env, entry).await.map(|(_, idle)| idle)
}

#[tokio::test]
async fn every_process_judges_a_worker_by_the_lease_it_announced() {
    let env = Env::start().await;
    // A worker with a long lease, four seconds since its beat: slow, not gone; it holds a
    // job it read. And one with a short lease, as long since its beat: gone.
    let job = env.enqueue("noop", json!({})).await;
    env.create_group("default").await;
    env.deliver_to("default", "slow-beater").await;
    register(
        &env,
        "slow-beater",
        Duration::from_secs(4),
        Duration::from_secs(60),
    )
    .await;
    register(
        &env,
        "gone-worker",
        Duration::from_secs(4),
        Duration::from_secs(1),
    )
    .await;

    let listed = run_flotilla(&env.url(), &[], &["workers", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let state_of = |id: &str| {
        listed
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["id"] == id))
            .map(|row| row["state"].clone())
    };
    assert_eq!(state_of("slow-beater"), Some(json!("alive")), "{listed}");
    assert_eq!(state_of("gone-worker"), Some(json!("silent")), "{listed}");

    // The job's entry is idle past the reclaiming worker's own lease (1.5 s), and so is the
    // slow worker's beat; but its owner is alive by its own lease, so it keeps the job.
    let config = fast_config();
    let lease = config.lease_ttl;
    eventually(LONG, "the entry idle past the lease", || async {
        idle_of(&env, &job)
            .await
            .filter(|idle| *idle > lease)
            .map(|_| ())
    })
    .await;
    // Proves something does not happen: the worker looks for abandoned entries once a
    // heartbeat interval, between two blocking reads at worst; over six such passes it
    // would have taken the job, had it judged the owner by its own lease.
    let reclaim_pass = config.heartbeat_interval + config.block_time;
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    tokio::time::sleep(6 * reclaim_pass).await;
    assert_eq!(
        owner_of(&env, &job).await.as_deref(),
        Some("slow-beater"),
        "a worker alive by its own lease keeps its job"
    );
    // Once its lease says it is gone, its job is reclaimed and runs.
    env.cmd::<()>(
        redis::cmd("HSET")
            .arg(env.keys.worker("slow-beater"))
            .arg("lease_ms")
            .arg(1000),
    )
    .await;
    env.wait_status("default", &job, Status::Completed, LONG)
        .await;
    worker.stop().await;
}
