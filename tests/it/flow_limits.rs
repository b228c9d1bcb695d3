//! Flow limits, fleet-wide: a queue's rate holds in every second across several
//! workers, its concurrency cap is never exceeded, the slots of a killed worker come
//! back by the liveness rule, and operators set, read and clear limits at runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_proto::flow::{self, QueueLimit};
use flotilla_tests::{
    InProcessWorker, WorkerProcess, eventually, fast_config, free_local_addr, http_get,
};
use flotilla_worker::{JobContext, Registry};
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// Sets `default`'s limit as an operator would.
async fn limit_default(env: &Env, limit: QueueLimit) {
    flow::set_limit(&mut env.conn.clone(), &env.keys, "default", &limit, false)
        .await
        .expect("limit set");
}

/// Caps `default` at `cap` jobs running at once.
async fn cap_default(env: &Env, cap: u32) {
    let limit = QueueLimit {
        concurrency: Some(cap),
        ..QueueLimit::default()
    };
    limit_default(env, limit).await;
}

/// Starts `count` in-process workers of `concurrency` slots each.
async fn start_workers(
    env: &Env,
    count: usize,
    concurrency: usize,
    registry: &Registry,
) -> Vec<InProcessWorker> {
    let mut workers = Vec::new();
    for _ in 0..count {
        let config = flotilla_worker::WorkerConfig {
            concurrency,
            ..fast_config()
        };
        workers.push(InProcessWorker::start(&env.url(), config, registry.clone()).await);
    }
    workers
}

async fn stop_all(workers: Vec<InProcessWorker>) {
    for worker in workers {
        worker.stop().await;
    }
}

/// Waits until live workers hold `held` slots of `default`'s cap.
async fn wait_slots_held(env: &Env, held: u64, what: &str) {
    eventually(LONG, what, || async {
        let now = flow::slots_held(&mut env.conn.clone(), &env.keys, "default")
            .await
            .ok()?;
        (now == held).then_some(())
    })
    .await;
}

/// A registry whose `tick` handler notes when each job started.
fn ticking(starts: &Arc<Mutex<Vec<Instant>>>) -> Registry {
    let mut registry = Registry::new();
    let recorded = Arc::clone(starts);
    registry.register_fn("tick", move |_: serde_json::Value, _: JobContext| {
        recorded.lock().expect("lock").push(Instant::now());
        async { Ok::<_, flotilla_worker::HandlerError>(json!(null)) }
    });
    registry
}

/// Enqueues `count` jobs of `job_type` on `default` in one bulk call; their ids.
async fn enqueue_many(env: &Env, job_type: &str, count: usize) -> Vec<String> {
    let jobs = (0..count)
        .map(|i| NewJob::new(job_type, &json!({ "i": i })).expect("job"))
        .collect();
    env.producer
        .enqueue_bulk(jobs)
        .await
        .expect("bulk enqueue")
        .into_iter()
        .map(|r| r.expect("enqueued").id)
        .collect()
}

/// Waits until every job of `default` has completed (a completion deletes its entry).
async fn wait_drained(env: &Env) {
    let stream = env.keys.stream("default");
    eventually(LONG, "every job of default to complete", || async {
        (env.xlen(&stream).await == 0).then_some(())
    })
    .await;
}

/// The most starts in any window of `width` beginning at a start.
fn busiest_window(starts: &[Instant], width: Duration) -> usize {
    let mut sorted = starts.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|&&t| t < sorted[i] + width)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_rate_limit_holds_in_every_second_across_four_workers() {
    let env = Env::start().await;
    // Set through the CLI: what an operator types is what the fleet keeps to.
    let said = run_flotilla(
        &env.url(),
        &[],
        &["queues", "limit", "default", "--rate", "100/s"],
    );
    assert!(said.contains("limited to rate 100/s (burst 10)"), "{said}");
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let registry = ticking(&starts);
    enqueue_many(&env, "tick", 1500).await;
    let workers = start_workers(&env, 4, 20, &registry).await;
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    stop_all(workers).await;
    let starts = starts.lock().expect("lock").clone();
    let busiest = busiest_window(&starts, Duration::from_secs(1));
    assert!(
        busiest <= 100 + 10,
        "{busiest} jobs started within one second: over the rate (100/s) and burst (10)"
    );
    // Four workers of twenty slots would run the 1500 jobs in a blink; the rate spreads
    // them out, and still lets through what it allows: 1000 in ten seconds, and the
    // burst (the bound is loose below, for a machine busy with other tests).
    let first = starts.iter().min().copied().expect("some started");
    let in_ten_seconds = starts
        .iter()
        .filter(|&&t| t < first + Duration::from_secs(10))
        .count();
    eprintln!(
        "rate 100/s (burst 10), 4 workers: {in_ten_seconds} started in 10 s, {busiest} in the busiest second"
    );
    assert!(
        (950..=1010).contains(&in_ten_seconds),
        "{in_ten_seconds} jobs started in ten seconds at 100/s (burst 10)"
    );
}

/// A registry whose `capped` handler runs for `run_for` and records the most handlers
/// running at once.
fn counting_registry(
    running: &Arc<AtomicUsize>,
    most: &Arc<AtomicUsize>,
    run_for: Duration,
) -> Registry {
    let mut registry = Registry::new();
    let (running, most) = (Arc::clone(running), Arc::clone(most));
    registry.register_fn("capped", move |_: serde_json::Value, _: JobContext| {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(run_for).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, flotilla_worker::HandlerError>(json!(null))
        }
    });
    registry
}

#[tokio::test]
async fn a_concurrency_cap_is_never_exceeded_across_four_workers() {
    let env = Env::start().await;
    cap_default(&env, 3).await;
    let (running, most) = (Arc::default(), Arc::default());
    let registry = counting_registry(&running, &most, Duration::from_millis(40));
    let ids = enqueue_many(&env, "capped", 60).await;
    let workers = start_workers(&env, 4, 20, &registry).await;
    let started = Instant::now();
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let took = started.elapsed();
    stop_all(workers).await;
    let most = most.load(Ordering::SeqCst);
    assert_eq!(most, 3, "at most three ran at once, and the cap was used");
    // 60 jobs of 40 ms three at a time take 0.8 s of running; the slots must not idle
    // for long between jobs (a cap that is free costs little).
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let held = flow::slots_held(&mut env.conn.clone(), &env.keys, "default")
        .await
        .expect("read");
    assert_eq!(held, 0, "every slot was given back");
}

#[tokio::test]
async fn the_slots_of_a_killed_worker_come_back_after_its_lease() {
    let env = Env::start().await;
    cap_default(&env, 1).await;
    let mut doomed = WorkerProcess::start(&env.url(), &[], None);
    let long = env.enqueue("sleep", json!({"ms": 1000})).await;
    env.wait_status("default", &long, Status::Running, LONG)
        .await;
    wait_slots_held(&env, 1, "the running job to hold the only slot").await;
    doomed.signal("KILL");
    doomed.wait_exit(LONG);
    let after = env.enqueue("noop", json!({})).await;
    // The dead worker's hold ends with its lease: its job is reclaimed and run again,
    // then the next one runs; a leaked slot would leave both waiting for ever.
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let reclaimed = env
        .wait_status("default", &long, Status::Completed, LONG)
        .await;
    assert_eq!(reclaimed.attempts, 2, "run again after its worker died");
    env.wait_status("default", &after, Status::Completed, LONG)
        .await;
    wait_slots_held(&env, 0, "every slot given back").await;
    worker.stop().await;
}

#[tokio::test]
async fn operators_set_read_and_clear_a_limit_at_runtime() {
    let env = Env::start().await;
    let (running, most) = (Arc::default(), Arc::default());
    let registry = counting_registry(&running, &most, Duration::from_millis(300));
    let config = flotilla_worker::WorkerConfig {
        concurrency: 10,
        ..fast_config()
    };
    let worker = InProcessWorker::start(&env.url(), config, registry).await;
    let said = run_flotilla(
        &env.url(),
        &[],
        &["queues", "limit", "default", "--concurrency", "1"],
    );
    assert!(said.contains("limited to concurrency 1"), "{said}");
    // Taken up within a second by a running worker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids = enqueue_many(&env, "capped", 4).await;
    eventually(LONG, "the limit listed with its one slot held", || async {
        let listed = run_flotilla(&env.url(), &[], &["queues", "limits", "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).ok()?;
        (listed[0]["queue"] == "default"
            && listed[0]["concurrency"] == 1
            && listed[0]["slots_held"] == 1)
            .then_some(())
    })
    .await;
    let stats = run_flotilla(&env.url(), &[], &["queues", "stats"]);
    assert!(stats.contains("1 of 1 running"), "{stats}");
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "one at a time");
    // Cleared: the next jobs run side by side.
    let said = run_flotilla(&env.url(), &[], &["queues", "limit", "default", "--clear"]);
    assert!(said.contains("has no flow limit now"), "{said}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids = enqueue_many(&env, "capped", 4).await;
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    assert!(most.load(Ordering::SeqCst) > 1, "no cap after --clear");
    let shown = run_flotilla(&env.url(), &[], &["queues", "limit", "default"]);
    assert!(shown.contains("default has no flow limit"), "{shown}");
    worker.stop().await;
}

#[tokio::test]
async fn a_bad_limit_is_refused_with_the_form_it_needs() {
    let env = Env::start().await;
    for (args, expected) in [
        (vec!["--rate", "100/d"], "expected N/UNIT"),
        (vec!["--rate", "0/s"], "expected N/UNIT"),
        (
            vec!["--concurrency", "0"],
            "concurrency 0: expected a whole number from 1",
        ),
    ] {
        let output = std::process::Command::new(flotilla_tests::flotilla_bin())
            .args(["queues", "limit", "default"])
            .args(&args)
            .env("FLOTILLA_REDIS_URL", env.url())
            .env_remove("FLOTILLA_CONFIG")
            .output()
            .expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(said.contains(expected), "{args:?}: {said}");
    }
    let (limits, _) = flow::read_limits(&mut env.conn.clone(), &env.keys)
        .await
        .expect("read");
    assert!(limits.is_empty(), "nothing stored: {limits:?}");
}

#[tokio::test]
async fn the_settings_file_gives_queues_without_a_limit_theirs() {
    let env = Env::start().await;
    // An operator's runtime limit on `low` stays; `default` has none and gets the file's.
    let low = QueueLimit {
        concurrency: Some(7),
        ..QueueLimit::default()
    };
    flow::set_limit(&mut env.conn.clone(), &env.keys, "low", &low, false)
        .await
        .expect("limit set");
    let settings = "[flow.default]\nrate = \"10/s\"\nburst = 3\n\n[flow.low]\nconcurrency = 2\n\n\
                    [flow.mail]\ngroup_rate = \"5/s\"\ngroup_burst = 2\n";
    let _scheduler = flotilla_tests::FlotillaProcess::scheduler(&env.url(), &[], Some(settings));
    let limits = eventually(LONG, "the settings file's limit written", || async {
        let (limits, _) = flow::read_limits(&mut env.conn.clone(), &env.keys)
            .await
            .ok()?;
        (limits.contains_key("default") && limits.contains_key("mail")).then_some(limits)
    })
    .await;
    assert_eq!(limits["default"].encode(), "rate=10/s burst=3");
    assert_eq!(limits["mail"].encode(), "group_rate=5/s group_burst=2");
    // Where the scripts read a rate per group: its spacing in µs, and its burst.
    let stored: Vec<Option<u64>> = env
        .cmd(
            redis::cmd("HMGET")
                .arg(env.keys.group_limit("mail"))
                .arg("rate_spacing_us")
                .arg("rate_burst"),
        )
        .await;
    assert_eq!(stored, vec![Some(200_000), Some(2)]);
    assert_eq!(limits["low"], low, "the runtime limit stays");

    // A bad limit in the file stops the process before it starts, naming key and form.
    let mut refused = flotilla_tests::FlotillaProcess::scheduler(
        &env.url(),
        &[],
        Some("[flow.default]\nrate = \"10/d\"\n"),
    );
    assert!(
        refused
            .wait_exit(LONG)
            .is_some_and(|status| !status.success())
    );
    let said = refused.log();
    assert!(
        said.contains("flow.default") && said.contains("expected N/UNIT"),
        "{said}"
    );
}

#[tokio::test]
async fn spare_slots_never_take_a_cap_past_its_size_and_all_go_back() {
    let env = Env::start().await;
    // Four workers of ten against a cap of 25: early admissions find the cap far from
    // reached and give spares (each worker keeps the slots of its ended jobs); later
    // ones do not. Either way no more than 25 run at once.
    cap_default(&env, 25).await;
    let (running, most) = (Arc::default(), Arc::default());
    let registry = counting_registry(&running, &most, Duration::from_millis(20));
    enqueue_many(&env, "capped", 600).await;
    let workers = start_workers(&env, 4, 10, &registry).await;
    wait_drained(&env).await;
    let most = most.load(Ordering::SeqCst);
    assert!(
        (20..=25).contains(&most),
        "{most} ran at once under a cap of 25"
    );
    // Spare slots unused for a moment go back while the workers still run.
    wait_slots_held(&env, 0, "every spare slot given back").await;
    stop_all(workers).await;
}

#[tokio::test]
async fn spare_starts_keep_a_busy_rate_within_its_bound() {
    let env = Env::start().await;
    // A rate of 1000/s with a burst of 100, far from spent at first: workers take spare
    // starts, used within 10 ms, so no second sees more than 1000 + 100 + 10.
    limit_default(
        &env,
        QueueLimit {
            rate: Some("1000/s".parse().expect("a rate")),
            burst: Some(100),
            ..QueueLimit::default()
        },
    )
    .await;
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let registry = ticking(&starts);
    enqueue_many(&env, "tick", 2500).await;
    let workers = start_workers(&env, 4, 20, &registry).await;
    wait_drained(&env).await;
    stop_all(workers).await;
    let starts = starts.lock().expect("lock").clone();
    let busiest = busiest_window(&starts, Duration::from_secs(1));
    assert!(
        busiest <= 1000 + 100 + 10,
        "{busiest} jobs started within one second at 1000/s (burst 100)"
    );
    assert!(
        busiest >= 900,
        "the rate was used: {busiest} in the busiest second"
    );
}

#[tokio::test]
async fn a_frozen_worker_that_wakes_gives_up_the_slot_that_went_to_another() {
    let env = Env::start().await;
    cap_default(&env, 1).await;
    let frozen = WorkerProcess::start(&env.url(), flotilla_tests::JSON_LOGS, None);
    let job = env.enqueue("sleep", json!({"ms": 2500})).await;
    let first = env
        .wait_status("default", &job, Status::Running, LONG)
        .await;
    wait_slots_held(&env, 1, "the running job to hold the only slot").await;
    frozen.signal("STOP");
    // Past its lease the frozen worker counts as gone: another takes the job over, and
    // its slot with it.
    let other = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    eventually(LONG, "the job taken over by the other worker", || async {
        env.record("default", &job)
            .await
            .filter(|r| r.worker.is_some() && r.worker != first.worker)
    })
    .await;
    frozen.signal("CONT");
    // Woken, it finds its hold ended and stops its run rather than run past the cap.
    eventually(LONG, "the woken worker to give up its run", || async {
        frozen
            .json_logs()
            .iter()
            .any(|line| {
                line["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("concurrency slot lost"))
            })
            .then_some(())
    })
    .await;
    let done = env
        .wait_status("default", &job, Status::Completed, LONG)
        .await;
    assert_ne!(done.worker, first.worker, "completed by the other worker");
    wait_slots_held(&env, 0, "every slot given back").await;
    other.stop().await;
}

#[tokio::test]
async fn metrics_show_a_limit_reached_and_the_jobs_it_held_back() {
    let env = Env::start().await;
    cap_default(&env, 1).await;
    // Two workers read the queue at once while one job may run: one of them holds its
    // entry back until the other's job ends.
    let addrs = [free_local_addr(), free_local_addr()];
    let workers: Vec<_> = addrs
        .iter()
        .map(|addr| WorkerProcess::start(&env.url(), &[("FLOTILLA_HTTP_LISTEN", addr)], None))
        .collect();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(env.enqueue("sleep", json!({"ms": 150})).await);
    }
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let sum = |name: &str| {
        addrs
            .iter()
            .map(|addr| {
                let (status, body) = http_get(addr, "/metrics").expect("metrics answer");
                assert_eq!(status, 200);
                body.lines()
                    .filter(|line| line.starts_with(name))
                    .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .sum::<f64>()
    };
    assert!(
        sum(r#"flotilla_limit_reached_total{queue="default"}"#) >= 5.0,
        "each of the six jobs took the only slot"
    );
    let held = sum(r#"flotilla_jobs_total{queue="default",type="sleep",outcome="throttled"}"#);
    let waits = sum(r#"flotilla_limit_wait_seconds_count{queue="default"}"#);
    assert!(held >= 1.0, "no entry was held back: {held}");
    assert!(
        waits >= 1.0 && waits <= held,
        "{waits} waits for {held} held back"
    );
    // Redis keeps the count too, for the dashboard and `queues stats`, as the metric
    // counts it (written in the background: it may trail the metric a moment).
    let tallied = || {
        let stats = run_flotilla(&env.url(), &[], &["queues", "stats", "--json"]);
        let stats: Vec<serde_json::Value> = serde_json::from_str(&stats).expect("json");
        stats
            .iter()
            .find(|q| q["queue"] == json!("default"))
            .map(|q| {
                (
                    q["throttled_last_hour"].clone(),
                    q["throttled_last_day"].clone(),
                )
            })
    };
    let deadline = Instant::now() + LONG;
    while tallied().and_then(|(hour, _)| hour.as_f64()) != Some(held) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (hour, day) = tallied().expect("default's stats");
    assert_eq!(hour.as_f64(), Some(held), "throttled in the last hour");
    assert_eq!(day.as_f64(), Some(held), "throttled in the last day");
    drop(workers);
}
