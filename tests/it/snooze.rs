//! Snooze: a handler says "not yet, run me again in D" without spending an attempt or
//! recording an error, on the fast path and with a record, through Rust, `exec` and
//! `http` handlers; past `limits.max_snoozes` a snooze counts as a failed attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config, http_server};
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde_json::json;

use crate::handlers::{exec, http};
use crate::util::{Env, LONG};

/// Runs per job id, shared with the handler.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// A registry whose `later` handler snoozes each job `times` times for `delay` (first
/// reporting progress, which gives the job a record, when its payload asks), then
/// completes with how many runs it took and how many snoozes its context counted.
fn snoozing(times: u32, delay: Duration, runs: &Runs) -> Registry {
    let mut registry = Registry::with_builtins();
    let runs = Arc::clone(runs);
    registry.register_fn("later", move |args: serde_json::Value, ctx: JobContext| {
        let runs = Arc::clone(&runs);
        async move {
            let run = {
                let mut runs = runs.lock().expect("lock");
                let run = runs.entry(ctx.id.clone()).or_default();
                *run += 1;
                *run
            };
            if args["progress"] == json!(true) {
                ctx.progress(&json!({"run": run})).await?;
            }
            if run <= times {
                return Err(HandlerError::snooze(delay));
            }
            Ok::<_, HandlerError>(json!({"runs": run, "snoozes": ctx.snoozes}))
        }
    });
    registry
}

#[tokio::test]
async fn a_job_snoozed_five_times_completes_with_one_attempt_on_every_path() {
    let env = Env::start().await;
    let runs = Runs::default();
    let registry = snoozing(5, Duration::from_millis(100), &runs);
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let started = Instant::now();
    let plain = env.enqueue("later", json!({})).await;
    let own = env
        .enqueue_job(NewJob::new("later", &json!({})).expect("job").id("snoozer"))
        .await;
    let recorded = env.enqueue("later", json!({"progress": true})).await;
    for id in [&plain, &own, &recorded] {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(
            done.attempts, 1,
            "{id}: a snooze is not an attempt: {done:?}"
        );
        assert_eq!(done.result, Some(json!({"runs": 6, "snoozes": 5})), "{id}");
        assert!(
            done.errors.is_empty(),
            "{id}: a snooze is not an error: {done:?}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "each snooze waited its delay"
    );
    // The job with a record keeps its count of snoozes.
    let record = env.record("default", &recorded).await.expect("a record");
    assert_eq!(record.snoozes, 5, "{record:?}");
    let shown = crate::util::run_flotilla(&env.url(), &[], &["jobs", "show", &recorded]);
    assert!(shown.contains("snoozed      5 times"), "{shown}");
    // Fifteen snoozes in all, tallied for the dashboard and `queues stats`.
    let stats = crate::util::run_flotilla(&env.url(), &[], &["queues", "stats", "--json"]);
    let stats: Vec<serde_json::Value> = serde_json::from_str(&stats).expect("json");
    let default = stats
        .iter()
        .find(|q| q["queue"] == json!("default"))
        .expect("default's stats");
    assert_eq!(default["snoozed_last_hour"], json!(15), "{default}");
    assert_eq!(default["snoozed_last_day"], json!(15), "{default}");
    worker.stop().await;
}

#[tokio::test]
async fn a_snooze_past_the_limit_counts_as_a_failed_attempt() {
    let env = Env::start().await;
    let runs = Runs::default();
    let registry = snoozing(u32::MAX, Duration::from_millis(50), &runs);
    let mut config = fast_config();
    config.jobs.limits.max_snoozes = 2;
    let worker = InProcessWorker::start(&env.url(), config, registry).await;
    let id = env
        .enqueue_job(
            NewJob::new("later", &json!({}))
                .expect("job")
                .max_attempts(2),
        )
        .await;
    let dead = env.wait_status("default", &id, Status::Dead, LONG).await;
    worker.stop().await;
    // Two snoozes, then two attempts that each snoozed once too many.
    assert_eq!(runs.lock().expect("lock").get(&id), Some(&4), "{dead:?}");
    assert_eq!(dead.attempts, 2, "{dead:?}");
    assert_eq!(dead.snoozes, 2, "{dead:?}");
    let error = dead.error.unwrap_or_default();
    assert!(error.contains("snoozed 2 times"), "{error}");
    assert!(error.contains("limits.max_snoozes"), "{error}");
}

#[tokio::test]
async fn exec_exit_75_and_http_425_snooze_for_the_time_they_name() {
    let env = Env::start().await;
    let marker = tempfile::tempdir().expect("dir");
    let flag = marker.path().join("seen");
    let (url, _bodies) = http_server(vec![
        "HTTP/1.1 425 Too Early\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}",
    ]);
    let mut registry = Registry::new();
    // Not yet on the first run: prints the seconds to wait and exits 75.
    registry.register(
        "script",
        exec(&format!(
            "if [ -e {flag} ]; then echo done; else touch {flag}; echo 1; exit 75; fi",
            flag = flag.display()
        )),
    );
    registry.register("hook", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let started = Instant::now();
    let by_exec = env.enqueue("script", json!({})).await;
    let by_http = env.enqueue("hook", json!({})).await;
    for id in [&by_exec, &by_http] {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(done.attempts, 1, "{id}: {done:?}");
        assert!(done.errors.is_empty(), "{id}: {done:?}");
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "both waited the second they named"
    );
    worker.stop().await;
}
