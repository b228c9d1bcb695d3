//! The service's jobs on a throwaway fleet, and the service itself run against one.

use std::process::Command;
use std::time::Duration;

use flotilla::testing::{TestFleet, TestRedis};
use flotilla::{NewJob, Status};
use flotilla_example_service::{SendWelcome, Sent, registry};

fn welcome(name: &str, email: &str) -> SendWelcome {
    SendWelcome {
        name: name.into(),
        email: email.into(),
    }
}

#[tokio::test]
async fn a_welcome_is_sent_and_its_result_read_back() {
    let fleet = TestFleet::start(registry()).await.expect("fleet");
    let sent: Sent = fleet
        .output(&welcome("Ada", "ada@example.com"))
        .await
        .expect("sent");
    assert_eq!(
        sent,
        Sent {
            to: "ada@example.com".into(),
            text: "Welcome aboard, Ada!".into()
        }
    );
    let record = fleet
        .run(&welcome("Grace", "grace@example.com"))
        .await
        .expect("runs");
    assert_eq!(record.status, Some(Status::Completed));
    assert_eq!(record.queue, "mail", "the job type's queue");
    assert_eq!(
        record.result.expect("a result")["text"],
        "Welcome aboard, Grace!"
    );
    fleet.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn a_malformed_address_is_dead_lettered_without_a_retry() {
    let fleet = TestFleet::start(registry()).await.expect("fleet");
    let record = fleet
        .run(&welcome("Nobody", "nowhere"))
        .await
        .expect("ends");
    assert_eq!(record.status, Some(Status::Dead));
    assert_eq!(record.attempts, 1, "given up at once, not retried");
    assert_eq!(record.max_attempts, 5, "the job type's attempts");
    let dead = fleet.dead().await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .error
            .contains("\"nowhere\" is not an email address"),
        "{dead:?}"
    );
    fleet.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn jobs_enqueued_before_any_worker_runs_are_all_served_once_one_starts() {
    let mut fleet = TestFleet::without_workers().await.expect("fleet");
    for n in 0..20 {
        let job = NewJob::typed(&welcome(&format!("user {n}"), &format!("u{n}@example.com")))
            .expect("typed");
        fleet.producer().enqueue(job).await.expect("enqueued");
    }
    assert!(
        fleet.drain(Duration::from_millis(200)).await.is_err(),
        "nothing serves them yet"
    );
    fleet
        .add_worker(
            flotilla::testing::fast_config(fleet.namespace()),
            registry(),
        )
        .await
        .expect("worker");
    fleet.drain(Duration::from_secs(10)).await.expect("drained");
    assert!(fleet.dead().await.expect("dead letters").is_empty());
    fleet.stop().await.expect("stops cleanly");
}

#[tokio::test]
async fn the_service_serves_and_reads_back_what_it_enqueues() {
    let redis = TestRedis::start().await.expect("redis");
    let output = Command::new(env!("CARGO_BIN_EXE_flotilla-example-service"))
        .args(["Ada=ada@example.com", "Bad=nowhere"])
        .env("FLOTILLA_REDIS_URL", redis.url())
        .env("RUST_LOG", "off")
        .output()
        .expect("the service runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].ends_with(": sent to ada@example.com: Welcome aboard, Ada!"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("not sent") && lines[1].contains("is not an email address"),
        "{stdout}"
    );
}
