//! Reading jobs back from Rust: a producer answers a job's state by its full or own id,
//! and waits for it to end, woken by its completion rather than by polling.

use std::time::Duration;

use flotilla_producer::{NewJob, Producer, ProducerError, Status};
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::Registry;
use serde_json::{Value, json};

use crate::ops::unhandled;
use crate::util::Env;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_producer_reads_a_job_back_and_waits_for_it_to_end() {
    let env = Env::start().await;
    let producer = Producer::connect(env.url().as_str())
        .await
        .expect("connects");
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;

    // A job without an id of its own, by its full id; the wait wakes at its completion.
    let sleeping = producer
        .enqueue(NewJob::new("sleep", &json!({"ms": 200})).expect("encodes"))
        .await
        .expect("enqueues");
    let full = sleeping.full_id();
    let record = producer.wait(&full, WAIT).await.expect("it ends");
    let woke_at = flotilla_proto::server_time_ms(&mut env.conn.clone())
        .await
        .expect("time");
    assert_eq!(record.status, Some(Status::Completed), "{record:?}");
    assert_eq!(record.full_id(), full);
    assert_eq!(record.result, Some(json!({"slept_ms": 200})));
    // Woken by the completion, not by the once-a-second look a cancel needs.
    let finished = record.finished_at.expect("finished at") as i64;
    assert!(
        woke_at - finished < 500,
        "woke {} ms after",
        woke_at - finished
    );
    let again = producer.status(&full).await.expect("reads");
    assert_eq!(again.map(|r| r.status), Some(Some(Status::Completed)));

    // An own id, without its queue, and its result as a type.
    let job = NewJob::new("sleep", &json!({"ms": 1}))
        .expect("encodes")
        .id("report-7");
    producer.enqueue(job).await.expect("enqueues");
    let result: Value = producer
        .wait_result("report-7", WAIT)
        .await
        .expect("completes");
    assert_eq!(result, json!({"slept_ms": 1}));

    // A job that dies is an error carrying why.
    let dead = producer
        .enqueue(unhandled("ghost").max_attempts(1))
        .await
        .expect("enqueues");
    let failed = producer.wait_result::<Value>(&dead.full_id(), WAIT).await;
    assert!(
        matches!(&failed, Err(ProducerError::Failed { status: Status::Dead, error: Some(e), .. }) if e.contains("no handler")),
        "{failed:?}"
    );

    // A job not yet due is waited for until the time given runs out.
    let later = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("encodes")
                .delay(Duration::from_secs(60)),
        )
        .await
        .expect("enqueues");
    let waited = producer
        .wait(&later.full_id(), Duration::from_millis(300))
        .await;
    assert!(
        matches!(
            waited,
            Err(ProducerError::WaitTimedOut {
                status: Some(Status::Scheduled),
                ..
            })
        ),
        "{waited:?}"
    );

    // A producer in another namespace sees none of these jobs.
    let elsewhere = Producer::connect(env.url().as_str())
        .await
        .expect("connects")
        .in_namespace("elsewhere")
        .expect("a name");
    assert!(elsewhere.status(&full).await.expect("reads").is_none());
    assert!(elsewhere.status("report-7").await.expect("reads").is_none());
    assert!(matches!(
        producer.clone().in_namespace("a b"),
        Err(ProducerError::Encoding(_))
    ));

    // An id no job has.
    assert!(
        producer
            .status("no-such-job")
            .await
            .expect("reads")
            .is_none()
    );
    assert!(matches!(
        producer.wait("no-such-job", WAIT).await,
        Err(ProducerError::NoSuchJob(_))
    ));
    assert!(
        producer
            .status("default:1-0")
            .await
            .expect("reads")
            .is_none()
    );
    worker.stop().await;
}
