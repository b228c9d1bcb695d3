//! Pausing a queue holds: after `queues pause`, no job of it runs, whichever read brings
//! its entry (one already waiting when the pause came included) and however new the
//! worker (one started while the queue is paused reads the pause before it fetches).
//! Resuming runs every job that waited, each exactly once and uncharged.

use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// A worker whose blocking reads wait two seconds, as by default: a read is in flight
/// for most of any second.
fn slow_reads() -> flotilla_worker::WorkerConfig {
    flotilla_worker::WorkerConfig {
        block_time: Duration::from_secs(2),
        ..fast_config()
    }
}

/// Most of a blocking read of [`slow_reads`]: long after a pause has reached the worker (it
/// rereads the paused set every promote interval, 20 ms), yet within a read it began
/// before the pause, which may still deliver the entries enqueued next.
fn most_of_a_read() -> Duration {
    slow_reads().block_time * 3 / 4
}

/// A plain job and one with its own id, which take the two ways a worker starts jobs.
async fn enqueue_both(env: &Env, cycle: usize) -> [String; 2] {
    let plain = env.enqueue("noop", json!({})).await;
    let own = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .id(&format!("paused-{cycle}")),
        )
        .await;
    [plain, own]
}

async fn assert_waiting(env: &Env, ids: &[String], when: &str) {
    for id in ids {
        let record = env.record("default", id).await.expect("known");
        assert_eq!(
            record.status,
            Some(Status::Pending),
            "{when}: {id} ran while its queue was paused: {record:?}"
        );
    }
}

#[tokio::test]
async fn a_paused_queue_runs_nothing_through_every_pause_and_resume() {
    let env = Env::start().await;
    let url = env.url();
    let worker = InProcessWorker::start(&url, slow_reads(), Registry::with_builtins()).await;
    let first = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &first, Status::Completed, LONG)
        .await;
    for cycle in 0..3 {
        run_flotilla(&url, &[], &["queues", "pause", "default"]);
        // Soon after the pause no worker starts a job of it, even one that a read already
        // waiting on the stream delivers.
        tokio::time::sleep(most_of_a_read()).await;
        let ids = enqueue_both(&env, cycle).await;
        // Proves something does not happen: the two waits add up to more than a block
        // time, so the read that was waiting when the pause came has returned, and what it
        // brought would have started by now had the pause not held it.
        tokio::time::sleep(most_of_a_read()).await;
        assert_waiting(&env, &ids, &format!("cycle {cycle}")).await;
        run_flotilla(&url, &[], &["queues", "resume", "default"]);
        for id in &ids {
            let record = env
                .wait_status("default", id, Status::Completed, LONG)
                .await;
            assert_eq!(record.attempts, 1, "{id} was charged for being put back");
        }
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_started_while_its_queue_is_paused_runs_nothing_of_it() {
    let env = Env::start().await;
    let url = env.url();
    let ids = enqueue_both(&env, 0).await;
    run_flotilla(&url, &[], &["queues", "pause", "default"]);
    let worker = InProcessWorker::start(&url, slow_reads(), Registry::with_builtins()).await;
    // Proves something does not happen: a worker that fetched before reading the paused set
    // would take the waiting entries in its first read, at once.
    tokio::time::sleep(most_of_a_read()).await;
    assert_waiting(&env, &ids, "after the worker started").await;
    // The other queues it serves run as usual meanwhile.
    let low = env
        .enqueue_job(NewJob::new("noop", &json!({})).expect("job").queue("low"))
        .await;
    env.wait_status("low", &low, Status::Completed, LONG).await;
    run_flotilla(&url, &[], &["queues", "resume", "default"]);
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    worker.stop().await;
}
