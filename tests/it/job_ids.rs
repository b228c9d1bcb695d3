//! One job per id: an id a producer gives its job can never take the form of a stream
//! entry id, which names the jobs without an id of their own, so no job shadows, loses
//! or forges another.

use std::collections::HashMap;

use flotilla_producer::{NewJob, ProducerError};
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG};

/// An entry id a minute ahead of the server's clock, so that the test chooses it before
/// Redis would (within the day ahead a worker accepts).
async fn future_entry(env: &Env) -> String {
    let (secs, _): (u64, u64) = env.cmd(&mut redis::cmd("TIME")).await;
    format!("{}-0", secs * 1000 + 60_000)
}

/// Adds a raw entry to `default` that gives itself `id`, and waits for it to be
/// dead-lettered: its entry id, and its dead letter's fields.
async fn claim_by_raw_entry(env: &Env, id: &str) -> (String, HashMap<String, String>) {
    let claimer = env
        .xadd(
            "default",
            &[("id", id.as_bytes()), ("type", b"noop"), ("payload", b"{}")],
        )
        .await;
    let dead = eventually(LONG, "the claiming entry to be dead-lettered", || async {
        env.dead_entries("default").await.into_iter().next()
    })
    .await;
    (claimer, dead)
}

#[tokio::test]
async fn an_own_id_of_an_entry_ids_form_is_dead_lettered_and_shadows_nothing() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let future = future_entry(&env).await;
    let ahead = future.as_str();
    // A raw entry claims, as its own id, the entry id another job will have.
    let (claimer, dead) = claim_by_raw_entry(&env, ahead).await;
    assert!(
        dead.get("error")
            .is_some_and(|e| e.contains("stream entry id")),
        "{dead:?}"
    );
    assert_eq!(
        dead.get("id"),
        Some(&claimer),
        "kept under its own entry id, not the one it claimed"
    );

    // The job that entry id really names runs, fails once and is retried to success.
    let entry: String = env
        .cmd(
            redis::cmd("XADD")
                .arg(env.keys.stream("default"))
                .arg(ahead)
                .arg("type")
                .arg("fail")
                .arg("payload")
                .arg(r#"{"times":1}"#),
        )
        .await;
    assert_eq!(entry, ahead);
    let record = env
        .wait_status("default", ahead, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 2);
    assert_eq!(record.result, Some(json!({"succeeded_on_attempt": 2})));
    worker.stop().await;
}

#[tokio::test]
async fn a_finished_jobs_id_cannot_be_taken_to_forge_its_result() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let id = env.enqueue("sleep", json!({"ms": 1})).await;
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.result, Some(json!({"slept_ms": 1})));
    // A second job claims the finished one's id, with a result of its own to show.
    env.xadd(
        "default",
        &[
            ("id", id.as_bytes()),
            ("type", b"sleep"),
            ("payload", br#"{"ms": 2}"#),
        ],
    )
    .await;
    eventually(LONG, "the claiming entry to be dead-lettered", || async {
        env.dead_entries("default").await.into_iter().next()
    })
    .await;
    let after = env.record("default", &id).await.expect("the job is known");
    assert_eq!(after.status, Some(Status::Completed));
    assert_eq!(
        after.result,
        Some(json!({"slept_ms": 1})),
        "the finished job's result still stands"
    );
    worker.stop().await;
}

#[tokio::test]
async fn producers_refuse_an_own_id_of_an_entry_ids_form() {
    let env = Env::start().await;
    let job = NewJob::new("noop", &json!({}))
        .expect("encodes")
        .id("1700000000000-5");
    let error = env.producer.enqueue(job).await.expect_err("refused");
    assert!(
        matches!(error, ProducerError::Encoding(_))
            && error.to_string().contains("stream entry id"),
        "{error}"
    );
    // Ids that only look numeric are still anyone's to give.
    for own in ["1700000000000", "order-17", "2024-01-02T03"] {
        let job = NewJob::new("noop", &json!({})).expect("encodes").id(own);
        assert_eq!(env.producer.enqueue(job).await.expect("enqueued").id, own);
    }
    // The published script refuses it too, for producers in other languages.
    let refused = crate::util::published_enqueue(&env, "17-1", "0").await;
    let error = refused.expect_err("BAD_ID");
    assert_eq!(error.code(), Some("BAD_ID"), "{error}");
}

#[tokio::test]
async fn an_own_id_of_a_full_ids_form_is_refused_and_dead_lettered() {
    let env = Env::start().await;
    // Another queue's job without an id of its own, named by its full id.
    let other = env
        .xadd("mail", &[("type", b"noop"), ("payload", b"{}")])
        .await;
    let full = flotilla_proto::full_id("mail", &other);
    let job = NewJob::new("noop", &json!({}))
        .expect("encodes")
        .id(full.as_str());
    let error = env.producer.enqueue(job).await.expect_err("refused");
    assert!(error.to_string().contains("full id"), "{error}");
    let refused = crate::util::published_enqueue(&env, &full, "0").await;
    assert_eq!(refused.expect_err("BAD_ID").code(), Some("BAD_ID"));
    // Ids with a colon that name no entry are anyone's.
    for own in ["order:17", "mail:1-2-3"] {
        let job = NewJob::new("noop", &json!({})).expect("encodes").id(own);
        assert_eq!(env.producer.enqueue(job).await.expect("enqueued").id, own);
    }

    // A raw entry giving itself that full id never runs as it: it is dead-lettered under
    // its own entry id.
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let (claimer, dead) = claim_by_raw_entry(&env, &full).await;
    assert!(
        dead.get("error").is_some_and(|e| e.contains("full id")),
        "{dead:?}"
    );
    assert_eq!(dead.get("id"), Some(&claimer), "{dead:?}");
    worker.stop().await;
}
