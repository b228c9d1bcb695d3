//! What reconciliation finds and repairs beyond stranded entries: a job waiting for its
//! time that fell out of the delayed set, and a stream whose last id someone pushed to
//! its end, which no bad stream may turn into a fleet that cannot see its queues.

use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::{LAST_POSSIBLE_ID, Status};
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG};

/// `flotilla reconcile` with `args`, as JSON.
fn reconcile(env: &Env, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(flotilla_tests::flotilla_bin())
        .arg("reconcile")
        .args(args)
        .arg("--json")
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The finding of `kind` about `subject` in a reconciliation report, if any.
pub(crate) fn finding(
    report: &serde_json::Value,
    kind: &str,
    subject: &str,
) -> Option<serde_json::Value> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["kind"] == kind && f["subject"] == subject)
        .cloned()
}

#[tokio::test]
async fn a_scheduled_job_missing_from_the_delayed_set_is_found_and_put_back() {
    let env = Env::start().await;
    let id = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .id("lost-from-delayed")
                .delay(Duration::from_millis(300))
                // A unique job waits with its record in `delayed`.
                .unique("lost-from-delayed", Duration::from_secs(60)),
        )
        .await;
    env.cmd::<i64>(redis::cmd("ZREM").arg(env.keys.delayed("default")).arg(&id))
        .await;
    let report = reconcile(&env, &[]);
    assert!(
        finding(&report, "orphan_scheduled", &id).is_some_and(|f| f["open"] == true),
        "{report}"
    );
    let repaired = reconcile(&env, &["--repair"]);
    assert!(
        finding(&repaired, "orphan_scheduled", &id).is_some_and(|f| f["repaired"] == true),
        "{repaired}"
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_job_waiting_without_a_record_missing_from_later_is_found_and_put_back() {
    let env = Env::start().await;
    let id = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                // An id holding what a key's name holds too.
                .id("tenant:id:lost-from-later")
                .delay(Duration::from_millis(300)),
        )
        .await;
    let removed: i64 = env
        .cmd(redis::cmd("ZREM").arg(env.keys.later("default")).arg(&id))
        .await;
    assert_eq!(removed, 1, "it waited in later");
    let report = reconcile(&env, &[]);
    assert!(
        finding(&report, "orphan_waiting", &id).is_some_and(|f| f["open"] == true),
        "{report}"
    );
    let repaired = reconcile(&env, &["--repair"]);
    assert!(
        finding(&repaired, "orphan_waiting", &id).is_some_and(|f| f["repaired"] == true),
        "{repaired}"
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    let again = reconcile(&env, &[]);
    assert!(finding(&again, "orphan_waiting", &id).is_none(), "{again}");
}

#[tokio::test]
async fn an_entry_at_the_last_possible_id_blinds_nothing_and_is_repaired() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let before = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &before, Status::Completed, LONG)
        .await;
    let _: String = env
        .cmd(
            redis::cmd("XADD")
                .arg(env.keys.stream("critical"))
                .arg(LAST_POSSIBLE_ID)
                .arg("type")
                .arg("noop"),
        )
        .await;
    // The worker dead-letters it: only Redis chooses entry ids.
    let dead = eventually(
        LONG,
        "the entry at the last id to be dead-lettered",
        || async { env.dead_entries("critical").await.into_iter().next() },
    )
    .await;
    assert!(
        dead.get("error")
            .is_some_and(|e| e.contains("ahead of the clock")),
        "{dead:?}"
    );
    // Every queue's numbers still read, the stream's own included.
    let stats = crate::util::run_flotilla(&env.url(), &[], &["queues", "stats", "--json"]);
    assert!(stats.contains("\"critical\""), "{stats}");
    // Producers are refused on that stream until it is repaired; the others carry on.
    let refused = env
        .producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .queue("critical"),
        )
        .await;
    assert!(refused.is_err(), "the stream took a job past its last id");
    let report = reconcile(&env, &[]);
    assert!(
        finding(&report, "stream_id_ahead", "critical").is_some_and(|f| f["open"] == true),
        "{report}"
    );
    let repaired = reconcile(&env, &["--repair"]);
    assert!(
        finding(&repaired, "stream_id_ahead", "critical").is_some_and(|f| f["repaired"] == true),
        "{repaired}"
    );
    let after = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .queue("critical"),
        )
        .await;
    env.wait_status("critical", &after, Status::Completed, LONG)
        .await;
    worker.stop().await;
}
