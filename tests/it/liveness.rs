//! One liveness rule: a worker is alive while its last heartbeat is within the lease it
//! announced, whoever asks (a reclaiming worker, `flotilla workers`, reconciliation).

use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config};
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

/// The consumer an entry is pending under, if it is pending.
async fn owner_of(env: &Env, entry: &str) -> Option<String> {
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
    pending.into_iter().next().map(|(_, owner, _, _)| owner)
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
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
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
