//! Jobs that wait for their time without a record (protocol 2.7): a delayed job and a
//! failed attempt's retry wait in `later`, their id key holding the entry they become;
//! every reader and action finds them there, and a queue left by protocol 2.6 (delayed
//! records) still drains.

use std::time::{Duration, Instant};

use flotilla_producer::{Cancelled, NewJob, Outcome};
use flotilla_proto::{Backoff, Status, Waiting};
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// What `id`'s id key in `queue` holds, as bytes (a waiting job's is binary).
async fn id_key(env: &Env, queue: &str, id: &str) -> Option<Vec<u8>> {
    env.cmd(redis::cmd("GET").arg(env.keys.id_key(queue, id)))
        .await
}

/// Whether `id` has a record in `queue`.
async fn has_record(env: &Env, queue: &str, id: &str) -> bool {
    env.cmd(redis::cmd("EXISTS").arg(env.keys.job(queue, id)))
        .await
}

/// How many jobs wait in `queue`'s `later` set.
async fn waiting_count(env: &Env, queue: &str) -> usize {
    env.cmd(redis::cmd("ZCARD").arg(env.keys.later(queue)))
        .await
}

/// The job `id` once it is no longer running, while it waits for its retry.
async fn wait_retry(env: &Env, id: &str) -> flotilla_proto::JobRecord {
    env.wait_status("default", id, Status::Failed, LONG).await
}

#[tokio::test]
async fn a_delayed_job_waits_without_a_record_and_every_reader_finds_it() {
    let env = Env::start().await;
    let later = |id: &str| {
        NewJob::new("noop", &json!({"n": 1}))
            .expect("job")
            .id(id)
            .delay(Duration::from_secs(60))
    };
    let enqueued = env
        .producer
        .enqueue(later("digest-7"))
        .await
        .expect("enqueue");
    assert_eq!(enqueued.outcome, Outcome::Created);
    env.enqueue_job(later("digest-8")).await;
    assert!(!has_record(&env, "default", "digest-7").await, "no record");
    let held = id_key(&env, "default", "digest-7")
        .await
        .expect("an id key");
    let waiting = Waiting::parse(&held).expect("the entry it becomes");
    assert_eq!(waiting.status, Status::Scheduled);
    assert_eq!(waiting.text("type").as_deref(), Some("noop"));
    assert_eq!(waiting_count(&env, "default").await, 2);

    let record = env.record("default", "digest-7").await.expect("found");
    assert_eq!(record.status, Some(Status::Scheduled));
    assert_eq!(record.payload, json!({"n": 1}));
    let (created, due) = (
        record.created_at.expect("created_at"),
        record.run_at.expect("run_at"),
    );
    assert!(
        (59_000..=61_000).contains(&(due - created)),
        "{created} {due}"
    );

    let again = env
        .producer
        .enqueue(later("digest-7"))
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, Outcome::Exists, "the id is remembered");
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", "digest-7"]);
    assert!(shown.contains("scheduled"), "{shown}");
    let listed = run_flotilla(
        &env.url(),
        &[],
        &["jobs", "list", "--status", "scheduled", "--json"],
    );
    assert!(
        listed.contains("digest-7") && listed.contains("digest-8"),
        "{listed}"
    );

    let cancelled = env
        .producer
        .cancel("default", "digest-7")
        .await
        .expect("cancel");
    assert_eq!(
        cancelled,
        Cancelled::Cancelled {
            was: Some(Status::Scheduled)
        }
    );
    let record = env.record("default", "digest-7").await.expect("found");
    assert_eq!(record.status, Some(Status::Cancelled));
    assert_eq!(record.payload, json!({"n": 1}), "kept from its entry");
    run_flotilla(&env.url(), &[], &["jobs", "delete", "digest-8", "--yes"]);
    assert_eq!(env.record("default", "digest-8").await, None);
    assert_eq!(id_key(&env, "default", "digest-8").await, None, "id freed");
    assert_eq!(waiting_count(&env, "default").await, 0);
}

#[tokio::test]
async fn a_delayed_job_becomes_a_whole_entry_when_due_and_runs_without_a_record() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let asked = Instant::now();
    let id = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .delay(Duration::from_millis(400)),
        )
        .await;
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert!(asked.elapsed() >= Duration::from_millis(400), "not early");
    assert_eq!(done.attempts, 1);
    assert!(!has_record(&env, "default", &id).await);
    assert_eq!(id_key(&env, "default", &id).await, None, "done: no key");
    assert!(
        env.remembered_done("default", &id).await,
        "remembered as completed"
    );
    assert_eq!(waiting_count(&env, "default").await, 0);
}

#[tokio::test]
async fn a_failed_attempt_is_retried_without_a_record_and_keeps_its_history() {
    let env = Env::start().await;
    // A job without an id of its own: its id is its entry's.
    let id = env
        .enqueue_job(
            NewJob::new("fail", &json!({"times": 1}))
                .expect("job")
                .backoff(Backoff::Fixed(Duration::from_millis(1500))),
        )
        .await;
    assert!(flotilla_proto::is_entry_id(&id), "{id}");
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let failed = wait_retry(&env, &id).await;
    assert_eq!(failed.attempts, 1);
    assert!(failed.error.is_some(), "{failed:?}");
    assert_eq!(failed.errors.len(), 1, "{failed:?}");
    assert!(failed.next_run_at.is_some(), "{failed:?}");
    assert_eq!(
        failed.created_at,
        flotilla_proto::entry_id_ms(&id).and_then(|ms| u64::try_from(ms).ok()),
        "created when first enqueued"
    );
    assert!(!has_record(&env, "default", &id).await, "no record");
    let held = id_key(&env, "default", &id).await.expect("an id key");
    assert_eq!(
        Waiting::parse(&held).map(|w| w.status),
        Some(Status::Failed)
    );
    let listed = run_flotilla(
        &env.url(),
        &[],
        &["jobs", "list", "--status", "failed", "--json"],
    );
    assert!(listed.contains(&id), "{listed}");

    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(done.attempts, 2, "failed once, then ran again");
    assert!(!has_record(&env, "default", &id).await, "still no record");
    assert_eq!(id_key(&env, "default", &id).await, None, "done: no key");
    assert!(
        env.remembered_done("default", &id).await,
        "remembered as completed"
    );
}

#[tokio::test]
async fn a_job_failing_every_attempt_without_a_record_ends_dead_with_each_error() {
    let env = Env::start().await;
    let id = env
        .enqueue_job(
            NewJob::new("fail", &json!({"times": -1}))
                .expect("job")
                .id("charge-9")
                .max_attempts(3)
                .backoff(Backoff::Fixed(Duration::from_millis(10))),
        )
        .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let dead = env.wait_status("default", &id, Status::Dead, LONG).await;
    worker.stop().await;
    assert_eq!(dead.attempts, 3);
    let attempts: Vec<u32> = dead.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "{:?}", dead.errors);
    assert!(
        has_record(&env, "default", &id).await,
        "the dead keep records"
    );
    assert_eq!(id_key(&env, "default", &id).await, None);
}

#[tokio::test]
async fn a_retry_waiting_without_a_record_is_cancelled_and_never_runs_again() {
    let env = Env::start().await;
    let id = env
        .enqueue_job(
            NewJob::new("fail", &json!({"times": 1}))
                .expect("job")
                .id("export-5")
                .backoff(Backoff::Fixed(Duration::from_secs(30))),
        )
        .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    wait_retry(&env, &id).await;
    let cancelled = env.producer.cancel("default", &id).await.expect("cancel");
    assert_eq!(
        cancelled,
        Cancelled::Cancelled {
            was: Some(Status::Failed)
        }
    );
    assert_eq!(waiting_count(&env, "default").await, 0);
    let marker = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &marker, Status::Completed, LONG)
        .await;
    worker.stop().await;
    let record = env.record("default", &id).await.expect("a record");
    assert_eq!(record.status, Some(Status::Cancelled));
    assert_eq!(record.attempts, 1, "ran once, never again");
    assert_eq!(record.errors.len(), 1, "its history came along");
}

/// A queue as a protocol-2.6 producer left it: a delayed job with an id and no unique key
/// waits as a record marked `fast` in `delayed`; one with a unique key as a plain record.
#[tokio::test]
async fn delayed_records_left_by_protocol_2_6_are_promoted_and_run() {
    let env = Env::start().await;
    let now_ms = flotilla_proto::server_time_ms(&mut env.conn.clone())
        .await
        .expect("time");
    let payload = serde_json::to_vec(&json!({})).expect("encodes");
    for (id, fast) in [("old-fast", true), ("old-record", false)] {
        let key = env.keys.job("default", id);
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (name, value) in [
            ("id", id.as_bytes()),
            ("type", b"noop".as_slice()),
            ("queue", b"default"),
            ("payload", &payload),
            ("content_type", b"json"),
            ("status", b"scheduled"),
            ("attempts", b"0"),
            ("max_attempts", b"3"),
            ("timeout_ms", b"0"),
            ("backoff", b""),
            ("v", b"2"),
        ] {
            hset.arg(name).arg(value);
        }
        hset.arg("created_at")
            .arg(now_ms)
            .arg("run_at")
            .arg(now_ms + 200);
        if fast {
            hset.arg("fast").arg(1);
        }
        env.cmd::<()>(&mut hset).await;
        env.cmd::<()>(
            redis::cmd("ZADD")
                .arg(env.keys.delayed("default"))
                .arg(now_ms + 200)
                .arg(id),
        )
        .await;
    }
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for id in ["old-fast", "old-record"] {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(done.attempts, 1, "{id}");
    }
    worker.stop().await;
    assert!(!has_record(&env, "default", "old-fast").await, "ran whole");
    eventually(LONG, "delayed emptied", || async {
        let left: usize = env
            .cmd(redis::cmd("ZCARD").arg(env.keys.delayed("default")))
            .await;
        (left == 0).then_some(())
    })
    .await;
}

/// Each bulk result as a word: its outcome, `full` for a queue at its cap, or `refused: `
/// and the id another refusal names.
fn outcome_words(
    results: &[Result<flotilla_producer::Enqueued, flotilla_producer::ProducerError>],
) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(e) => format!("{:?}", e.outcome),
            Err(flotilla_producer::ProducerError::QueueFull(_)) => "full".to_owned(),
            Err(flotilla_producer::ProducerError::Encoding(
                flotilla_proto::ProtoError::BadField { value, .. },
            )) => format!("refused: {value}"),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

#[tokio::test]
async fn a_bulk_of_ids_and_delays_answers_for_each_job_and_keeps_the_cap() {
    let env = Env::start().await;
    let mut policy = flotilla_proto::JobPolicy::default();
    policy.limits.max_queue_len = 4;
    let producer = flotilla_producer::Producer::new(env.conn.clone(), env.keys.clone(), policy);
    env.enqueue_job(
        NewJob::new("noop", &json!({}))
            .expect("job")
            .id("seen-before"),
    )
    .await;
    let job = |id: &str| NewJob::new("noop", &json!({})).expect("job").id(id);
    let results = producer
        .enqueue_bulk(vec![
            job("bulk-1"),
            job("bulk-1"),
            job("seen-before"),
            job("bulk-2").delay(Duration::from_secs(60)),
            job("bulk-3").unique("bulk-3", Duration::from_secs(60)),
            job("bulk-4"),
        ])
        .await
        .expect("bulk");
    let outcomes = outcome_words(&results);
    // The jobs without unique keys go in one call, in order: `seen-before`, `bulk-1`,
    // `bulk-2` (waiting) and `bulk-4` fill the queue to its cap of four; the unique job,
    // sent after them, finds it full.
    assert_eq!(
        outcomes,
        ["Created", "Exists", "Exists", "Created", "full", "Created"],
        "{results:?}"
    );
    assert_eq!(waiting_count(&env, "default").await, 1);
    let held = id_key(&env, "default", "bulk-2").await.expect("an id key");
    assert_eq!(
        Waiting::parse(&held).map(|w| w.status),
        Some(Status::Scheduled)
    );
    assert!(!has_record(&env, "default", "bulk-3").await, "refused");
}

/// A bulk call reads what its ids are known as once for the whole batch: an id that
/// completed (remembered in `done_ids`), one a record holds and one another job of the
/// same call took are each told it exists, and a refused id disturbs none of the others.
#[tokio::test]
async fn a_bulk_of_ids_knows_completed_and_recorded_ids_and_refuses_one_alone() {
    let env = Env::start().await;
    let job = |id: &str| NewJob::new("noop", &json!({})).expect("job").id(id);
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    env.enqueue_job(job("finished")).await;
    env.wait_status("default", "finished", Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert!(env.remembered_done("default", "finished").await);
    env.enqueue_job(job("recorded").unique("recorded", Duration::from_secs(60)))
        .await;
    assert!(has_record(&env, "default", "recorded").await);

    let results = env
        .producer
        .enqueue_bulk(vec![
            job("fresh-1"),
            job("finished"),
            job("recorded"),
            job("7-7"),
            job("fresh-2").delay(Duration::from_secs(60)),
            job("fresh-2"),
            job("fresh-3"),
        ])
        .await
        .expect("bulk");
    let outcomes = outcome_words(&results);
    assert_eq!(
        outcomes,
        [
            "Created",
            "Exists",
            "Exists",
            "refused: 7-7",
            "Created",
            "Exists",
            "Created"
        ],
        "{results:?}"
    );
    assert_eq!(waiting_count(&env, "default").await, 1, "fresh-2 waits");
    for id in ["fresh-1", "fresh-3"] {
        let entry = id_key(&env, "default", id).await.expect("an id key");
        let entry = String::from_utf8_lossy(&entry);
        assert!(flotilla_proto::is_entry_id(&entry), "{id}: {entry}");
    }
    assert_eq!(id_key(&env, "default", "7-7").await, None, "refused");
}

#[tokio::test]
async fn failed_attempts_are_retried_in_one_call_and_one_with_a_record_through_it() {
    let env = Env::start().await;
    let mut registry = Registry::with_builtins();
    // The first attempt of each reports progress (a record) when asked to, then fails.
    registry.register_fn(
        "flaky",
        |args: serde_json::Value, ctx: flotilla_worker::JobContext| async move {
            if args["progress"] == json!(true) {
                ctx.progress(&json!({"attempt": ctx.attempt})).await?;
            }
            if ctx.attempt == 1 {
                return Err(flotilla_worker::HandlerError::retry("first try fails"));
            }
            Ok::<_, flotilla_worker::HandlerError>(json!("ok"))
        },
    );
    let plain: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(env.enqueue("flaky", json!({"progress": false})).await);
        }
        ids
    };
    let tracked = env
        .enqueue_job(
            NewJob::new("flaky", &json!({"progress": true}))
                .expect("job")
                .backoff(Backoff::Fixed(Duration::from_millis(500))),
        )
        .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    // Its record leads: the record says it failed and waits for its retry.
    env.wait_status("default", &tracked, Status::Failed, LONG)
        .await;
    for id in plain.iter().chain([&tracked]) {
        let done = env
            .wait_status("default", id, Status::Completed, LONG)
            .await;
        assert_eq!(done.attempts, 2, "{id}: failed once, then ran again");
        assert_eq!(done.errors.len(), 1, "{id}: {:?}", done.errors);
        assert_eq!(done.errors[0].error, "first try fails");
    }
    worker.stop().await;
    for id in &plain {
        assert!(!has_record(&env, "default", id).await, "{id}: no record");
    }
    let record = env.record("default", &tracked).await.expect("a record");
    assert_eq!(record.progress, Some(json!({"attempt": 2})));
    assert_eq!(record.status, Some(Status::Completed));
}

#[tokio::test]
async fn a_retry_or_a_delayed_job_due_before_the_next_promotion_pass_moves_when_due() {
    let env = Env::start().await;
    let mut config = fast_config();
    // A pass every 20 s: without waking early, neither job below would run within 5 s.
    config.promote_interval = Duration::from_secs(20);
    let later = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .delay(Duration::from_millis(600)),
        )
        .await;
    let retried = env
        .enqueue_job(
            NewJob::new("fail", &json!({"times": 1}))
                .expect("job")
                .backoff(Backoff::Fixed(Duration::from_millis(300))),
        )
        .await;
    let started = Instant::now();
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    for id in [&later, &retried] {
        let done = env
            .wait_status("default", id, Status::Completed, Duration::from_secs(5))
            .await;
        assert!(done.attempts >= 1);
    }
    worker.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
