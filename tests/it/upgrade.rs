//! Rolling upgrade: a queue as a protocol-2 fleet (before 2.7) left it, written here by
//! hand: records for jobs that waited, ran, were retried, held a unique key or died, and
//! plain entries pending under a worker that is gone. Today's workers drain all of it,
//! each job once, with its attempts carried over.

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::ops::flotilla;
use crate::util::{Env, LONG};

/// The consumer name of the protocol-2 worker that died holding jobs; it has no
/// heartbeat any more.
const GONE_WORKER: &str = "p2-worker-gone";

/// Writes the record of job `id` of `default` as a protocol-2 producer or worker did,
/// with `status` and the `extra` fields of that state.
async fn old_record(env: &Env, id: &str, status: &str, now_ms: i64, extra: &[(&str, String)]) {
    let payload = serde_json::to_vec(&json!({})).expect("encodes");
    let mut hset = redis::cmd("HSET");
    hset.arg(env.keys.job("default", id))
        .arg("id")
        .arg(id)
        .arg("type")
        .arg("noop")
        .arg("queue")
        .arg("default")
        .arg("payload")
        .arg(payload)
        .arg("content_type")
        .arg("json")
        .arg("status")
        .arg(status)
        .arg("max_attempts")
        .arg(3)
        .arg("timeout_ms")
        .arg(30_000)
        .arg("backoff")
        .arg("fixed:50")
        .arg("created_at")
        .arg(now_ms - 60_000)
        .arg("run_at")
        .arg(now_ms - 60_000)
        .arg("v")
        .arg(2);
    for (name, value) in extra {
        hset.arg(*name).arg(value);
    }
    env.cmd::<()>(&mut hset).await;
    env.cmd::<()>(
        redis::cmd("ZADD")
            .arg(env.keys.index("default", status.parse().expect("a status")))
            .arg(now_ms - 60_000)
            .arg(id),
    )
    .await;
}

/// Adds a record's entry (protocol 2: the entry names the job by its `id`; the record
/// holds the rest) and points the record at it.
async fn old_entry(env: &Env, id: &str) -> String {
    let entry = env.xadd("default", &[("id", id.as_bytes())]).await;
    env.cmd::<()>(
        redis::cmd("HSET")
            .arg(env.keys.job("default", id))
            .arg("entry")
            .arg(&entry),
    )
    .await;
    entry
}

#[tokio::test]
async fn a_queue_a_protocol_2_fleet_left_is_drained_each_job_once() {
    let env = Env::start().await;
    let now_ms = flotilla_proto::server_time_ms(&mut env.conn.clone())
        .await
        .expect("time");
    // The fleet listed its queue, as protocol 2's producers and workers did.
    env.cmd::<()>(redis::cmd("SADD").arg(env.keys.queues()).arg("default"))
        .await;

    // Running on a worker that died: its entry pending under that worker, and a plain
    // entry (protocol 2's fast path) it had taken too.
    old_record(
        &env,
        "p2-running",
        "running",
        now_ms,
        &[
            ("attempts", "1".into()),
            ("worker", GONE_WORKER.into()),
            ("lease", "p2-lease-token".into()),
            ("started_at", (now_ms - 5_000).to_string()),
        ],
    )
    .await;
    old_entry(&env, "p2-running").await;
    let plain = env
        .xadd("default", &[("type", b"noop"), ("payload", b"{}")])
        .await;
    env.create_group("default").await;
    env.deliver_to("default", GONE_WORKER).await;
    // Waiting on the stream, with a record.
    old_record(
        &env,
        "p2-pending",
        "pending",
        now_ms,
        &[("attempts", "0".into())],
    )
    .await;
    old_entry(&env, "p2-pending").await;
    // Failed once, its retry due soon: waiting in `delayed` with its record.
    let soon = (now_ms + 300).to_string();
    old_record(
        &env,
        "p2-retry",
        "failed",
        now_ms,
        &[
            ("attempts", "1".into()),
            ("error", "boom".into()),
            (
                "errors",
                json!([{"attempt": 1, "at": now_ms - 1_000, "error": "boom"}]).to_string(),
            ),
            ("next_run_at", soon.clone()),
        ],
    )
    .await;
    // Scheduled, holding a unique key.
    let lock = env.keys.unique("default", "p2-nightly");
    old_record(
        &env,
        "p2-unique",
        "scheduled",
        now_ms,
        &[("attempts", "0".into()), ("unique_key", lock.clone())],
    )
    .await;
    env.cmd::<()>(redis::cmd("SET").arg(&lock).arg("p2-unique"))
        .await;
    for id in ["p2-retry", "p2-unique"] {
        env.cmd::<()>(
            redis::cmd("ZADD")
                .arg(env.keys.delayed("default"))
                .arg(&soon)
                .arg(id),
        )
        .await;
    }
    // Dead: its record and its dead letter.
    old_record(
        &env,
        "p2-dead",
        "dead",
        now_ms,
        &[
            ("attempts", "3".into()),
            ("error", "gave up".into()),
            ("finished_at", (now_ms - 1_000).to_string()),
        ],
    )
    .await;
    env.cmd::<String>(
        redis::cmd("XADD")
            .arg(env.keys.dead("default"))
            .arg("*")
            .arg("id")
            .arg("p2-dead")
            .arg("type")
            .arg("noop")
            .arg("queue")
            .arg("default")
            .arg("attempts")
            .arg(3)
            .arg("error")
            .arg("gave up")
            .arg("failed_at")
            .arg(now_ms - 1_000),
    )
    .await;

    // The new fleet: a worker of today, and an operator's retry of the dead job.
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let retried = flotilla(&env, &["jobs", "retry", "p2-dead"]);
    assert!(retried.contains("retried p2-dead"), "{retried}");

    for (id, attempts) in [
        ("p2-pending", 1),
        ("p2-running", 2),
        ("p2-retry", 2),
        ("p2-unique", 1),
        ("p2-dead", 1),
    ] {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(done.attempts, attempts, "{id}: {done:?}");
    }
    // The plain entry taken by the gone worker is reclaimed and run as its second attempt.
    let done = env
        .wait_status("default", &plain, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2, "{done:?}");
    let retry = env.record("default", "p2-retry").await.expect("record");
    assert_eq!(retry.errors.len(), 1, "its history came along: {retry:?}");
    // The unique key is free again; nothing is left waiting, running or pending.
    let held: Option<String> = env.cmd(redis::cmd("GET").arg(&lock)).await;
    assert_eq!(held, None, "the unique key was released");
    eventually(LONG, "the queue drained", || async {
        let stream = env.xlen(&env.keys.stream("default")).await;
        let delayed: usize = env
            .cmd(redis::cmd("ZCARD").arg(env.keys.delayed("default")))
            .await;
        (stream == 0 && delayed == 0).then_some(())
    })
    .await;
    worker.stop().await;
}
