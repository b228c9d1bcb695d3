//! A job's life on one worker: creation, success, retries with backoff, death, unique and
//! delayed jobs, cancel.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::{Cancelled, NewJob, Outcome, ProducerError};
use flotilla_proto::{Backoff, Status};
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

#[tokio::test]
async fn enqueue_creates_a_pending_record_and_one_stream_entry() {
    let env = Env::start().await;
    let id = env.enqueue("noop", json!({"to": "a@b.c"})).await;
    let record = env.record("default", &id).await.expect("record exists");
    assert_eq!(record.status, Some(Status::Pending));
    assert_eq!(record.attempts, 0);
    assert_eq!(record.max_attempts, 3);
    assert_eq!(record.payload, json!({"to": "a@b.c"}));
    assert_eq!(record.content_type, "msgpack");
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 1);
    let queues: Vec<String> = env.cmd(redis::cmd("SMEMBERS").arg(env.keys.queues())).await;
    assert_eq!(queues, ["default"]);
}

#[tokio::test]
async fn a_job_runs_once_and_stores_its_result() {
    let env = Env::start().await;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&runs);
    let mut registry = Registry::new();
    registry.register_fn("add", move |args: Vec<i64>, ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().expect("lock").push(ctx.id.clone());
            ctx.progress(&json!({"step": "summing"})).await?;
            Ok::<_, HandlerError>(json!({"sum": args.iter().sum::<i64>()}))
        }
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("add", json!([1, 2, 39])).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!({"sum": 42})));
    assert_eq!(record.progress, Some(json!({"step": "summing"})));
    assert_eq!(record.attempts, 1);
    assert_eq!(record.worker.as_deref(), Some(worker.id.as_str()));
    assert!(record.finished_at >= record.started_at && record.started_at.is_some());
    // Finished records expire (rule 10) and the entry is gone from the stream.
    let ttl: i64 = env
        .cmd(redis::cmd("PTTL").arg(env.keys.job("default", &id)))
        .await;
    assert!(ttl > 0, "completed record has a TTL, got {ttl}");
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 0);
    worker.stop().await;
    assert_eq!(runs.lock().expect("lock").as_slice(), [id]);
}

#[tokio::test]
async fn a_job_that_keeps_failing_ends_dead_in_the_dlq_with_its_last_error() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let job = NewJob::new("fail", &json!({"times": -1}))
        .expect("encodes")
        .max_attempts(3);
    let id = env.enqueue_job(job).await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 3);
    let error = record.error.expect("an error is recorded");
    assert!(error.contains("planned failure on attempt 3"), "{error}");
    assert!(error.contains("attempts spent: 3 of 3"), "{error}");
    let dead = env.dead_entries("default").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], id);
    assert!(dead[0]["error"].contains("planned failure on attempt 3"));
    worker.stop().await;
}

/// Runs a job that fails `fails` times under `backoff` and returns the start time of each
/// attempt.
async fn attempt_times(backoff: Backoff, fails: u32) -> Vec<Instant> {
    let env = Env::start().await;
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&times);
    let mut registry = Registry::new();
    registry.register("flaky", move |ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().expect("lock").push(Instant::now());
            if ctx.attempt <= fails {
                Err(HandlerError::retry("not yet"))
            } else {
                Ok(None)
            }
        }
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let job = NewJob::new("flaky", &json!({}))
        .expect("encodes")
        .max_attempts(fails + 1)
        .backoff(backoff);
    let id = env.enqueue_job(job).await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    let times = times.lock().expect("lock").clone();
    assert_eq!(times.len() as u32, fails + 1, "one start per attempt");
    times
}

fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Due times have millisecond resolution on the Redis server's clock, so a delay may end
/// up to this much before the test's own clock says it should.
const CLOCK_GRAIN: Duration = Duration::from_millis(2);

/// Each gap is at least `min` (to the clock's grain) and at most `min` plus scheduling slack.
fn assert_gaps(gaps: &[Duration], mins: &[Duration]) {
    let slack = Duration::from_millis(400);
    for (i, (gap, min)) in gaps.iter().zip(mins).enumerate() {
        let low = min.saturating_sub(CLOCK_GRAIN);
        assert!(
            *gap >= low && *gap <= *min + slack,
            "gap {i} was {gap:?}, expected {low:?}..{:?}",
            *min + slack
        );
    }
}

#[tokio::test]
async fn retries_follow_a_fixed_backoff() {
    let ms = Duration::from_millis;
    let times = attempt_times(Backoff::Fixed(ms(300)), 3).await;
    assert_gaps(&gaps(&times), &[ms(300), ms(300), ms(300)]);
}

#[tokio::test]
async fn retries_follow_an_explicit_list_of_delays() {
    let ms = Duration::from_millis;
    let times = attempt_times(Backoff::List(vec![ms(100), ms(500), ms(250)]), 4).await;
    // The last delay repeats once the list runs out.
    assert_gaps(&gaps(&times), &[ms(100), ms(500), ms(250), ms(250)]);
}

#[tokio::test]
async fn retries_follow_exponential_backoff_with_jitter_and_cap() {
    let ms = Duration::from_millis;
    let times = attempt_times(
        Backoff::Exponential {
            base: ms(200),
            cap: ms(600),
        },
        4,
    )
    .await;
    let gaps = gaps(&times);
    // Equal jitter puts each delay in [d/2, d] for d = 200, 400, 600 (capped), 600.
    let slack = ms(400);
    for (gap, full) in gaps.iter().zip([ms(200), ms(400), ms(600), ms(600)]) {
        let low = (full / 2).saturating_sub(CLOCK_GRAIN);
        assert!(
            *gap >= low && *gap <= full + slack,
            "gap {gap:?} outside {low:?}..{:?}",
            full + slack
        );
    }
    assert!(gaps[1] + gaps[2] > gaps[0] * 2, "delays grow: {gaps:?}");
}

#[tokio::test]
async fn a_retry_after_from_the_handler_overrides_the_backoff() {
    let env = Env::start().await;
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&times);
    let mut registry = Registry::new();
    registry.register("rate_limited", move |ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().expect("lock").push(Instant::now());
            match ctx.attempt {
                1 => Err(HandlerError::retry_after("429", Duration::from_millis(700))),
                _ => Ok(None),
            }
        }
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("rate_limited", json!({})).await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    let gap = gaps(&times.lock().expect("lock"))[0];
    assert!(gap >= Duration::from_millis(700) - CLOCK_GRAIN, "{gap:?}");
}

#[tokio::test]
async fn giving_up_dead_letters_at_once() {
    let env = Env::start().await;
    let mut registry = Registry::new();
    registry.register("hopeless", |_ctx: JobContext| async {
        Err(HandlerError::give_up("bad address"))
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env
        .enqueue_job(
            NewJob::new("hopeless", &json!({}))
                .expect("encodes")
                .max_attempts(5),
        )
        .await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 1);
    assert_eq!(record.error.as_deref(), Some("bad address"));
    worker.stop().await;
}

#[tokio::test]
async fn a_job_over_its_timeout_is_stopped_and_retried() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let job = NewJob::new("sleep", &json!({"ms": 5000}))
        .expect("encodes")
        .timeout(Duration::from_millis(200))
        .max_attempts(2);
    let id = env.enqueue_job(job).await;
    let record = env
        .wait_status("default", &id, Status::Dead, Duration::from_secs(5))
        .await;
    assert_eq!(record.attempts, 2);
    let timed_out: Vec<u32> = record
        .errors
        .iter()
        .filter(|e| e.error.contains("timed out after 0.2s"))
        .map(|e| e.attempt)
        .collect();
    assert_eq!(timed_out, [1, 2], "{:?}", record.errors);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timed out after 0.2s")),
        "{:?}",
        record.error
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_unique_job_is_enqueued_once_until_it_completes() {
    let env = Env::start().await;
    let unique = || {
        NewJob::new("noop", &json!({}))
            .expect("encodes")
            .unique("report-42", Duration::from_secs(60))
    };
    let first = env.producer.enqueue(unique()).await.expect("enqueue");
    let second = env.producer.enqueue(unique()).await.expect("enqueue");
    assert_eq!(first.outcome, Outcome::Created);
    assert_eq!(second.outcome, Outcome::Duplicate);
    assert_eq!(second.id, first.id);
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 1);
    // Completion releases the key, so the next enqueue creates a new job.
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    env.wait_status("default", &first.id, Status::Completed, LONG)
        .await;
    let third = env.producer.enqueue(unique()).await.expect("enqueue");
    assert_eq!(third.outcome, Outcome::Created);
    assert_ne!(third.id, first.id);
    worker.stop().await;
}

#[tokio::test]
async fn an_own_id_enqueued_twice_creates_one_job() {
    let env = Env::start().await;
    let job = || {
        NewJob::new("noop", &json!({}))
            .expect("encodes")
            .id("order-7")
    };
    assert_eq!(
        env.producer.enqueue(job()).await.expect("enqueue").outcome,
        Outcome::Created
    );
    assert_eq!(
        env.producer.enqueue(job()).await.expect("enqueue").outcome,
        Outcome::Exists
    );
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 1);
}

#[tokio::test]
async fn delayed_jobs_wait_then_run() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let enqueued_at = Instant::now();
    let id = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("encodes")
                .delay(Duration::from_millis(800)),
        )
        .await;
    let at = std::time::SystemTime::now() + Duration::from_millis(400);
    let at_ms = flotilla_proto::millis(
        at.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970"),
    );
    let at_id = env
        .enqueue_job(NewJob::new("noop", &json!({})).expect("encodes").at(at))
        .await;
    assert_eq!(
        env.record("default", &id).await.and_then(|r| r.status),
        Some(Status::Scheduled)
    );
    let record = env
        .wait_status("default", &at_id, Status::Completed, LONG)
        .await;
    assert!(
        record.started_at.is_some_and(|started| started >= at_ms),
        "ran before its time: {record:?}"
    );
    assert_eq!(
        env.record("default", &id).await.and_then(|r| r.status),
        Some(Status::Scheduled)
    );
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert!(enqueued_at.elapsed() >= Duration::from_millis(800));
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_job_can_be_cancelled_and_never_runs() {
    const DELAY: Duration = Duration::from_millis(300);
    let env = Env::start().await;
    let id = env.enqueue("noop", json!({})).await;
    let delayed = env
        .enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("encodes")
                .delay(DELAY),
        )
        .await;
    assert_eq!(
        env.producer.cancel("default", &id).await.expect("cancel"),
        Cancelled::Cancelled {
            was: Some(Status::Pending)
        }
    );
    assert_eq!(
        env.producer
            .cancel("default", &delayed)
            .await
            .expect("cancel"),
        Cancelled::Cancelled {
            was: Some(Status::Scheduled)
        }
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let marker = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &marker, Status::Completed, LONG)
        .await;
    // Proves something does not happen: the delayed job comes due, and ten promotion passes
    // go by after, without it running.
    tokio::time::sleep(DELAY + 10 * fast_config().promote_interval).await;
    for job in [&id, &delayed] {
        let record = env.record("default", job).await.expect("record");
        assert_eq!(record.status, Some(Status::Cancelled));
        assert_eq!(record.attempts, 0, "a cancelled job never started");
        // The fast-path job's entry named no options: its record shows the defaults.
        assert_eq!(record.max_attempts, 3);
        assert_eq!(record.timeout_ms, Some(30 * 60 * 1000));
    }
    assert_eq!(
        env.producer
            .cancel("default", &marker)
            .await
            .expect("cancel"),
        Cancelled::AlreadyFinished {
            status: Some(Status::Completed)
        }
    );
    worker.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handler() {
    let env = Env::start().await;
    let stopped = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&stopped);
    let mut registry = Registry::new();
    registry.register("long", move |ctx: JobContext| {
        let flag = Arc::clone(&flag);
        async move {
            ctx.cancel.cancelled().await;
            // Too late: the job is no longer this attempt's, so neither lands.
            ctx.progress(&json!("after the cancel"))
                .await
                .map_err(HandlerError::retry)?;
            *flag.lock().expect("lock") = true;
            Ok(Some(json!("should be ignored")))
        }
    });
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("long", json!({})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    assert_eq!(
        env.producer.cancel("default", &id).await.expect("cancel"),
        Cancelled::Cancelled {
            was: Some(Status::Running)
        }
    );
    eventually(LONG, "the handler to see the cancel", || async {
        (*stopped.lock().expect("lock")).then_some(())
    })
    .await;
    worker.stop().await;
    let record = env.record("default", &id).await.expect("record");
    assert_eq!(record.status, Some(Status::Cancelled));
    assert_eq!(record.result, None);
    assert_eq!(
        record.progress, None,
        "progress after the cancel was recorded"
    );
}

#[tokio::test]
async fn a_full_queue_refuses_new_work_and_keeps_the_old() {
    let env = Env::start().await;
    let mut policy = flotilla_proto::JobPolicy::default();
    policy.limits.max_queue_len = 3;
    let producer = flotilla_producer::Producer::new(env.conn.clone(), env.keys.clone(), policy);
    for _ in 0..3 {
        producer
            .enqueue(NewJob::new("noop", &json!({})).expect("encodes"))
            .await
            .expect("room");
    }
    let refused = producer
        .enqueue(NewJob::new("noop", &json!({})).expect("encodes"))
        .await;
    match refused {
        Err(ProducerError::QueueFull(message)) => {
            assert!(message.contains("limit is 3"), "{message}")
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 3, "nothing was trimmed");
    let big = NewJob::new("noop", &"x".repeat(600 * 1024)).expect("encodes");
    assert!(matches!(
        producer.enqueue(big).await,
        Err(ProducerError::PayloadTooLarge { .. })
    ));
}

#[tokio::test]
async fn bulk_enqueue_creates_every_job_in_order() {
    let env = Env::start().await;
    let jobs: Vec<NewJob> = (0..1200)
        .map(|n| NewJob::new("noop", &json!({"n": n})).expect("encodes"))
        .collect();
    let results = env.producer.enqueue_bulk(jobs).await.expect("bulk");
    assert_eq!(results.len(), 1200);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(e) if e.outcome == Outcome::Created))
    );
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 1200);
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let last = results
        .last()
        .and_then(|r| r.as_ref().ok())
        .map(|e| e.id.clone())
        .expect("id");
    env.wait_status("default", &last, Status::Completed, LONG)
        .await;
    worker.stop().await;
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
}

impl flotilla_producer::Job for SendEmail {
    const TYPE: &'static str = "send_email";
    const QUEUE: &'static str = "critical";
}

#[derive(serde::Serialize)]
struct Sent {
    sent_to: String,
    subject: String,
}

/// Fails while the mail server is "down", with the cause underneath.
#[derive(Debug, thiserror::Error)]
#[error("mail server refused the message")]
struct MailRefused(#[source] std::io::Error);

async fn send_email(email: SendEmail, ctx: JobContext) -> Result<Sent, MailRefused> {
    if email.to.starts_with("down@") {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "421 try later");
        return Err(MailRefused(cause));
    }
    Ok(Sent {
        sent_to: email.to,
        subject: format!("{} (attempt {})", email.subject, ctx.attempt),
    })
}

#[tokio::test]
async fn a_typed_job_reaches_a_typed_handler_on_its_own_queue() {
    let env = Env::start().await;
    let mut registry = Registry::new();
    registry.job(send_email);
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let email = SendEmail {
        to: "a@b.c".into(),
        subject: "hi".into(),
    };
    let enqueued = env.producer.enqueue(&email).await.expect("enqueue");
    assert_eq!(enqueued.queue, "critical");
    let record = env
        .wait_status("critical", &enqueued.id, Status::Completed, LONG)
        .await;
    assert_eq!(
        record.result,
        Some(json!({"sent_to": "a@b.c", "subject": "hi (attempt 1)"}))
    );

    // An ordinary error retries with the job's backoff and keeps its cause.
    let refused = SendEmail {
        to: "down@b.c".into(),
        subject: "hi".into(),
    };
    let job = NewJob::typed(&refused).expect("encodes").max_attempts(2);
    let id = env.enqueue_job(job).await;
    let record = env.wait_status("critical", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 2, "the error was retried");
    let error = record.error.unwrap_or_default();
    assert!(
        error.starts_with("mail server refused the message: 421 try later"),
        "{error}"
    );

    // A payload that does not fit the type is dead at once: retrying cannot fix it.
    let wrong = NewJob::new("send_email", &json!({"to": 5}))
        .expect("encodes")
        .queue("critical")
        .max_attempts(5);
    let id = env.enqueue_job(wrong).await;
    let record = env.wait_status("critical", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 1);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("payload does not fit send_email"))
    );
    worker.stop().await;
}

/// A job type that says how its jobs run.
#[derive(serde::Serialize, serde::Deserialize)]
struct Thumbnail {
    image: String,
}

impl flotilla_producer::Job for Thumbnail {
    const TYPE: &'static str = "thumbnail";
    const MAX_ATTEMPTS: Option<u32> = Some(7);
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(45));

    fn backoff() -> Option<Backoff> {
        Some(Backoff::Fixed(Duration::from_millis(250)))
    }
}

#[tokio::test]
async fn a_job_type_sets_its_jobs_attempts_timeout_and_backoff() {
    let env = Env::start().await;
    let job = Thumbnail {
        image: "cat.png".into(),
    };
    let as_it_is = env.producer.enqueue(&job).await.expect("enqueues");
    let record = env.record("default", &as_it_is.id).await.expect("it waits");
    assert_eq!(record.max_attempts, 7, "{record:?}");
    assert_eq!(record.timeout_ms, Some(45_000), "{record:?}");
    assert_eq!(record.backoff.as_deref(), Some("fixed:250"), "{record:?}");
    // An option set on the enqueue wins over the type's.
    let twice = NewJob::typed(&job).expect("encodes").max_attempts(2);
    let id = env.enqueue_job(twice).await;
    let record = env.record("default", &id).await.expect("it waits");
    assert_eq!(record.max_attempts, 2, "{record:?}");
    assert_eq!(record.timeout_ms, Some(45_000), "{record:?}");
}

/// A handler failing with a `String`, as its docs allow.
async fn stringly(_args: serde_json::Value, _ctx: JobContext) -> Result<(), String> {
    Err("the partner said no".to_owned())
}

/// A handler written with `anyhow`, its error carrying a context.
async fn with_anyhow(_args: serde_json::Value, _ctx: JobContext) -> anyhow::Result<u32> {
    use anyhow::Context;
    let parsed: u32 = "twelve".parse().context("reading the count")?;
    Ok(parsed)
}

#[tokio::test]
async fn handlers_may_fail_with_a_string_or_an_anyhow_error_and_are_retried() {
    let env = Env::start().await;
    let mut registry = Registry::new();
    registry.register_fn("stringly", stringly);
    registry.register_fn("with_anyhow", with_anyhow);
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    for (job_type, error) in [
        ("stringly", "the partner said no"),
        (
            "with_anyhow",
            "reading the count: invalid digit found in string",
        ),
    ] {
        let job = NewJob::new(job_type, &json!({}))
            .expect("encodes")
            .max_attempts(2);
        let id = env.enqueue_job(job).await;
        let record = env.wait_status("default", &id, Status::Dead, LONG).await;
        assert_eq!(record.attempts, 2, "{job_type}: retried, as any error is");
        let said = record.error.unwrap_or_default();
        assert!(said.starts_with(error), "{job_type}: {said}");
    }
    worker.stop().await;
}
