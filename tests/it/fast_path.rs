//! Protocol 2's fast path: a job to run now is one stream entry carrying the whole job,
//! runs with no record, and lands in the queue's `done` stream; anything unusual gives it
//! a record.

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{JobContext, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

/// Built-ins, plus `attempt`, which answers with the attempt it runs as.
fn registry() -> Registry {
    let mut registry = Registry::with_builtins();
    registry.register("attempt", |ctx: JobContext| async move {
        Ok(Some(
            json!({"attempt": ctx.attempt, "max": ctx.max_attempts}),
        ))
    });
    registry
}

async fn record_exists(env: &Env, id: &str) -> bool {
    env.cmd::<bool>(redis::cmd("EXISTS").arg(env.keys.job("default", id)))
        .await
}

#[tokio::test]
async fn a_job_to_run_now_is_one_entry_and_its_completion_lands_in_done() {
    let env = Env::start().await;
    let id = env.enqueue("attempt", json!({"n": 7})).await;
    assert!(
        !record_exists(&env, &id).await,
        "no record on the fast path"
    );
    let fields: std::collections::HashMap<String, String> = env
        .cmd::<redis::streams::StreamRangeReply>(
            redis::cmd("XRANGE")
                .arg(env.keys.stream("default"))
                .arg(&id)
                .arg(&id),
        )
        .await
        .ids
        .first()
        .expect("the entry")
        .map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                redis::from_redis_value_ref(v).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(fields.get("type").map(String::as_str), Some("attempt"));
    // Only what the job sets travels: no options of its own, so type and payload.
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["content_type", "payload", "type"]);

    let worker = InProcessWorker::start(&env.url(), fast_config(), registry()).await;
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.result.as_ref().map(|r| &r["attempt"]), Some(&json!(1)));
    assert_eq!(done.attempts, 1);
    assert_eq!(done.worker.as_deref(), Some(worker.id.as_str()));
    assert!(!record_exists(&env, &id).await, "still no record");
    let left: usize = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(left, 0, "the entry is acknowledged and deleted");
    let completions: usize = env
        .cmd(redis::cmd("XLEN").arg(env.keys.done("default")))
        .await;
    assert_eq!(completions, 1);
    worker.stop().await;
}

#[tokio::test]
async fn an_entry_counts_the_attempts_it_carries_and_one_past_its_last_is_dead() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry()).await;
    // Two attempts spent before this entry: it runs as the third and last.
    let third = env
        .xadd(
            "default",
            &[
                ("type", b"attempt"),
                ("attempts", b"2"),
                ("max_attempts", b"3"),
            ],
        )
        .await;
    let done = env
        .wait_status("default", &third, Status::Completed, LONG)
        .await;
    assert_eq!(done.result, Some(json!({"attempt": 3, "max": 3})));
    // All three spent: a poison pill, never run.
    let spent = env
        .xadd(
            "default",
            &[
                ("type", b"attempt"),
                ("attempts", b"3"),
                ("max_attempts", b"3"),
            ],
        )
        .await;
    let dead = env.wait_status("default", &spent, Status::Dead, LONG).await;
    let error = dead.error.unwrap_or_default();
    assert!(error.contains("attempts spent (3 of 3)"), "{error}");
    assert_eq!(dead.result, None, "it never ran");
    worker.stop().await;
}

/// The names of the fields of the entry `id` on the default queue's stream.
async fn entry_field_names(env: &Env, id: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = env
        .cmd(
            redis::cmd("XRANGE")
                .arg(env.keys.stream("default"))
                .arg(id)
                .arg(id),
        )
        .await;
    let mut names: Vec<String> = reply
        .ids
        .first()
        .map(|entry| entry.map.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_job_without_options_of_its_own_runs_with_its_workers_defaults() {
    let env = Env::start().await;
    let plain = env.enqueue("attempt", json!({})).await;
    let own = env
        .enqueue_job(
            NewJob::new("attempt", &json!({}))
                .expect("encodes")
                .max_attempts(2),
        )
        .await;
    assert_eq!(
        entry_field_names(&env, &plain).await,
        ["content_type", "payload", "type"]
    );
    assert_eq!(
        entry_field_names(&env, &own).await,
        ["content_type", "max_attempts", "payload", "type"],
        "an option the job sets travels in its entry"
    );
    // The producer's defaults say 3; the worker's say 7, and they apply.
    let mut config = fast_config();
    config.jobs.defaults.max_attempts = 7;
    let worker = InProcessWorker::start(&env.url(), config, registry()).await;
    let plain = env
        .wait_status("default", &plain, Status::Completed, LONG)
        .await;
    let own = env
        .wait_status("default", &own, Status::Completed, LONG)
        .await;
    assert_eq!(plain.result, Some(json!({"attempt": 1, "max": 7})));
    assert_eq!(own.result, Some(json!({"attempt": 1, "max": 2})));
    worker.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_without_a_record_and_its_completion_keeps_its_errors() {
    let env = Env::start().await;
    let id = env.enqueue("fail", json!({"times": 1})).await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry()).await;
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2);
    // The second attempt read `times` from the payload its retry's entry carried.
    assert_eq!(done.result, Some(json!({"succeeded_on_attempt": 2})));
    assert!(!record_exists(&env, &id).await, "no record");
    let attempts: Vec<u32> = done.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1], "the completion keeps the errors: {done:?}");
    assert_eq!(done.error, None, "a success clears the last error");
    worker.stop().await;
}

#[tokio::test]
async fn a_completion_in_the_same_millisecond_as_its_job_is_found() {
    let env = Env::start().await;
    // A completion written in the millisecond its job was enqueued can take a lower
    // sequence number in `done` than the job's own id.
    let job_id = "1795476667464-1";
    let _: String = env
        .cmd(
            redis::cmd("XADD")
                .arg(env.keys.done("default"))
                .arg("1795476667464-0")
                .arg(&[
                    ("id", job_id),
                    ("type", "noop"),
                    ("attempts", "1"),
                    ("worker", "w"),
                    ("run_ms", "0"),
                    ("result", ""),
                ]),
        )
        .await;
    let record = env.record("default", job_id).await.expect("found in done");
    assert_eq!(record.status, Some(Status::Completed));
    assert_eq!(record.job_type, "noop");
}
