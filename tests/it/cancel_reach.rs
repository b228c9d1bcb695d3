//! A cancel reaches a running handler within a second, whatever the heartbeat interval,
//! and progress reported after it says the attempt is no longer the job's.

use std::time::{Duration, Instant};

use flotilla_producer::{Cancelled, NewJob, Status};
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{JobContext, Registry};
use serde_json::json;
use tokio::sync::mpsc;

use crate::util::{Env, LONG};

#[tokio::test]
async fn a_cancel_reaches_a_running_handler_within_a_second() {
    let env = Env::start().await;
    // What the handler saw: that it started, then whether progress still counted once
    // it was cancelled.
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel::<(Instant, bool)>();
    let mut registry = Registry::with_builtins();
    registry.register("until_cancelled", move |ctx: JobContext| {
        let (started_tx, stopped_tx) = (started_tx.clone(), stopped_tx.clone());
        async move {
            let _ = started_tx.send(());
            ctx.cancel.cancelled().await;
            let at = Instant::now();
            let recorded = ctx
                .progress(&json!({"step": "after"}))
                .await
                .unwrap_or(true);
            let _ = stopped_tx.send((at, recorded));
            Ok(None)
        }
    });
    let mut config = fast_config();
    // A heartbeat far slower than a second: the cancel must not wait for it.
    config.heartbeat_interval = Duration::from_secs(10);
    config.lease_ttl = Duration::from_secs(30);
    let worker = InProcessWorker::start(&env.url(), config, registry).await;

    let id = env
        .enqueue_job(NewJob::new("until_cancelled", &json!({})).expect("encodes"))
        .await;
    tokio::time::timeout(LONG, started.recv())
        .await
        .expect("the handler starts");
    let cancelled_at = Instant::now();
    let answer = env.producer.cancel("default", &id).await.expect("cancels");
    assert_eq!(
        answer,
        Cancelled::Cancelled {
            was: Some(Status::Running)
        }
    );
    let (stopped_at, recorded) = tokio::time::timeout(LONG, stopped.recv())
        .await
        .expect("the handler is told")
        .expect("a message");
    let took = stopped_at.duration_since(cancelled_at);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(
        !recorded,
        "progress after the cancel says it no longer counts"
    );
    worker.stop().await;
}
