//! Workflows: jobs that wait for other jobs. A flow is created whole or not at all; a job
//! runs only after every parent completed and reads their results; a parent's death
//! cancels its children (and theirs), runs them anyway, or blocks them until an
//! operator's retry of it completes, as each edge says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::{Batch, Flow, NewJob, OnParentEnd, Outcome, Parent};
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde::Deserialize;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// When each job's handler started and ended, by id.
#[derive(Default)]
struct Runs {
    started: HashMap<String, Instant>,
    ended: HashMap<String, Instant>,
    /// The parents' results each job read, by job id.
    read: HashMap<String, serde_json::Value>,
    /// Each run of a `note` job (a batch's callback): its id and when.
    noted: Vec<(String, Instant)>,
}

type Shared = Arc<Mutex<Runs>>;

#[derive(Deserialize)]
struct Step {
    /// What the handler returns.
    value: i64,
    /// How long it works, ms.
    #[serde(default)]
    ms: u64,
    /// Fail for good while this flag (shared by the test) is up.
    #[serde(default)]
    fail: bool,
}

/// A registry whose `step` handler notes when it ran, reads its parents' results (their
/// sum is added to its own value), and fails for good while asked to and `failing` is up.
fn stepping(runs: &Shared, failing: &Arc<Mutex<bool>>) -> Registry {
    let mut registry = Registry::with_builtins();
    let for_notes = Arc::clone(runs);
    let (runs, failing) = (Arc::clone(runs), Arc::clone(failing));
    registry.register_fn("step", move |step: Step, ctx: JobContext| {
        let (runs, failing) = (Arc::clone(&runs), Arc::clone(&failing));
        async move {
            runs.lock()
                .expect("lock")
                .started
                .insert(ctx.id.clone(), Instant::now());
            let deps = ctx.dependencies().await.map_err(HandlerError::retry)?;
            let mut sum = step.value;
            if let Some(deps) = &deps {
                for parent in &deps.parents {
                    sum += deps
                        .result_of(&parent.id)
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0);
                }
                let read: serde_json::Map<String, serde_json::Value> = deps
                    .parents
                    .iter()
                    .map(|p| {
                        (
                            p.id.clone(),
                            json!({"outcome": p.outcome, "result": p.result}),
                        )
                    })
                    .collect();
                runs.lock()
                    .expect("lock")
                    .read
                    .insert(ctx.id.clone(), read.into());
            }
            tokio::time::sleep(Duration::from_millis(step.ms)).await;
            runs.lock()
                .expect("lock")
                .ended
                .insert(ctx.id.clone(), Instant::now());
            if step.fail && *failing.lock().expect("lock") {
                return Err(HandlerError::give_up("asked to fail"));
            }
            Ok::<_, HandlerError>(sum)
        }
    });
    let runs = for_notes;
    registry.register_fn("note", move |_: serde_json::Value, ctx: JobContext| {
        let runs = Arc::clone(&runs);
        async move {
            runs.lock()
                .expect("lock")
                .noted
                .push((ctx.id.clone(), Instant::now()));
            Ok::<_, HandlerError>(())
        }
    });
    registry
}

fn step(id: &str, value: i64, ms: u64) -> NewJob {
    NewJob::new("step", &json!({"value": value, "ms": ms}))
        .expect("job")
        .id(id)
}

fn failing_step(id: &str) -> NewJob {
    NewJob::new("step", &json!({"value": 0, "fail": true}))
        .expect("job")
        .id(id)
}

#[tokio::test]
async fn a_diamond_runs_each_job_after_all_its_parents_and_the_last_reads_their_results() {
    let env = Env::start().await;
    let runs = Shared::default();
    let failing = Arc::new(Mutex::new(false));
    // a → (b, c) → d, with b on another queue and c slower than b; e waits for d and for
    // a job enqueued before the flow.
    let before = env.enqueue_job(step("before", 100, 0)).await;
    let mut flow = Flow::new();
    let a = flow.add(step("a", 1, 0)).expect("a");
    let b = flow
        .add(step("b", 10, 0).queue("low").after(a.clone()))
        .expect("b");
    let c = flow.add(step("c", 20, 300).after(a.clone())).expect("c");
    let d = flow.add(step("d", 0, 0).after(b).after(c)).expect("d");
    flow.add(
        step("e", 0, 0)
            .after(d)
            .after(Parent::new("default", &before)),
    )
    .expect("e");
    let created = env.producer.enqueue_flow(flow).await.expect("flow");
    let outcomes: Vec<Outcome> = created.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Created,
            Outcome::Waiting,
            Outcome::Waiting,
            Outcome::Waiting,
            Outcome::Waiting
        ]
    );
    assert_eq!(created[1].queue, "low");
    // Waiting is a state of its own, readable before any worker runs.
    let d_before = env.record("default", "d").await.expect("d readable");
    assert_eq!(d_before.status, Some(Status::Waiting));

    let worker = InProcessWorker::start(&env.url(), fast_config(), stepping(&runs, &failing)).await;
    let e = env
        .wait_status("default", "e", Status::Completed, LONG)
        .await;
    worker.stop().await;

    let r = runs.lock().expect("lock");
    let after = |child: &str, parent: &str| {
        assert!(
            r.started[child] >= r.ended[parent],
            "{child} started before its parent {parent} ended"
        );
    };
    after("b", "a");
    after("c", "a");
    after("d", "b");
    after("d", "c");
    after("e", "d");
    after("e", "before");
    // d = 0 + b (10 + a 1) + c (20 + a 1); e = d 32 + before 100.
    assert_eq!(e.result, Some(json!(132)), "{:?}", r.read.get("e"));
    assert_eq!(r.read["d"]["b"]["outcome"], "completed");
    assert_eq!(r.read["d"]["c"]["result"], "21");
}

#[tokio::test]
async fn a_dead_parent_cancels_its_children_by_default_runs_them_under_run_and_blocks_them_under_wait()
 {
    let env = Env::start().await;
    let url = env.url();
    let runs = Shared::default();
    let failing = Arc::new(Mutex::new(true));
    let mut flow = Flow::new();
    let p = flow.add(failing_step("p")).expect("p");
    let cancelled = flow
        .add(step("cancelled", 1, 0).after(p.clone()))
        .expect("cancelled");
    flow.add(step("grandchild", 1, 0).after(cancelled))
        .expect("grandchild");
    flow.add(step("anyway", 5, 0).after(p.clone().on_end(OnParentEnd::Run)))
        .expect("anyway");
    flow.add(step("blocked", 7, 0).after(p.on_end(OnParentEnd::Wait)))
        .expect("blocked");
    env.producer.enqueue_flow(flow).await.expect("flow");

    let worker = InProcessWorker::start(&url, fast_config(), stepping(&runs, &failing)).await;
    env.wait_status("default", "p", Status::Dead, LONG).await;
    let anyway = env
        .wait_status("default", "anyway", Status::Completed, LONG)
        .await;
    assert_eq!(anyway.result, Some(json!(5)), "a dead parent adds nothing");
    let cancelled = env
        .wait_status("default", "cancelled", Status::Cancelled, LONG)
        .await;
    assert_eq!(cancelled.error.as_deref(), Some("parent default p dead"));
    let grandchild = env
        .wait_status("default", "grandchild", Status::Cancelled, LONG)
        .await;
    assert_eq!(
        grandchild.error.as_deref(),
        Some("parent default cancelled cancelled")
    );
    // Blocked, not lost: it waits, and says for what.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.record("default", "blocked")
            .await
            .and_then(|r| r.status),
        Some(Status::Waiting)
    );
    let shown = run_flotilla(&url, &[], &["jobs", "show", "blocked"]);
    assert!(shown.contains("waiting"), "{shown}");
    assert!(
        shown.contains(
            "p (default): died: blocked until a retry of it completes; if it fails: wait"
        ),
        "{shown}"
    );

    // The operator fixes the cause and retries the dead parent: the blocked child runs.
    *failing.lock().expect("lock") = false;
    run_flotilla(&url, &[], &["jobs", "retry", "p", "--queue", "default"]);
    let blocked = env
        .wait_status("default", "blocked", Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(blocked.result, Some(json!(7)));
    let r = runs.lock().expect("lock");
    assert!(!r.started.contains_key("cancelled") && !r.started.contains_key("grandchild"));
    assert!(r.started["blocked"] >= r.ended["p"]);
}

/// Every key of the namespace, to tell that a refused flow wrote nothing.
async fn all_keys(env: &Env) -> Vec<String> {
    let mut keys: Vec<String> = env.cmd(redis::cmd("KEYS").arg("*")).await;
    keys.sort();
    keys
}

#[tokio::test]
async fn a_bad_flow_is_refused_with_its_reason_and_writes_nothing() {
    let env = Env::start().await;
    env.enqueue_job(step("taken", 1, 0)).await;
    let dead = env.enqueue_job(step("dead", 1, 0).max_attempts(1)).await;
    run_flotilla(
        &env.url(),
        &[],
        &["jobs", "cancel", &dead, "--queue", "default"],
    );
    let before = all_keys(&env).await;

    let refused = |flow: Flow, why: &'static str| {
        let env = &env;
        async move {
            let error = env.producer.enqueue_flow(flow).await.expect_err("refused");
            assert!(error.to_string().contains(why), "{error} (wanted {why:?})");
        }
    };
    // A cycle: x → y → z → x.
    let mut flow = Flow::new();
    flow.add(step("x", 0, 0).after(Parent::new("default", "z")))
        .expect("x");
    flow.add(step("y", 0, 0).after(Parent::new("default", "x")))
        .expect("y");
    flow.add(step("z", 0, 0).after(Parent::new("default", "y")))
        .expect("z");
    refused(flow, "cycle").await;
    // A parent nobody enqueued.
    let mut flow = Flow::new();
    flow.add(step("orphan", 0, 0).after(Parent::new("default", "nobody")))
        .expect("orphan");
    refused(flow, "parent nobody is not known").await;
    // An id taken.
    let mut flow = Flow::new();
    flow.add(step("taken", 0, 0)).expect("taken");
    refused(flow, "taken").await;
    // A parent that ended without completing, under `cancel`.
    let mut flow = Flow::new();
    flow.add(step("late", 0, 0).after(Parent::new("default", &dead)))
        .expect("late");
    refused(flow, "already ended cancelled").await;
    // One id twice.
    let mut flow = Flow::new();
    flow.add(step("twice", 0, 0)).expect("twice");
    flow.add(step("twice", 0, 0)).expect("twice");
    refused(flow, "twice").await;
    // Too many jobs.
    let mut flow = Flow::new();
    for i in 0..20_001 {
        flow.add(step(&format!("j{i}"), 0, 0)).expect("job");
    }
    refused(flow, "1 to 20000 jobs").await;

    assert_eq!(
        all_keys(&env).await,
        before,
        "a refused flow wrote something"
    );
}

#[tokio::test]
async fn a_job_enqueued_after_others_from_the_command_line_waits_and_its_cancel_reaches_its_children()
 {
    let env = Env::start().await;
    let url = env.url();
    let parent = run_flotilla(
        &url,
        &[],
        &["enqueue", "--type", "noop", "--id", "parent", "--in", "1h"],
    );
    assert_eq!(parent.trim(), "parent");
    let child = run_flotilla(
        &url,
        &[],
        &[
            "enqueue", "--type", "noop", "--id", "child", "--after", "parent",
        ],
    );
    assert_eq!(child.trim(), "child");
    let grandchild = run_flotilla(
        &url,
        &[],
        &[
            "enqueue",
            "--type",
            "noop",
            "--id",
            "grandchild",
            "--after",
            "child",
            "--on-parent-end",
            "run",
        ],
    );
    assert_eq!(grandchild.trim(), "grandchild");
    let listed = run_flotilla(&url, &[], &["jobs", "list", "--status", "waiting"]);
    assert!(
        listed.contains("child") && listed.contains("grandchild"),
        "{listed}"
    );
    // The child is cancelled while it waits: its own child runs anyway, as its edge says.
    run_flotilla(
        &url,
        &[],
        &["jobs", "cancel", "child", "--queue", "default"],
    );
    let worker = InProcessWorker::start(&url, fast_config(), Registry::with_builtins()).await;
    env.wait_status("default", "grandchild", Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(
        env.record("default", "child").await.and_then(|r| r.status),
        Some(Status::Cancelled)
    );
}

fn note(id: &str) -> NewJob {
    NewJob::new("note", &json!({})).expect("job").id(id)
}

/// How many times each callback ran, and the last time any job of `members` ended.
fn callbacks_ran(runs: &Shared) -> HashMap<String, usize> {
    let mut ran = HashMap::new();
    for (id, _) in &runs.lock().expect("lock").noted {
        *ran.entry(id.clone()).or_default() += 1;
    }
    ran
}

#[tokio::test]
async fn a_batch_runs_its_success_and_complete_callbacks_once_after_its_last_job() {
    let env = Env::start().await;
    let url = env.url();
    let runs = Shared::default();
    let failing = Arc::new(Mutex::new(false));
    let mut batch = Batch::new("import")
        .on_success(note("import-ok"))
        .on_complete(note("import-done"))
        .on_death(note("import-died"));
    for i in 0..200 {
        batch
            .add(step(&format!("row-{i}"), i, (i % 7) as u64))
            .expect("job");
    }
    let counts = env.producer.enqueue_batch(batch).await.expect("batch");
    assert_eq!(
        (counts.total, counts.pending, counts.sealed),
        (200, 200, true)
    );
    let workers = [
        InProcessWorker::start(&url, fast_config(), stepping(&runs, &failing)).await,
        InProcessWorker::start(&url, fast_config(), stepping(&runs, &failing)).await,
    ];
    env.wait_status("default", "import-ok", Status::Completed, LONG)
        .await;
    env.wait_status("default", "import-done", Status::Completed, LONG)
        .await;
    // No job died: the death callback is cancelled, and says why.
    let died = env
        .wait_status("default", "import-died", Status::Cancelled, LONG)
        .await;
    assert_eq!(died.error.as_deref(), Some("no job of the batch died"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for worker in workers {
        worker.stop().await;
    }
    let ran = callbacks_ran(&runs);
    assert_eq!(ran.get("import-ok"), Some(&1), "{ran:?}");
    assert_eq!(ran.get("import-done"), Some(&1), "{ran:?}");
    {
        let r = runs.lock().expect("lock");
        let last_row = r.ended.values().max().copied().expect("rows ran");
        assert_eq!(r.ended.len(), 200, "every row ran once");
        for (id, at) in &r.noted {
            assert!(
                *at >= last_row,
                "{id} ran before the last job of its batch ended"
            );
        }
    }
    let state = env
        .producer
        .batch("default", "import")
        .await
        .expect("read")
        .expect("the batch");
    assert_eq!(
        (
            state.counts.completed,
            state.counts.pending,
            state.counts.dead
        ),
        (200, 0, 0)
    );
    let listen = flotilla_tests::free_local_addr();
    let _dashboard = flotilla_tests::FlotillaProcess::dashboard(&url, &listen, None);
    let (status, body) = flotilla_tests::http_get(&listen, "/batches/import").expect("answers");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("import-ok") && body.contains("fired"),
        "{body}"
    );
    let (status, body) =
        flotilla_tests::http_get(&listen, "/api/v1/batches/import?queue=default").expect("answers");
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(api["completed"], 200, "{api}");
    let shown = run_flotilla(&url, &[], &["batches", "show", "import"]);
    assert!(
        shown.contains("200 jobs, 0 pending, 200 completed")
            && shown.contains("on success: job import-ok (default) fired"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_death_in_a_batch_runs_its_death_callback_at_once_and_its_success_after_a_retry_completes()
 {
    let env = Env::start().await;
    let url = env.url();
    let runs = Shared::default();
    let failing = Arc::new(Mutex::new(true));
    let mut batch = Batch::new("nightly")
        .on_success(note("nightly-ok"))
        .on_complete(note("nightly-done"))
        .on_death(note("nightly-died"))
        .keep_open();
    batch.add(step("n-1", 1, 0)).expect("job");
    batch.add(failing_step("n-bad")).expect("job");
    env.producer.enqueue_batch(batch).await.expect("batch");
    let worker = InProcessWorker::start(&url, fast_config(), stepping(&runs, &failing)).await;
    env.wait_status("default", "nightly-died", Status::Completed, LONG)
        .await;
    env.wait_status("default", "n-1", Status::Completed, LONG)
        .await;
    // Open: its complete callback waits for the seal, whatever has ended.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.record("default", "nightly-done")
            .await
            .and_then(|r| r.status),
        Some(Status::Waiting)
    );
    env.producer
        .add_to_batch("default", "nightly", vec![step("n-2", 2, 0)], true)
        .await
        .expect("added and sealed");
    env.wait_status("default", "nightly-done", Status::Completed, LONG)
        .await;
    // A job is dead: success waits, since a retry may still complete it.
    assert_eq!(
        env.record("default", "nightly-ok")
            .await
            .and_then(|r| r.status),
        Some(Status::Waiting)
    );
    let shown = run_flotilla(
        &url,
        &[],
        &["batches", "show", "nightly", "--queue", "default"],
    );
    assert!(shown.contains("dead: default n-bad"), "{shown}");
    *failing.lock().expect("lock") = false;
    run_flotilla(&url, &[], &["jobs", "retry", "n-bad", "--queue", "default"]);
    env.wait_status("default", "nightly-ok", Status::Completed, LONG)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    let ran = callbacks_ran(&runs);
    for callback in ["nightly-ok", "nightly-done", "nightly-died"] {
        assert_eq!(ran.get(callback), Some(&1), "{callback}: {ran:?}");
    }
    // Adding to a sealed batch is refused.
    let refused = env
        .producer
        .add_to_batch("default", "nightly", vec![step("n-3", 3, 0)], false)
        .await
        .expect_err("sealed");
    assert!(refused.to_string().contains("sealed"), "{refused}");
}

#[tokio::test]
async fn a_flow_from_a_json_file_is_shown_with_what_each_job_waits_for() {
    let env = Env::start().await;
    let url = env.url();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("flow.json");
    std::fs::write(
        &file,
        json!({
            "id": "report-7",
            "jobs": [
                {"id": "extract", "type": "noop"},
                {"id": "transform", "type": "noop", "queue": "low", "after": ["extract"]},
                {"id": "load", "type": "noop", "after": [{"id": "transform", "on_end": "run"}],
                 "delay": "10m"}
            ]
        })
        .to_string(),
    )
    .expect("written");
    let printed = run_flotilla(&url, &[], &["flows", "add", file.to_str().expect("path")]);
    assert_eq!(printed.trim(), "report-7");
    let shown = run_flotilla(&url, &[], &["flows", "show", "report-7"]);
    assert!(shown.contains("3 jobs; 1 pending, 2 waiting"), "{shown}");
    assert!(
        shown.contains("after transform (low), if it fails: run; not ended"),
        "{shown}"
    );
    assert!(shown.contains("job load (default) waits for it"), "{shown}");
    // The dashboard shows the flow, and on a job's page what it waits for.
    let listen = flotilla_tests::free_local_addr();
    let dashboard = flotilla_tests::FlotillaProcess::dashboard(&url, &listen, None);
    let page = |path: &str| {
        let (status, body) = flotilla_tests::http_get(&listen, path).expect("answers");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    };
    let flow_page = page("/flows/report-7");
    assert!(
        flow_page.contains("3 jobs") && flow_page.contains("/jobs/low/transform"),
        "{flow_page}"
    );
    let load_page = page("/jobs/default/load");
    assert!(
        load_page.contains("Waits for")
            && load_page.contains("1 of 1 left")
            && load_page.contains("if it fails: run"),
        "{load_page}"
    );
    let api: serde_json::Value =
        serde_json::from_str(&page("/api/v1/flows/report-7")).expect("JSON");
    assert_eq!(api["total"], 3, "{api}");
    let (status, _) = flotilla_tests::http_get(&listen, "/api/v1/flows/nope").expect("answers");
    assert_eq!(status, 404);
    drop(dashboard);
    let worker = InProcessWorker::start(&url, fast_config(), Registry::with_builtins()).await;
    // `load` waits its ten minutes once `transform` is done.
    env.wait_status("default", "load", Status::Scheduled, LONG)
        .await;
    worker.stop().await;
    let shown = run_flotilla(&url, &[], &["flows", "show", "report-7", "--json"]);
    let view: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(view["counts"]["completed"], 2, "{view}");
    assert_eq!(view["counts"]["scheduled"], 1, "{view}");
    // A description that names an unknown field is refused before anything is written.
    std::fs::write(&file, r#"{"jobs": [{"type": "noop", "retries": 3}]}"#).expect("written");
    let refused = std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(["flows", "add", file.to_str().expect("path")])
        .env("FLOTILLA_REDIS_URL", &url)
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown field `retries`"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn an_end_lost_with_redis_data_is_found_and_told_by_reconciliation() {
    let env = Env::start().await;
    let url = env.url();
    let runs = Shared::default();
    let failing = Arc::new(Mutex::new(true));
    // A parent whose edge to its child is lost (as a write Redis did not persist would
    // lose it), and a batch whose dead job's record is gone before a retry.
    let mut flow = Flow::new();
    let parent = flow.add(step("lost-parent", 1, 0)).expect("parent");
    flow.add(step("lost-child", 1, 0).after(parent))
        .expect("child");
    env.producer.enqueue_flow(flow).await.expect("flow");
    env.cmd::<()>(redis::cmd("DEL").arg(env.keys.hook("default", "lost-parent")))
        .await;
    let mut batch = Batch::new("lossy")
        .on_complete(note("lossy-done"))
        .on_success(note("lossy-ok"));
    batch.add(step("lossy-1", 1, 0)).expect("job");
    batch.add(failing_step("lossy-bad")).expect("job");
    env.producer.enqueue_batch(batch).await.expect("batch");
    let worker = InProcessWorker::start(&url, fast_config(), stepping(&runs, &failing)).await;
    env.wait_status("default", "lost-parent", Status::Completed, LONG)
        .await;
    env.wait_status("default", "lossy-done", Status::Completed, LONG)
        .await;
    env.cmd::<()>(redis::cmd("DEL").arg(env.keys.job("default", "lossy-bad")))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.record("default", "lost-child")
            .await
            .and_then(|r| r.status),
        Some(Status::Waiting),
        "the child was never told"
    );
    // Found (older than the worker timeout: the check leaves a just-ended parent alone).
    let settings = [("FLOTILLA_RECONCILE__WORKER_TIMEOUT", "0s")];
    // It exits non-zero while findings are open; its report is on stdout either way.
    let report = reconcile_report(&url, &settings, false);
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"waiting_untold"), "{report}");
    assert!(kinds.contains(&"batch_undecided"), "{report}");
    assert_eq!(
        env.record("default", "lost-child")
            .await
            .and_then(|r| r.status),
        Some(Status::Waiting),
        "a look without --repair changes nothing"
    );
    reconcile_report(&url, &settings, true);
    env.wait_status("default", "lost-child", Status::Completed, LONG)
        .await;
    // The dead job is gone for good: success can never come, and says why.
    let ok = env
        .wait_status("default", "lossy-ok", Status::Cancelled, LONG)
        .await;
    assert_eq!(
        ok.error.as_deref(),
        Some("a job of the batch ended without completing")
    );
    worker.stop().await;
    let report = run_flotilla(&url, &settings, &["reconcile", "--json"]);
    assert!(
        !report.contains("waiting_untold") && !report.contains("batch_undecided"),
        "{report}"
    );
}

/// `flotilla reconcile --json` (with `--repair` when asked): its report, whatever its exit
/// code says.
fn reconcile_report(url: &str, settings: &[(&str, &str)], repair: bool) -> String {
    let mut args = vec!["reconcile", "--json"];
    if repair {
        args.push("--repair");
    }
    let output = std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(&args)
        .env("FLOTILLA_REDIS_URL", url)
        .envs(settings.iter().copied())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
