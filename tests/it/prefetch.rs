//! Fetching ahead of free slots: quick handlers get entries already fetched, concurrency
//! still holds, slow handlers leave work for idle workers, and entries waiting for a slot
//! at shutdown go back to their stream at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::{JobContext, Registry, WorkerConfig};
use serde_json::json;

use crate::util::{Env, LONG, pause_settle};

/// Job ids by the label of the worker that ran them, in the order they started.
type RunLog = Arc<Mutex<Vec<(String, String)>>>;

fn runs_of(log: &RunLog) -> Vec<(String, String)> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// `quick` returns at once; `slow` sleeps for `slow_for`; both log who ran what.
fn logging_registry(label: &str, log: &RunLog, slow_for: Duration) -> Registry {
    let mut registry = Registry::new();
    for (job_type, pause) in [("quick", Duration::ZERO), ("slow", slow_for)] {
        let (label, log) = (label.to_owned(), Arc::clone(log));
        registry.register(job_type, move |ctx: JobContext| {
            let (label, log) = (label.clone(), Arc::clone(&log));
            async move {
                if let Ok(mut log) = log.lock() {
                    log.push((label, ctx.id.clone()));
                }
                // No timer for a quick job: even a zero sleep waits for the timer's next
                // millisecond tick, which on a busy machine can pass the 2 ms under which
                // the worker counts handlers as quick and fetches ahead for them.
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Ok(None)
            }
        });
    }
    registry
}

fn config(concurrency: usize, prefetch: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        prefetch: Some(prefetch),
        ..fast_config()
    }
}

async fn done_count(env: &Env) -> usize {
    env.completions("default").await.len()
}

#[tokio::test]
async fn quick_jobs_fetched_ahead_still_run_within_concurrency_and_once_each() {
    let env = Env::start().await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut registry = Registry::new();
    {
        let (running, most, runs) = (Arc::clone(&running), Arc::clone(&most), Arc::clone(&runs));
        registry.register("count", move |ctx: JobContext| {
            let (running, most, runs) =
                (Arc::clone(&running), Arc::clone(&most), Arc::clone(&runs));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if let Ok(mut runs) = runs.lock() {
                    *runs.entry(ctx.id.clone()).or_default() += 1;
                }
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(None)
            }
        });
    }
    let mut ids = Vec::new();
    for n in 0..300 {
        ids.push(env.enqueue("count", json!({ "n": n })).await);
    }
    let worker = InProcessWorker::start(&env.url(), config(2, 8), registry).await;
    eventually(LONG, "every job to complete", || async {
        (done_count(&env).await == ids.len()).then_some(())
    })
    .await;
    worker.stop().await;

    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "at most `concurrency` handlers at once, saw {}",
        most.load(Ordering::SeqCst)
    );
    let runs = runs.lock().map(|r| r.clone()).unwrap_or_default();
    for id in &ids {
        assert_eq!(runs.get(id), Some(&1), "job {id} ran once");
    }
    assert_eq!(runs.len(), ids.len());
}

#[tokio::test]
async fn slow_jobs_are_not_fetched_ahead_so_an_idle_worker_takes_them() {
    let env = Env::start().await;
    let log: RunLog = Arc::default();
    let first = env.enqueue("slow", json!({})).await;
    let second = env.enqueue("slow", json!({})).await;
    let slow_for = Duration::from_millis(800);

    let a = InProcessWorker::start(
        &env.url(),
        config(1, 4),
        logging_registry("a", &log, slow_for),
    )
    .await;
    eventually(LONG, "worker a to start a job", || async {
        (!runs_of(&log).is_empty()).then_some(())
    })
    .await;
    let b = InProcessWorker::start(
        &env.url(),
        config(1, 4),
        logging_registry("b", &log, slow_for),
    )
    .await;
    for id in [&first, &second] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    a.stop().await;
    b.stop().await;

    let runs = runs_of(&log);
    assert_eq!(
        runs,
        vec![("a".to_owned(), first), ("b".to_owned(), second)],
        "worker a held no second slow job back from worker b"
    );
}

#[tokio::test]
async fn entries_waiting_for_a_slot_at_shutdown_go_back_to_the_stream_at_once() {
    let env = Env::start().await;
    let log: RunLog = Arc::default();
    let a = InProcessWorker::start(
        &env.url(),
        config(1, 4),
        logging_registry("a", &log, Duration::from_millis(1000)),
    )
    .await;
    // Quick runs first, so the worker fetches ahead from now on.
    for n in 0..24 {
        env.enqueue("quick", json!({ "n": n })).await;
    }
    eventually(LONG, "the quick jobs to complete", || async {
        (done_count(&env).await == 24).then_some(())
    })
    .await;

    // Paused while the next four are enqueued, so one read takes all of them: the slow
    // one takes the only slot and the other three wait for it. The worker sees the pause
    // within a promote interval, but a blocking read it began just before lasts up to a
    // block time (200 ms here) and would take the slow job alone: wait out both.
    let _: () = env
        .cmd(redis::cmd("SADD").arg(env.keys.paused()).arg("default"))
        .await;
    tokio::time::sleep(pause_settle(&config(1, 4))).await;
    let slow = env.enqueue("slow", json!({})).await;
    let mut waiting = Vec::new();
    for n in 0..3 {
        waiting.push(env.enqueue("quick", json!({ "after": n })).await);
    }
    let _: () = env
        .cmd(redis::cmd("SREM").arg(env.keys.paused()).arg("default"))
        .await;
    eventually(LONG, "the slow job to start", || async {
        runs_of(&log)
            .iter()
            .any(|(_, id)| *id == slow)
            .then_some(())
    })
    .await;
    let pending_under_a: usize = env
        .cmd::<redis::streams::StreamPendingReply>(
            redis::cmd("XPENDING")
                .arg(env.keys.stream("default"))
                .arg(flotilla_proto::CONSUMER_GROUP),
        )
        .await
        .count();
    assert_eq!(
        pending_under_a, 4,
        "the three quick jobs were fetched ahead"
    );
    a.stop().await;

    env.wait_status("default", &slow, Status::Completed, LONG)
        .await;
    // The fetched entries themselves (a fast-path job's id is its entry id) are
    // acknowledged, not left pending for reclaim. (A read in flight at shutdown may
    // still take a handed-back job's new entry; that one waits for reclaim.)
    for id in &waiting {
        let pending: Vec<redis::Value> = env
            .cmd(
                redis::cmd("XPENDING")
                    .arg(env.keys.stream("default"))
                    .arg(flotilla_proto::CONSUMER_GROUP)
                    .arg(id)
                    .arg(id)
                    .arg(1),
            )
            .await;
        assert!(pending.is_empty(), "entry {id} is not left pending");
    }
    for id in &waiting {
        let record = env.record("default", id).await.expect("a record");
        assert_eq!(record.status, Some(Status::Pending), "job {id} is back");
        assert!(
            !runs_of(&log).iter().any(|(_, ran)| ran == id),
            "job {id} did not run"
        );
    }

    let b = InProcessWorker::start(
        &env.url(),
        config(1, 4),
        logging_registry("b", &log, Duration::from_millis(1000)),
    )
    .await;
    for id in &waiting {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(done.attempts, 1, "handing back charged no attempt");
        assert_eq!(done.worker.as_deref(), Some(b.id.as_str()));
    }
    b.stop().await;
}
