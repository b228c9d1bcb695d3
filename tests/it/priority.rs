//! Weighted priority: with every queue full, each queue's share of the work follows its
//! weight, and the lowest queue is never starved.

use std::sync::{Arc, Mutex};

use flotilla_producer::NewJob;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::{JobContext, QueueWeight, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

/// Jobs put in each queue; only the first `SAMPLE` served are counted, while all three
/// queues still hold work.
const PER_QUEUE: usize = 2400;
const SAMPLE: usize = 3000;
/// Allowed distance of each share from its weight, in percentage points. With 3000 draws
/// the standard deviation of a 60 % share is 0.9 points; 4 is over four of them.
const TOLERANCE: f64 = 4.0;

/// Puts `count` `mark` jobs on `queue`.
async fn fill(env: &Env, queue: &str, count: usize) {
    let jobs = (0..count)
        .map(|_| {
            NewJob::new("mark", &json!({}))
                .expect("encodes")
                .queue(queue)
        })
        .collect();
    env.producer.enqueue_bulk(jobs).await.expect("bulk");
}

/// A registry whose `mark` handler records the queue of each job it serves, in order.
fn queue_recorder(served: &Arc<Mutex<Vec<String>>>) -> Registry {
    let seen = Arc::clone(served);
    let mut registry = Registry::new();
    registry.register("mark", move |ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().expect("lock").push(ctx.queue.clone());
            Ok(None)
        }
    });
    registry
}

#[tokio::test]
async fn served_shares_follow_the_weights_and_low_is_not_starved() {
    let env = Env::start().await;
    let queues = ["critical", "default", "low"];
    for queue in queues {
        fill(&env, queue, PER_QUEUE).await;
    }
    let served = Arc::new(Mutex::new(Vec::new()));
    let registry = queue_recorder(&served);
    let mut config = fast_config();
    config.concurrency = 1;
    // The lottery draws a queue per read; fetching ahead makes a read carry up to
    // `prefetch` more entries of the drawn queue, so shares hold over longer windows
    // than this sample. One entry per read tests the draw itself.
    config.prefetch = Some(0);
    config.queues = vec![
        QueueWeight::new("critical", 6),
        QueueWeight::new("default", 3),
        QueueWeight::new("low", 1),
    ];
    let worker = InProcessWorker::start(&env.url(), config, registry).await;
    eventually(LONG, "enough jobs served", || async {
        (served.lock().expect("lock").len() >= SAMPLE).then_some(())
    })
    .await;
    worker.stop().await;
    let served = served.lock().expect("lock");
    let sample = &served[..SAMPLE];
    let shares: Vec<f64> = queues
        .iter()
        .map(|queue| 100.0 * sample.iter().filter(|q| q == queue).count() as f64 / SAMPLE as f64)
        .collect();
    for ((queue, weight), share) in queues.iter().zip([60.0, 30.0, 10.0]).zip(&shares) {
        assert!(
            (share - weight).abs() <= TOLERANCE,
            "{queue}: {share:.1}% served, weight {weight}% (all: {shares:?})"
        );
    }
    eprintln!("shares served: {shares:?}");
    let low_in_first_hundred = sample[..100].iter().filter(|q| *q == "low").count();
    assert!(
        low_in_first_hundred > 0,
        "low was starved in the first 100 jobs"
    );
}

#[tokio::test]
async fn strict_priority_drains_the_heaviest_queue_first() {
    let env = Env::start().await;
    for queue in ["low", "critical"] {
        fill(&env, queue, 20).await;
    }
    let served = Arc::new(Mutex::new(Vec::new()));
    let registry = queue_recorder(&served);
    let mut config = fast_config();
    config.concurrency = 1;
    config.strict_priority = true;
    config.queues = vec![QueueWeight::new("critical", 6), QueueWeight::new("low", 1)];
    let worker = InProcessWorker::start(&env.url(), config, registry).await;
    eventually(LONG, "all jobs served", || async {
        (served.lock().expect("lock").len() >= 40).then_some(())
    })
    .await;
    worker.stop().await;
    let served = served.lock().expect("lock");
    assert!(served[..20].iter().all(|q| q == "critical"), "{served:?}");
}
