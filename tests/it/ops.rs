//! The ops commands against a real fleet: `queues stats` counts each state exactly,
//! `queues pause` stops fetching with jobs in flight and loses nothing, `workers list`
//! shows each worker and which stopped beating.

use std::process::Command;
use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{WorkerProcess, eventually, fast_config};
use serde_json::{Value, json};

use crate::util::{Env, LONG, pause_settle};

/// Runs `flotilla` with `args` against the test's Redis; returns stdout, or panics with
/// stderr when it fails.
pub(crate) fn flotilla(env: &Env, args: &[&str]) -> String {
    let output = run(env, args);
    assert!(
        output.status.success(),
        "flotilla {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn run(env: &Env, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(args)
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs")
}

/// A job of a type no worker here has a handler for, with one attempt: it dies.
pub(crate) fn unhandled(job_type: &str) -> NewJob {
    NewJob::new(job_type, &json!({}))
        .expect("encodes")
        .max_attempts(1)
}

/// `queues stats --json`, by queue name.
pub(crate) fn stats(env: &Env) -> std::collections::HashMap<String, Value> {
    let text = flotilla(env, &["queues", "stats", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
    list.into_iter()
        .map(|q| (q["queue"].as_str().unwrap_or_default().to_owned(), q))
        .collect()
}

#[tokio::test]
async fn queues_stats_counts_each_state_exactly() {
    let env = Env::start().await;
    // Only `critical` is served: what goes to `default` waits.
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let mut ended = Vec::new();
    for _ in 0..2 {
        let job = NewJob::new("noop", &json!({}))
            .expect("encodes")
            .queue("critical");
        ended.push((env.enqueue_job(job).await, Status::Completed));
    }
    let doomed = NewJob::new("fail", &json!({"times": -1}))
        .expect("encodes")
        .queue("critical")
        .max_attempts(1);
    ended.push((env.enqueue_job(doomed).await, Status::Dead));
    env.leave_waiting(3).await;
    for (id, status) in &ended {
        env.wait_status("critical", id, *status, LONG).await;
    }
    let stats = stats(&env);
    let critical = &stats["critical"];
    assert_eq!(critical["pending"], 0, "{critical}");
    assert_eq!(critical["running"], 0, "{critical}");
    assert_eq!(critical["completed_last_hour"], 2, "{critical}");
    assert_eq!(critical["completed_last_day"], 2, "{critical}");
    assert_eq!(critical["dead"], 1, "{critical}");
    assert_eq!(critical["dead_last_hour"], 1, "{critical}");
    assert_eq!(critical["paused"], false, "{critical}");
    let default = &stats["default"];
    assert_eq!(default["pending"], 3, "{default}");
    assert_eq!(default["lag"], 3, "{default}");
    assert_eq!(default["scheduled"], 1, "{default}");
    assert_eq!(default["completed_last_day"], 0, "{default}");
    assert!(
        default["oldest_pending_age"].as_f64() > Some(0.0),
        "{default}"
    );

    let table = flotilla(&env, &["queues", "stats"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("QUEUE") && header.contains("PENDING"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("default ")), "{table}");
}

#[tokio::test]
async fn a_paused_queue_is_not_fetched_from_and_nothing_is_lost() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_WORKER__CONCURRENCY", "2")], None);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(env.enqueue("sleep", json!({"ms": 400})).await);
    }
    env.wait_status("default", &ids[0], Status::Running, LONG)
        .await;
    let paused = flotilla(&env, &["queues", "pause", "default"]);
    assert!(paused.contains("paused default"), "{paused}");
    // Fetching stops: once the pause has reached the worker (and the read it had waiting
    // has ended) and the jobs it held have finished, or gone back to the stream if fetched
    // ahead, what is on the stream stays there.
    let settle = pause_settle(&fast_config());
    tokio::time::sleep(settle).await;
    eventually(LONG, "the jobs held at the pause to finish", || async {
        (stats(&env)["default"]["running"] == 0).then_some(())
    })
    .await;
    for _ in 0..5 {
        ids.push(env.enqueue("sleep", json!({"ms": 10})).await);
    }
    let waiting = stats(&env)["default"]["pending"].as_i64();
    // Proves something does not happen: a worker serving the queue would take the new
    // entries at its next read; twice the pause's settling time pass without one.
    tokio::time::sleep(2 * settle).await;
    let default = &stats(&env)["default"];
    assert_eq!(default["paused"], true, "{default}");
    assert_eq!(
        default["pending"].as_i64(),
        waiting,
        "nothing was fetched: {default}"
    );
    assert!(waiting >= Some(5), "{default}");

    flotilla(&env, &["queues", "resume", "default"]);
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    assert_eq!(stats(&env)["default"]["completed_last_hour"], 9);

    let typo = run(&env, &["queues", "pause", "defualt"]);
    assert!(!typo.status.success());
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(
        stderr.contains("defualt") && stderr.contains("default"),
        "{stderr}"
    );
}

#[tokio::test]
async fn workers_list_shows_each_worker_and_which_stopped_beating() {
    let env = Env::start().await;
    let first = WorkerProcess::start(&env.url(), &[], None);
    let second = WorkerProcess::start(&env.url(), &[], None);
    let listed = |env: &Env| -> Vec<Value> {
        serde_json::from_str(&flotilla(env, &["workers", "list", "--json"])).expect("JSON")
    };
    let workers = eventually(LONG, "both workers registered", || async {
        let workers = listed(&env);
        (workers.len() == 2).then_some(workers)
    })
    .await;
    let pids: Vec<u64> = workers.iter().filter_map(|w| w["pid"].as_u64()).collect();
    for worker in [&first, &second] {
        assert!(pids.contains(&u64::from(worker.pid())), "{workers:?}");
    }
    for worker in &workers {
        assert_eq!(worker["state"], "alive", "{worker}");
        assert!(
            worker["queues"]
                .as_array()
                .is_some_and(|q| q.contains(&json!("default")))
        );
    }
    // A frozen worker stops beating; past its lease (1.5 s here) it shows as silent.
    first.signal("STOP");
    let silent = eventually(LONG, "the frozen worker listed as silent", || async {
        listed(&env)
            .into_iter()
            .find(|w| w["pid"].as_u64() == Some(u64::from(first.pid())) && w["state"] == "silent")
    })
    .await;
    assert!(silent["last_heartbeat_ms"].as_i64().is_some(), "{silent}");
    first.signal("CONT");
    let table = flotilla(&env, &["workers", "list"]);
    assert!(table.starts_with("WORKER"), "{table}");
}

#[tokio::test]
async fn a_dead_job_is_retried_by_id_with_fresh_attempts() {
    let env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), &[], None);
    let id = env.enqueue_job(unhandled("report")).await;
    env.wait_status("default", &id, Status::Dead, LONG).await;
    let done_id = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &done_id, Status::Completed, LONG)
        .await;
    drop(worker);

    let retried = flotilla(&env, &["jobs", "retry", &id[..12]]);
    assert!(
        retried.contains(&format!("retried default:{id}")),
        "{retried}"
    );
    let record = env.wait_status("default", &id, Status::Pending, LONG).await;
    assert_eq!(record.attempts, 0, "a fresh set of attempts");
    assert_eq!(
        env.xlen(&env.keys.dead("default")).await,
        0,
        "its dead letter is gone"
    );
    assert_eq!(stats(&env)["default"]["dead_last_hour"], 0);

    // A worker that knows the type runs it.
    let handles = "[handlers.report]\nkind = \"exec\"\ncommand = [\"true\"]\n";
    let _worker = WorkerProcess::start(&env.url(), &[], Some(handles));
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;

    let refused = run(&env, &["jobs", "retry", &done_id]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("completed, not dead"), "{stderr}");
}

#[tokio::test]
async fn ten_thousand_dead_jobs_are_retried_by_one_command() {
    const JOBS: usize = 10_000;
    let env = Env::start().await;
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut registry = flotilla_worker::Registry::new();
    let flag = std::sync::Arc::clone(&broken);
    registry.register("flaky", move |_ctx: flotilla_worker::JobContext| {
        let broken = flag.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if broken {
                Err(flotilla_worker::HandlerError::retry("downstream is down"))
            } else {
                Ok(None)
            }
        }
    });
    let mut config = flotilla_tests::fast_config();
    config.concurrency = 50;
    config.jobs.retention.dead_max_len = 50_000;
    let _worker = flotilla_tests::InProcessWorker::start(&env.url(), config, registry).await;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|n| {
            NewJob::new("flaky", &json!({ "n": n }))
                .expect("encodes")
                .max_attempts(1)
        })
        .collect();
    for enqueued in env.producer.enqueue_bulk(jobs).await.expect("enqueued") {
        enqueued.expect("each job enqueued");
    }
    let dead_stream = env.keys.dead("default");
    eventually(LONG, "every job dead", || async {
        (env.xlen(&dead_stream).await == JOBS).then_some(())
    })
    .await;

    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let retried = flotilla(
        &env,
        &["jobs", "retry", "--dead", "--queue", "default", "--yes"],
    );
    assert!(
        retried.contains(&format!("retried {JOBS} dead jobs")),
        "{retried}"
    );
    eventually(LONG, "every retried job completed", || async {
        (stats(&env)["default"]["completed_last_hour"] == JOBS).then_some(())
    })
    .await;
    assert_eq!(env.xlen(&dead_stream).await, 0);
    let again = flotilla(&env, &["jobs", "retry", "--dead", "--yes"]);
    assert!(again.contains("no dead jobs match"), "{again}");
}

#[tokio::test]
async fn dead_list_shows_the_newest_first_and_dead_show_the_whole_error() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    let mut ids = Vec::new();
    for job_type in ["report", "export"] {
        let id = env.enqueue_job(unhandled(job_type)).await;
        env.wait_status("default", &id, Status::Dead, LONG).await;
        ids.push(id);
    }
    let listed: Vec<Value> =
        serde_json::from_str(&flotilla(&env, &["dead", "list", "--json"])).expect("JSON");
    let listed_ids: Vec<&str> = listed.iter().filter_map(|d| d["job_id"].as_str()).collect();
    assert_eq!(
        listed_ids,
        [ids[1].as_str(), ids[0].as_str()],
        "newest first"
    );
    let export = &listed[0];
    assert_eq!(export["type"], "export");
    assert_eq!(export["queue"], "default");
    assert_eq!(export["attempts"], 1);
    let error = export["error"].as_str().unwrap_or_default().to_owned();
    assert!(!error.is_empty(), "{export}");

    let only: Vec<Value> = serde_json::from_str(&flotilla(
        &env,
        &["dead", "list", "--type", "report", "--json"],
    ))
    .expect("JSON");
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["job_id"], ids[0].as_str());
    let table = flotilla(&env, &["dead", "list"]);
    assert!(
        table.starts_with("JOB") && table.contains("export"),
        "{table}"
    );
    let shown = flotilla(&env, &["dead", "show", &ids[1]]);
    assert!(shown.contains("dead") && shown.contains(&error), "{shown}");
}

#[tokio::test]
async fn cancel_stops_a_running_job_at_once_and_a_finished_one_is_left_alone() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_WORKER__CONCURRENCY", "1")], None);
    let long = env.enqueue("sleep", json!({"ms": 20_000})).await;
    env.wait_status("default", &long, Status::Running, LONG)
        .await;
    let behind = env.enqueue("noop", json!({})).await;
    let asked = std::time::Instant::now();
    let said = flotilla(&env, &["jobs", "cancel", &long]);
    assert!(said.contains("it was running"), "{said}");
    // The one slot frees long before the 20 s handler would have ended.
    env.wait_status("default", &behind, Status::Completed, LONG)
        .await;
    assert!(asked.elapsed() < Duration::from_secs(10));
    let record = env
        .wait_status("default", &long, Status::Cancelled, LONG)
        .await;
    assert_eq!(record.status, Some(Status::Cancelled));

    let again = flotilla(&env, &["jobs", "cancel", &behind]);
    assert!(
        again.contains("had already finished (completed)"),
        "{again}"
    );
}

#[tokio::test]
async fn drain_waits_until_a_queue_is_empty_and_says_what_is_left_when_it_gives_up() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(env.enqueue("sleep", json!({"ms": 50})).await);
    }
    let drained = flotilla(&env, &["queues", "drain", "default", "--timeout", "60s"]);
    assert!(drained.contains("default is drained"), "{drained}");
    for id in &ids {
        let record = env.record("default", id).await;
        assert_eq!(
            record.and_then(|r| r.status),
            Some(Status::Completed),
            "{id}"
        );
    }

    flotilla(&env, &["queues", "pause", "default"]);
    // The pause reaches the worker and the read it had waiting ends: the job enqueued next
    // stays on the stream.
    tokio::time::sleep(pause_settle(&fast_config())).await;
    env.enqueue("noop", json!({})).await;
    let stuck = run(&env, &["queues", "drain", "default", "--timeout", "1s"]);
    assert!(!stuck.status.success());
    let stderr = String::from_utf8_lossy(&stuck.stderr);
    assert!(stderr.contains("still holds 1 jobs"), "{stderr}");
}

#[tokio::test]
async fn purge_deletes_old_finished_jobs_and_a_dry_run_only_counts() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    let mut ended = Vec::new();
    for _ in 0..3 {
        ended.push((env.enqueue("noop", json!({})).await, Status::Completed));
    }
    // A unique job has a record as well as its completion; a job with only an id of its
    // own has its id key, which names its completion.
    let named = NewJob::new("noop", &json!({}))
        .expect("encodes")
        .id("nightly-2026-11-24")
        .unique("nightly", Duration::from_secs(3600));
    ended.push((env.enqueue_job(named).await, Status::Completed));
    let own = NewJob::new("noop", &json!({}))
        .expect("encodes")
        .id("hourly-2026-11-24T10");
    ended.push((env.enqueue_job(own).await, Status::Completed));
    for _ in 0..2 {
        ended.push((env.enqueue_job(unhandled("report")).await, Status::Dead));
    }
    for (id, status) in &ended {
        env.wait_status("default", id, *status, LONG).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let recent = flotilla(
        &env,
        &["jobs", "purge", "--completed", "--older-than", "1h"],
    );
    assert!(
        recent.contains("nothing completed is older than 1h"),
        "{recent}"
    );
    let counted = flotilla(
        &env,
        &[
            "jobs",
            "purge",
            "--completed",
            "--older-than",
            "0s",
            "--dry-run",
        ],
    );
    assert!(
        counted.contains("would delete 1 completed job records and 5 stream entries"),
        "{counted}"
    );
    assert_eq!(
        env.completions("default").await.len(),
        5,
        "a dry run deletes nothing"
    );

    let purged = flotilla(
        &env,
        &[
            "jobs",
            "purge",
            "--completed",
            "--older-than",
            "0s",
            "--yes",
        ],
    );
    assert!(
        purged.contains("deleted 1 completed job records and 5 stream entries"),
        "{purged}"
    );
    assert_eq!(env.completions("default").await.len(), 0);
    assert!(env.record("default", "nightly-2026-11-24").await.is_none());
    let id_key: Option<String> = env
        .cmd(redis::cmd("GET").arg(env.keys.id_key("default", "hourly-2026-11-24T10")))
        .await;
    assert_eq!(id_key, None, "the id key goes with the completion it named");

    let dead = flotilla(
        &env,
        &["jobs", "purge", "--dead", "--older-than", "0s", "--yes"],
    );
    assert!(
        dead.contains("deleted 2 dead job records and 2 stream entries"),
        "{dead}"
    );
    assert_eq!(env.xlen(&env.keys.dead("default")).await, 0);
    assert_eq!(stats(&env)["default"]["dead_last_day"], 0);
}
