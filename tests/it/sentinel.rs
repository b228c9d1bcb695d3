//! Sentinel: a worker process and producers on a `redis+sentinel://` URL follow the
//! primary across a failover without a restart, and a producer that waits for a replica
//! loses none of the jobs it was told were replicated.

use std::time::{Duration, Instant};

use flotilla_producer::{NewJob, Producer, ProducerError};
use flotilla_proto::{Keys, SharedConnection, Status};
use flotilla_tests::{SentinelGroup, WorkerProcess, job_record};
use serde_json::json;

use crate::util::LONG;

/// Enqueues `job`, retrying while the failover makes calls fail, as a producer would.
async fn enqueue_through_failover(producer: &Producer, job: impl Fn() -> NewJob) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        match producer.enqueue(job()).await {
            Ok(enqueued) => return enqueued.id,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "still failing after {LONG:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn wait_completed(conn: &SharedConnection, keys: &Keys, id: &str, worker: &WorkerProcess) {
    let deadline = Instant::now() + LONG;
    loop {
        let record = job_record(&mut conn.clone(), keys, "default", id).await;
        if record.as_ref().and_then(|r| r.status) == Some(Status::Completed) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {:?}, not completed, on the new primary; worker log:\n{}",
            record.and_then(|r| r.status),
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_and_producers_follow_the_primary_sentinel_promotes() {
    let mut group = SentinelGroup::start();
    let url = group.url();
    let worker = WorkerProcess::start(&url, &[], None);
    let producer = Producer::connect(&url)
        .await
        .expect("the producer finds the primary through the sentinels");
    let replicated = Producer::connect(&url)
        .await
        .expect("connects")
        .wait_for_replicas(1, Duration::from_secs(2));

    // Jobs the replica is known to have; many still wait or run when the primary dies.
    let mut before = Vec::new();
    for _ in 0..30 {
        let job = NewJob::new("sleep", &json!({ "ms": 100 })).expect("job");
        before.push(
            replicated
                .enqueue(job)
                .await
                .expect("the replica acknowledges")
                .id,
        );
    }
    group.kill_primary();
    group.wait_for_failover(Duration::from_secs(30));

    // The same producer and the same worker process, now on the promoted replica.
    let mut after = Vec::new();
    for _ in 0..10 {
        after.push(
            enqueue_through_failover(&producer, || NewJob::new("noop", &json!({})).expect("job"))
                .await,
        );
    }
    let client = redis::Client::open(group.replica_url()).expect("url");
    let conn: SharedConnection = redis::aio::ConnectionManager::new(client)
        .await
        .expect("the new primary answers")
        .into();
    let keys = Keys::default();
    for id in before.iter().chain(&after) {
        wait_completed(&conn, &keys, id, &worker).await;
    }

    // With its only replica promoted, nothing acknowledges a waiting producer's write:
    // it hears so, with the id of the job, which exists and runs.
    let deadline = Instant::now() + LONG;
    let unacknowledged = loop {
        match replicated
            .enqueue(NewJob::new("noop", &json!({})).expect("job"))
            .await
        {
            Err(ProducerError::NotReplicated {
                id,
                acknowledged,
                wanted,
            }) => {
                assert_eq!((acknowledged, wanted), (0, 1));
                break id;
            }
            // Its connection may still point at the old primary: it moves on this error.
            Err(e @ ProducerError::Redis(_)) if Instant::now() < deadline => {
                eprintln!("retrying after a failover error: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the waiting producer failed: {e}"),
            Ok(enqueued) => panic!("{} was acknowledged by a replica that is gone", enqueued.id),
        }
    };
    wait_completed(&conn, &keys, &unacknowledged, &worker).await;
    let log = worker.log();
    assert!(
        log.contains("following the primary Sentinel names"),
        "the worker says where it moved:\n{log}"
    );
}
