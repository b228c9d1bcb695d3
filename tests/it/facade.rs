//! The `flotilla` crate as a service uses it: one client per namespace, making the
//! producer, the worker and the admin handle.

use std::time::Duration;

use flotilla::testing::TestRedis;
use flotilla::{Client, ClientError, NewJob, Registry, Shutdown, Status, WorkerConfig};
use serde_json::json;

#[tokio::test]
async fn a_client_makes_a_producer_worker_and_admin_that_share_its_namespace() {
    let redis = TestRedis::start().await.expect("redis");
    let billing = Client::connect(redis.url())
        .await
        .expect("connects")
        .in_namespace("billing")
        .expect("a namespace");
    let other = Client::connect(redis.url())
        .await
        .expect("connects")
        .in_namespace("other")
        .expect("a namespace");

    let worker = billing
        .worker(WorkerConfig::default(), Registry::with_builtins())
        .await
        .expect("a worker");
    let shutdown = Shutdown::new();
    let serving = tokio::spawn(worker.run(shutdown.clone()));

    let enqueued = billing
        .producer()
        .enqueue(NewJob::new("noop", &json!({})).expect("a job"))
        .await
        .expect("enqueued");
    let record = billing
        .producer()
        .wait(&enqueued.full_id(), Duration::from_secs(10))
        .await
        .expect("ends");
    assert_eq!(record.status, Some(Status::Completed));

    let mut admin = billing.admin();
    assert!(
        admin
            .queues()
            .await
            .expect("queues")
            .contains(&"default".to_owned())
    );
    let row = admin
        .exact_job(&enqueued.full_id(), None)
        .await
        .expect("found");
    assert_eq!(row.status, Some(Status::Completed));
    assert!(
        other.admin().queues().await.expect("queues").is_empty(),
        "another namespace sees none of it"
    );
    assert!(
        other
            .producer()
            .status(&enqueued.full_id())
            .await
            .expect("read")
            .is_none(),
        "another namespace cannot read the job"
    );

    shutdown.trigger();
    serving.await.expect("task").expect("stops cleanly");
}

#[tokio::test]
async fn a_client_refuses_a_namespace_that_is_not_a_name_and_an_unreachable_redis() {
    let redis = TestRedis::start().await.expect("redis");
    let client = Client::connect(redis.url()).await.expect("connects");
    assert!(matches!(
        client.in_namespace("has space"),
        Err(ClientError::Namespace(_))
    ));
    let gone = Client::connect("redis://127.0.0.1:1").await;
    match gone {
        Err(ClientError::Unreachable { redis, .. }) => assert_eq!(redis, "redis://127.0.0.1:1"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
