//! Expiry: a job not started by its `expires_at` ends as `expired`, unrun, whichever way
//! it was enqueued (fast path, own id, unique with a record, delayed, a raw XADD, the
//! published script) and however it waited (a paused queue, a retry due too late); it is
//! listed, counted and releases its unique key; a bad expiry is refused where it enters.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flotilla_producer::{NewJob, Outcome};
use flotilla_proto::{Backoff, Status};
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde_json::json;

use crate::util::{Env, LONG, published_enqueue_of, run_flotilla};

/// Ids of the jobs whose handler ran, in the order they ran.
type Ran = Arc<Mutex<Vec<String>>>;

/// A registry whose `mark` handler notes each job it runs, reports progress when the
/// payload asks (which gives the job a record), and fails the first run of a job whose
/// payload asks it to.
fn marking(ran: &Ran) -> Registry {
    let mut registry = Registry::with_builtins();
    let ran = Arc::clone(ran);
    registry.register_fn("mark", move |args: serde_json::Value, ctx: JobContext| {
        let ran = Arc::clone(&ran);
        async move {
            let first = {
                let mut ran = ran.lock().expect("lock");
                let first = !ran.contains(&ctx.id);
                ran.push(ctx.id.clone());
                first
            };
            if args["progress"] == json!(true) {
                ctx.progress(&json!({"step": 1})).await?;
            }
            if first && args["fail_once"] == json!(true) {
                return Err(HandlerError::retry("first run fails"));
            }
            Ok::<_, HandlerError>(json!("ran"))
        }
    });
    registry
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn mark() -> NewJob {
    NewJob::new("mark", &json!({})).expect("job")
}

#[tokio::test]
async fn jobs_expired_in_a_paused_queue_never_run_after_resume() {
    let env = Env::start().await;
    let url = env.url();
    let ran = Ran::default();
    let soon = Duration::from_millis(400);
    let expiring = [
        env.enqueue_job(mark().expires_in(soon)).await,
        env.enqueue_job(mark().id("own-expiring").expires_in(soon))
            .await,
        env.enqueue_job(
            mark()
                .unique("report", Duration::from_secs(600))
                .expires_in(soon),
        )
        .await,
        env.enqueue_job(mark().delay(Duration::from_millis(100)).expires_in(soon))
            .await,
        env.xadd(
            "default",
            &[
                ("type", b"mark"),
                ("expires_at", (now_ms() + 400).to_string().as_bytes()),
            ],
        )
        .await,
        {
            let at = now_ms() + 400;
            published_enqueue_of(
                &env,
                "published-expiring",
                "mark",
                "{}",
                "0",
                None,
                &[0, 0, at],
            )
            .await
            .expect("the published script takes an expiry");
            "published-expiring".to_owned()
        },
    ];
    // The same kinds with an expiry far ahead run as usual.
    let later = Duration::from_secs(600);
    let lasting = [
        env.enqueue_job(mark().expires_in(later)).await,
        env.enqueue_job(mark().id("own-lasting").expires_in(later))
            .await,
        env.enqueue_job(
            mark()
                .unique("other-report", Duration::from_secs(600))
                .expires_in(later),
        )
        .await,
    ];
    run_flotilla(&url, &[], &["queues", "pause", "default"]);
    let worker = InProcessWorker::start(&url, fast_config(), marking(&ran)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    run_flotilla(&url, &[], &["queues", "resume", "default"]);
    for id in &lasting {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    for id in &expiring {
        let record = env.wait_status("default", id, Status::Expired, LONG).await;
        assert_eq!(record.attempts, 0, "{id} never started: {record:?}");
        assert!(record.finished_at.is_some(), "{id}: {record:?}");
        assert!(
            record.expires_at.is_some(),
            "{id} keeps its expiry: {record:?}"
        );
    }
    let ran_ids = ran.lock().expect("lock").clone();
    for id in &expiring {
        assert!(
            !ran_ids.contains(id),
            "{id} ran after it expired: {ran_ids:?}"
        );
    }
    // Listed and counted as expired.
    let listed = run_flotilla(&url, &[], &["jobs", "list", "--status", "expired"]);
    for id in &expiring {
        assert!(
            listed.contains(id.rsplit(':').next().unwrap_or(id)),
            "{id} in {listed}"
        );
    }
    let stats = run_flotilla(&url, &[], &["queues", "stats", "--json"]);
    let stats: Vec<serde_json::Value> = serde_json::from_str(&stats).expect("json");
    let stats = stats
        .iter()
        .find(|q| q["queue"] == json!("default"))
        .expect("default's stats");
    assert_eq!(stats["expired_last_hour"], json!(expiring.len()), "{stats}");
    // An expired job holds its unique key no longer.
    let again = env
        .producer
        .enqueue(mark().unique("report", Duration::from_secs(600)))
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, Outcome::Created, "{again:?}");
    worker.stop().await;
}

#[tokio::test]
async fn a_retry_due_after_the_expiry_expires_instead_of_running_late() {
    let env = Env::start().await;
    let ran = Ran::default();
    let worker = InProcessWorker::start(&env.url(), fast_config(), marking(&ran)).await;
    let job = |id: &str| {
        NewJob::new("mark", &json!({"fail_once": true}))
            .expect("job")
            .id(id)
            .backoff(Backoff::Fixed(Duration::from_secs(1)))
            .expires_in(Duration::from_millis(500))
    };
    let own = env.enqueue_job(job("retried-too-late")).await;
    let plain = env
        .enqueue_job(
            NewJob::new("mark", &json!({"fail_once": true}))
                .expect("job")
                .backoff(Backoff::Fixed(Duration::from_secs(1)))
                .expires_in(Duration::from_millis(500)),
        )
        .await;
    // Progress gives the job a record mid-attempt: the record keeps the expiry.
    let recorded = env
        .enqueue_job(
            NewJob::new("mark", &json!({"fail_once": true, "progress": true}))
                .expect("job")
                .backoff(Backoff::Fixed(Duration::from_secs(1)))
                .expires_in(Duration::from_millis(500)),
        )
        .await;
    for id in [&own, &plain, &recorded] {
        let record = env.wait_status("default", id, Status::Expired, LONG).await;
        assert_eq!(
            record.attempts, 1,
            "{id}: the first attempt ran: {record:?}"
        );
        assert_eq!(
            record.error.as_deref(),
            Some("first run fails"),
            "{id}: {record:?}"
        );
    }
    let ran_ids = ran.lock().expect("lock").clone();
    for id in [&own, &plain, &recorded] {
        let runs = ran_ids.iter().filter(|r| *r == id).count();
        assert_eq!(runs, 1, "{id} ran once, never late: {ran_ids:?}");
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_bad_expiry_is_refused_where_it_enters() {
    let env = Env::start().await;
    // A producer refuses an expiry it cannot keep.
    let zero = env
        .producer
        .enqueue(mark().expires_in(Duration::ZERO))
        .await;
    let error = zero.expect_err("a zero expiry is refused").to_string();
    assert!(error.contains("expires in"), "{error}");
    let far = UNIX_EPOCH + Duration::from_millis(flotilla_proto::MAX_RUN_AT_MS + 1);
    let error = env
        .producer
        .enqueue(mark().expires_at(far))
        .await
        .expect_err("past the year 3000 is refused")
        .to_string();
    assert!(error.contains("expires_at"), "{error}");
    // The published script says why.
    let error = published_enqueue_of(
        &env,
        "too-far",
        "mark",
        "{}",
        "0",
        None,
        &[0, 0, flotilla_proto::MAX_RUN_AT_MS + 1],
    )
    .await
    .expect_err("refused")
    .to_string();
    assert!(
        error.contains("BAD_ARG") && error.contains("expires at"),
        "{error}"
    );
    // A raw entry whose expiry is not a time goes to the dead-letter queue saying so.
    let entry = env
        .xadd("default", &[("type", b"mark"), ("expires_at", b"10m")])
        .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), marking(&Ran::default())).await;
    let dead = env.wait_status("default", &entry, Status::Dead, LONG).await;
    let reason = dead.error.unwrap_or_default();
    assert!(reason.contains("expires_at"), "{reason}");
    worker.stop().await;
}
