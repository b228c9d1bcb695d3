//! Jobs with ids of their own on the fast path: no record while nothing goes wrong, the id
//! key naming the entry and then the completion, one run per id, and every operator action
//! finding the job by its id alone.

use std::time::Duration;

use flotilla_producer::{Cancelled, NewJob, Outcome};
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, WorkerProcess, eventually, fast_config};
use flotilla_worker::Registry;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// What the id key of `id` in `queue` holds.
async fn id_key(env: &Env, queue: &str, id: &str) -> Option<String> {
    env.cmd(redis::cmd("GET").arg(env.keys.id_key(queue, id)))
        .await
}

/// Whether `queue` remembers `id` as a job that completed without a record.
async fn remembered_done(env: &Env, queue: &str, id: &str) -> bool {
    env.remembered_done(queue, id).await
}

/// Whether `id` has a record in `queue`.
async fn has_record(env: &Env, queue: &str, id: &str) -> bool {
    env.cmd(redis::cmd("EXISTS").arg(env.keys.job(queue, id)))
        .await
}

/// The ids of the completions in `queue`'s `done` stream.
async fn done_ids(env: &Env, queue: &str) -> Vec<String> {
    env.completions(queue)
        .await
        .iter()
        .filter_map(|entry| entry.fields.get("id"))
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect()
}

#[tokio::test]
async fn a_job_with_an_id_of_its_own_runs_without_a_record_and_its_id_key_finds_it() {
    let env = Env::start().await;
    let job = || {
        NewJob::new("noop", &json!({}))
            .expect("job")
            .id("invoice-2026-0001")
    };
    let first = env.producer.enqueue(job()).await.expect("enqueue");
    assert_eq!(first.outcome, Outcome::Created);
    let entry = id_key(&env, "default", "invoice-2026-0001")
        .await
        .expect("an id key");
    assert!(flotilla_proto::is_entry_id(&entry), "{entry}");
    assert!(!has_record(&env, "default", "invoice-2026-0001").await);
    let pending = env
        .wait_status("default", "invoice-2026-0001", Status::Pending, LONG)
        .await;
    assert_eq!(pending.max_attempts, 3, "read from the entry");
    let again = env.producer.enqueue(job()).await.expect("enqueue");
    assert_eq!(again.outcome, Outcome::Exists, "the id is remembered");
    assert_eq!(env.xlen(&env.keys.stream("default")).await, 1);

    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let done = env
        .wait_status("default", "invoice-2026-0001", Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 1);
    assert!(
        !has_record(&env, "default", "invoice-2026-0001").await,
        "nothing went wrong: no record"
    );
    assert_eq!(id_key(&env, "default", "invoice-2026-0001").await, None);
    assert!(remembered_done(&env, "default", "invoice-2026-0001").await);
    // Remembered after it completed, too: the same id does not run again.
    let late = env.producer.enqueue(job()).await.expect("enqueue");
    assert_eq!(late.outcome, Outcome::Exists);
    // An operator finds it by its id alone.
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", "invoice-2026-0001"]);
    assert!(shown.contains("completed"), "{shown}");
    worker.stop().await;
    assert_eq!(done_ids(&env, "default").await, ["invoice-2026-0001"]);
}

#[tokio::test]
async fn a_raw_entry_repeating_an_id_the_script_wrote_is_dropped_unrun() {
    let env = Env::start().await;
    let id = "order-77";
    env.enqueue_job(NewJob::new("noop", &json!({})).expect("job").id(id))
        .await;
    // Another producer adds the same id by hand, as a job that would fail if it ran; and
    // two raw entries share an id no script wrote: the first read runs.
    env.xadd(
        "default",
        &[
            ("id", id.as_bytes()),
            ("type", b"fail"),
            ("payload", b"{\"times\":-1}"),
        ],
    )
    .await;
    for _ in 0..2 {
        env.xadd("default", &[("id", b"order-78"), ("type", b"noop")])
            .await;
    }
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for id in [id, "order-78"] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    eventually(LONG, "the duplicates to be removed", || async {
        (env.xlen(&env.keys.stream("default")).await == 0).then_some(())
    })
    .await;
    worker.stop().await;
    let mut done = done_ids(&env, "default").await;
    done.sort();
    assert_eq!(done, ["order-77", "order-78"], "each id ran once");
    assert!(env.dead_entries("default").await.is_empty());
    assert!(
        !has_record(&env, "default", id).await,
        "the duplicate never failed"
    );
}

#[tokio::test]
async fn a_pending_job_with_an_id_of_its_own_is_cancelled_and_never_runs() {
    let env = Env::start().await;
    let id = "newsletter-12";
    env.enqueue_job(
        NewJob::new("fail", &json!({"times": -1}))
            .expect("job")
            .id(id),
    )
    .await;
    let cancelled = env.producer.cancel("default", id).await.expect("cancel");
    assert_eq!(
        cancelled,
        Cancelled::Cancelled {
            was: Some(Status::Pending)
        }
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let marker = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &marker, Status::Completed, LONG)
        .await;
    worker.stop().await;
    let record = env.record("default", id).await.expect("a cancelled record");
    assert_eq!(record.status, Some(Status::Cancelled));
    assert_eq!(record.attempts, 0, "never ran");
    assert_eq!(done_ids(&env, "default").await, [marker]);
    let again = env
        .producer
        .enqueue(NewJob::new("noop", &json!({})).expect("job").id(id))
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, Outcome::Exists, "a cancelled id stays taken");
}

#[tokio::test]
async fn a_reclaimed_job_with_an_id_of_its_own_counts_the_interrupted_attempt() {
    let env = Env::start().await;
    let mut first = WorkerProcess::start(&env.url(), &[], None);
    let id = env
        .enqueue_job(
            NewJob::new("sleep", &json!({"ms": 2000}))
                .expect("job")
                .id("export-9"),
        )
        .await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    first.signal("KILL");
    assert!(first.wait_exit(Duration::from_secs(5)).is_some());
    let second = WorkerProcess::start(&env.url(), &[], None);
    let done = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(done.attempts, 2, "the interrupted attempt counts");
    assert_eq!(done_ids(&env, "default").await, [id]);
    drop(second);
}

#[tokio::test]
async fn deleting_a_finished_job_frees_its_id() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let job = || {
        NewJob::new("noop", &json!({}))
            .expect("job")
            .id("nightly-report")
    };
    env.enqueue_job(job()).await;
    env.wait_status("default", "nightly-report", Status::Completed, LONG)
        .await;
    let deleted = run_flotilla(
        &env.url(),
        &[],
        &["jobs", "delete", "nightly-report", "--yes"],
    );
    assert!(deleted.contains("nightly-report"), "{deleted}");
    assert_eq!(id_key(&env, "default", "nightly-report").await, None);
    let again = env.producer.enqueue(job()).await.expect("enqueue");
    assert_eq!(again.outcome, Outcome::Created, "the id is free again");
    env.wait_status("default", "nightly-report", Status::Completed, LONG)
        .await;
    worker.stop().await;
}

#[tokio::test]
async fn ids_are_remembered_as_long_as_their_completions_by_count_too() {
    let env = Env::start().await;
    let mut config = fast_config();
    config.jobs.retention.completed_max_len = 3;
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    let ids: Vec<String> = (1..=5).map(|n| format!("receipt-{n}")).collect();
    // One after another, so that the oldest completions are the first jobs', each in a
    // millisecond of its own: an id is remembered until no completion of its millisecond
    // is kept.
    for id in &ids {
        env.enqueue_job(NewJob::new("noop", &json!({})).expect("job").id(id))
            .await;
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    worker.stop().await;
    assert_eq!(done_ids(&env, "default").await, ids[2..]);
    for id in &ids {
        assert_eq!(
            id_key(&env, "default", id).await,
            None,
            "{id}: no key once done"
        );
    }
    for id in &ids[..2] {
        assert!(
            !remembered_done(&env, "default", id).await,
            "{id} is forgotten"
        );
    }
    for id in &ids[2..] {
        assert!(
            remembered_done(&env, "default", id).await,
            "{id} is remembered"
        );
    }
    // A forgotten id may run again; a remembered one may not.
    let enqueue = |id: &str| {
        env.producer
            .enqueue(NewJob::new("noop", &json!({})).expect("job").id(id))
    };
    assert_eq!(
        enqueue(&ids[0]).await.expect("enqueue").outcome,
        Outcome::Created
    );
    assert_eq!(
        enqueue(&ids[4]).await.expect("enqueue").outcome,
        Outcome::Exists
    );
}

#[tokio::test]
async fn an_id_is_remembered_while_its_completion_is_kept_when_done_is_ahead_of_the_clock() {
    // `done` may hold ids later than the server's clock (a failover to a Redis whose clock
    // is behind, or a completion appended in a later millisecond than the script read):
    // then `XADD` numbers completions past the clock, and an id scored by the clock would
    // be trimmed with completions older than its own.
    let env = Env::start().await;
    let ahead_ms = flotilla_proto::server_time_ms(&mut env.conn.clone())
        .await
        .expect("time")
        + 60_000;
    let _: String = env
        .cmd(
            redis::cmd("XADD")
                .arg(env.keys.done("default"))
                .arg(format!("{ahead_ms}-0"))
                .arg("id")
                .arg("from-the-future"),
        )
        .await;
    let mut config = fast_config();
    config.jobs.retention.completed_max_len = 2;
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    let ids: Vec<String> = (1..=3).map(|n| format!("ahead-{n}")).collect();
    for id in &ids {
        env.enqueue_job(NewJob::new("noop", &json!({})).expect("job").id(id))
            .await;
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    worker.stop().await;
    assert_eq!(done_ids(&env, "default").await, ids[1..]);
    for id in &ids[1..] {
        assert!(
            remembered_done(&env, "default", id).await,
            "{id} is remembered while its completion is kept"
        );
    }
}

#[tokio::test]
async fn an_id_is_remembered_while_its_job_waits_fails_and_runs_again() {
    let env = Env::start().await;
    let id = "sync-account-3";
    env.enqueue_job(
        NewJob::new("fail", &json!({"times": 1}))
            .expect("job")
            .id(id),
    )
    .await;
    let ttl: i64 = env
        .cmd(redis::cmd("PTTL").arg(env.keys.id_key("default", id)))
        .await;
    assert_eq!(ttl, -1, "no expiry while the job waits, however long");
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let done = env
        .wait_status("default", id, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(done.attempts, 2, "failed once, then retried");
    assert!(
        !has_record(&env, "default", id).await,
        "retried without a record"
    );
    assert_eq!(id_key(&env, "default", id).await, None);
    assert!(remembered_done(&env, "default", id).await);
    let again = env
        .producer
        .enqueue(NewJob::new("noop", &json!({})).expect("job").id(id))
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, Outcome::Exists);
}

#[tokio::test]
async fn a_delayed_job_waits_without_a_record_unless_it_holds_a_unique_key() {
    let env = Env::start().await;
    let later = |id: &str| {
        NewJob::new("noop", &json!({}))
            .expect("job")
            .id(id)
            .delay(Duration::from_millis(300))
    };
    env.enqueue_job(later("digest-1")).await;
    env.enqueue_job(later("digest-2").unique("digest", Duration::from_secs(60)))
        .await;
    assert!(!has_record(&env, "default", "digest-1").await, "no record");
    assert!(
        has_record(&env, "default", "digest-2").await,
        "a unique job has one, to release its key"
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for id in ["digest-1", "digest-2"] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    worker.stop().await;
    assert!(
        !has_record(&env, "default", "digest-1").await,
        "it ran as a whole entry, without a record"
    );
    assert_eq!(id_key(&env, "default", "digest-1").await, None);
    assert!(remembered_done(&env, "default", "digest-1").await);
    assert!(has_record(&env, "default", "digest-2").await);
    let unique: Option<String> = env
        .cmd(redis::cmd("GET").arg(env.keys.unique("default", "digest")))
        .await;
    assert_eq!(unique, None, "released on completion");
}

/// The entries of `queue`'s stream that carry `id`: their ids and `held` fields.
async fn entries_of(env: &Env, queue: &str, id: &str) -> Vec<(String, Option<String>)> {
    env.all_entries(&env.keys.stream(queue))
        .await
        .iter()
        .filter(|entry| entry.get::<String>("id").as_deref() == Some(id))
        .map(|entry| (entry.id.clone(), entry.get::<String>("held")))
        .collect()
}

#[tokio::test]
async fn the_scripts_mark_the_entries_whose_id_key_names_them_and_a_hand_made_mark_takes_no_id() {
    let env = Env::start().await;
    let job = |id: &str| NewJob::new("noop", &json!({})).expect("job").id(id);
    env.enqueue_job(job("mark-1")).await;
    env.enqueue_job(job("mark-2").delay(Duration::from_millis(1)))
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let promoted = flotilla_proto::scripts::run(
        &mut env.conn.clone(),
        &env.keys,
        &flotilla_proto::scripts::Promote {
            queue: "default",
            limit: 10,
            recheck: Duration::from_millis(250),
        },
    )
    .await
    .expect("promote");
    assert_eq!(promoted.moved, 1);
    assert_eq!(promoted.next_due_in, None, "nothing else waits");
    // Enqueued to run now, and promoted when due: each entry says its id key names it, and
    // it does, so a worker runs it at its first delivery without a claim.
    for id in ["mark-1", "mark-2"] {
        let entries = entries_of(&env, "default", id).await;
        assert_eq!(entries.len(), 1, "{id}: {entries:?}");
        assert_eq!(entries[0].1.as_deref(), Some("1"), "{id}: {entries:?}");
        assert_eq!(
            id_key(&env, "default", id).await,
            Some(entries[0].0.clone())
        );
    }
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for id in ["mark-1", "mark-2"] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let since = || async {
        let score: Option<String> = env
            .cmd(
                redis::cmd("ZSCORE")
                    .arg(env.keys.done_ids("default"))
                    .arg("mark-1"),
            )
            .await;
        score
    };
    let first = since().await.expect("remembered as completed");
    // A producer that writes the mark by hand on an id another job holds skips the check
    // for duplicates, but the id stays with the job that holds it.
    env.xadd(
        "default",
        &[("id", b"mark-1"), ("type", b"noop"), ("held", b"1")],
    )
    .await;
    eventually(
        LONG,
        "the hand-made entry to be read and removed",
        || async { (env.xlen(&env.keys.stream("default")).await == 0).then_some(()) },
    )
    .await;
    worker.stop().await;
    assert_eq!(
        since().await,
        Some(first),
        "still the first job's completion"
    );
    assert_eq!(id_key(&env, "default", "mark-1").await, None);
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", "mark-1"]);
    assert!(shown.contains("completed"), "{shown}");
}

#[tokio::test]
async fn ids_a_2_7_worker_completed_are_still_found_remembered_and_purged() {
    let env = Env::start().await;
    // What a 2.7 worker leaves for a completed job with an id of its own: its completion in
    // `done`, and its id key naming it, with an expiry.
    let done_id: String = env
        .cmd(
            redis::cmd("XADD")
                .arg(env.keys.done("default"))
                .arg("*")
                .arg("id")
                .arg("legacy-1")
                .arg("type")
                .arg("noop")
                .arg("attempts")
                .arg("1")
                .arg("worker")
                .arg("w-2.7")
                .arg("run_ms")
                .arg("3")
                .arg("result")
                .arg("{\"ok\":true}"),
        )
        .await;
    env.cmd::<()>(
        redis::cmd("SET")
            .arg(env.keys.id_key("default", "legacy-1"))
            .arg(format!("done {done_id}"))
            .arg("PX")
            .arg(86_400_000),
    )
    .await;
    // Found, with its result.
    let found = env
        .wait_status("default", "legacy-1", Status::Completed, LONG)
        .await;
    assert_eq!(found.result, Some(json!({"ok": true})));
    // Remembered: enqueued again through the script, it is not created; added again by a
    // raw XADD, it is dropped unrun.
    let again = env
        .producer
        .enqueue(
            NewJob::new("fail", &json!({"times": -1}))
                .expect("job")
                .id("legacy-1"),
        )
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, Outcome::Exists);
    env.xadd(
        "default",
        &[
            ("id", b"legacy-1"),
            ("type", b"fail"),
            ("payload", b"{\"times\":-1}"),
        ],
    )
    .await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    eventually(LONG, "the duplicate to be dropped", || async {
        (env.xlen(&env.keys.stream("default")).await == 0).then_some(())
    })
    .await;
    worker.stop().await;
    assert!(env.dead_entries("default").await.is_empty(), "never ran");
    assert_eq!(
        done_ids(&env, "default").await,
        ["legacy-1"],
        "ran once, under 2.7"
    );
    // A purge of completions takes the key naming a purged completion with it.
    run_flotilla(
        &env.url(),
        &[],
        &[
            "jobs",
            "purge",
            "--completed",
            "--older-than",
            "0s",
            "--yes",
        ],
    );
    assert_eq!(id_key(&env, "default", "legacy-1").await, None);
}
