//! Promotion keeps up with a due backlog: a worker moves due jobs onto their stream batch
//! after batch while batches come back full, not one batch per `promote_interval`.

use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::Env;

#[tokio::test]
async fn a_due_backlog_larger_than_a_batch_is_promoted_in_one_tick() {
    let env = Env::start().await;
    // Two and a half batches, all due at once.
    let jobs: Vec<NewJob> = (0..2_500)
        .map(|_| {
            NewJob::new("noop", &json!({}))
                .expect("job")
                .delay(Duration::from_millis(1))
        })
        .collect();
    for result in env.producer.enqueue_bulk(jobs).await.expect("enqueued") {
        result.expect("each job enqueued");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // One promotion tick when the worker starts, the next a minute later: only rounds
    // within the first tick can move all of them in time.
    let config = flotilla_worker::WorkerConfig {
        promote_interval: Duration::from_secs(60),
        concurrency: 50,
        ..fast_config()
    };
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    eventually(
        Duration::from_secs(20),
        "every due job to be promoted in the first tick",
        || async {
            let left: usize = env
                .cmd(redis::cmd("ZCARD").arg(env.keys.delayed("default")))
                .await;
            (left == 0).then_some(())
        },
    )
    .await;
    worker.stop().await;
}
