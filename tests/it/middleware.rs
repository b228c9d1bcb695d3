//! Middleware around handlers: order, seeing and changing answers, answering alone.

use std::sync::{Arc, Mutex};

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{HandlerError, HandlerResult, JobContext, Next, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.lock().expect("lock").push(line);
}

#[tokio::test]
async fn middleware_runs_around_every_handler_outermost_first_and_may_change_the_answer() {
    let env = Env::start().await;
    let log: Log = Arc::default();
    let mut registry = Registry::new();
    let seen = Arc::clone(&log);
    // Added before the handler: it still wraps it.
    registry.around(move |ctx: JobContext, next: Next| {
        let seen = Arc::clone(&seen);
        async move {
            note(
                &seen,
                format!("outer before {} attempt {}", ctx.job_type, ctx.attempt),
            );
            let answer = next.run(ctx).await;
            note(&seen, format!("outer after ok={}", answer.is_ok()));
            answer
        }
    });
    let seen = Arc::clone(&log);
    registry.register_fn("double", move |n: i64, _ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            note(&seen, "handler".to_owned());
            Ok::<_, HandlerError>(n * 2)
        }
    });
    let seen = Arc::clone(&log);
    registry.around(move |ctx: JobContext, next: Next| {
        let seen = Arc::clone(&seen);
        async move {
            note(&seen, "inner before".to_owned());
            let answer: HandlerResult = next.run(ctx).await;
            note(&seen, "inner after".to_owned());
            answer.map(|result| Some(json!({ "wrapped": result })))
        }
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("double", json!(21)).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(record.result, Some(json!({"wrapped": 42})));
    assert_eq!(
        log.lock().expect("lock").as_slice(),
        [
            "outer before double attempt 1",
            "inner before",
            "handler",
            "inner after",
            "outer after ok=true"
        ]
    );
}

#[tokio::test]
async fn middleware_may_answer_without_running_the_handler() {
    let env = Env::start().await;
    let ran = Arc::new(Mutex::new(0_u32));
    let counted = Arc::clone(&ran);
    let mut registry = Registry::new();
    registry.register_fn("charge", move |_: serde_json::Value, _ctx: JobContext| {
        let counted = Arc::clone(&counted);
        async move {
            *counted.lock().expect("lock") += 1;
            Ok::<_, HandlerError>(())
        }
    });
    registry.around(|ctx: JobContext, next: Next| async move {
        if ctx
            .args::<serde_json::Value>()
            .ok()
            .and_then(|p| p.get("blocked").cloned())
            == Some(json!(true))
        {
            return Err(HandlerError::give_up("refused: the account is blocked"));
        }
        next.run(ctx).await
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let refused = env.enqueue("charge", json!({"blocked": true})).await;
    let allowed = env.enqueue("charge", json!({"blocked": false})).await;
    let dead = env
        .wait_status("default", &refused, Status::Dead, LONG)
        .await;
    env.wait_status("default", &allowed, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(
        dead.error.as_deref(),
        Some("refused: the account is blocked")
    );
    assert_eq!(*ran.lock().expect("lock"), 1, "only the allowed job ran");
}
