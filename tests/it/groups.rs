//! Groups: with `--group-concurrency 1`, a group with a long backlog runs one job at a
//! time and never holds back another group's jobs; a job waiting its group's turn can be
//! read, cancelled and deleted; a group's place comes back when its job dies, partitions
//! added later get the window, and clearing the limit lets every waiting job through. With `--per-group --rate`, each group's jobs,
//! retries included, start no faster than the rate while other groups go on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::{HandlerError, JobContext, Registry, WorkerConfig};
use serde::Deserialize;
use serde_json::json;

use crate::util::{Env, LONG, run_flotilla};

/// What the handlers saw: per group, how many of its jobs ran at once at most and how many
/// ran; per job, when it started.
#[derive(Default)]
struct Seen {
    running: HashMap<String, usize>,
    most_at_once: HashMap<String, usize>,
    ran: HashMap<String, usize>,
    started: HashMap<String, Instant>,
}

type Shared = Arc<Mutex<Seen>>;

#[derive(Deserialize)]
struct Work {
    group: String,
    ms: u64,
    #[serde(default)]
    fail: bool,
}

/// A registry whose `work` handler notes, outside Redis, how many jobs of its group run at
/// once, sleeps `ms`, and fails for good when asked.
fn watching(seen: &Shared) -> Registry {
    let mut registry = Registry::with_builtins();
    let seen = Arc::clone(seen);
    registry.register_fn("work", move |work: Work, ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            {
                let mut s = seen.lock().expect("lock");
                let running = s.running.entry(work.group.clone()).or_default();
                *running += 1;
                let now = *running;
                let most = s.most_at_once.entry(work.group.clone()).or_default();
                *most = (*most).max(now);
                *s.ran.entry(work.group.clone()).or_default() += 1;
                s.started.insert(ctx.id.clone(), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(work.ms)).await;
            *seen
                .lock()
                .expect("lock")
                .running
                .entry(work.group.clone())
                .or_default() -= 1;
            if work.fail {
                return Err(HandlerError::give_up("failed for good"));
            }
            Ok::<_, HandlerError>(())
        }
    });
    registry
}

fn work(group: &str, ms: u64) -> NewJob {
    NewJob::new("work", &json!({"group": group, "ms": ms}))
        .expect("job")
        .group(group)
}

async fn enqueue_all(env: &Env, jobs: Vec<NewJob>) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in jobs.chunks(1000) {
        for result in env
            .producer
            .enqueue_bulk(batch.to_vec())
            .await
            .expect("enqueue")
        {
            ids.push(result.expect("enqueued").id);
        }
    }
    ids
}

/// A private Redis whose `default` queue lets one job of each group through at a time
/// (`--per-group --concurrency 1`, the same as `--group-concurrency 1`), and its URL.
async fn one_job_per_group() -> (Env, String) {
    let env = Env::start().await;
    let url = env.url();
    let limit = [
        "queues",
        "limit",
        "default",
        "--per-group",
        "--concurrency",
        "1",
    ];
    run_flotilla(&url, &[], &limit);
    (env, url)
}

/// The big group's backlog: 20 000 jobs, or `FLOTILLA_GROUPS_BACKLOG` (50 000 for the
/// whole scenario, in a release build).
fn backlog() -> usize {
    std::env::var("FLOTILLA_GROUPS_BACKLOG")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

#[tokio::test]
async fn a_backlogged_group_runs_one_at_a_time_and_holds_back_no_other_group() {
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    // One group's backlog first, then two thousand groups of one job each.
    enqueue_all(&env, (0..backlog()).map(|_| work("big", 2)).collect()).await;
    let small_from = Instant::now();
    let small = enqueue_all(
        &env,
        (0..2_000).map(|i| work(&format!("small-{i}"), 0)).collect(),
    )
    .await;
    let enqueued = Instant::now();
    let workers = [
        InProcessWorker::start(&url, fast_config(), watching(&seen)).await,
        InProcessWorker::start(&url, fast_config(), watching(&seen)).await,
    ];
    for id in &small {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    // Some of the backlog ran meanwhile, one at a time.
    let deadline = Instant::now() + LONG;
    while seen
        .lock()
        .expect("lock")
        .ran
        .get("big")
        .copied()
        .unwrap_or(0)
        < 20
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in workers {
        worker.stop().await;
    }
    let s = seen.lock().expect("lock");
    assert_eq!(
        s.most_at_once.get("big"),
        Some(&1),
        "the big group ran two at once"
    );
    assert!(
        s.ran.get("big").copied().unwrap_or(0) >= 20,
        "the backlog moved"
    );
    // Every small group's job started within a second of its enqueue (the workers
    // started once all were enqueued: counted from then).
    let late: Vec<Duration> = small
        .iter()
        .filter_map(|id| s.started.get(id))
        .map(|at| at.saturating_duration_since(enqueued))
        .filter(|waited| *waited > Duration::from_secs(1))
        .collect();
    assert!(
        late.is_empty(),
        "{} small jobs waited over a second behind the backlog (enqueued in {:?})",
        late.len(),
        enqueued - small_from
    );
    let limits = run_flotilla(&url, &[], &["queues", "limits"]);
    assert!(limits.contains("1 at once per group"), "{limits}");
    // The operator sees which group waits: the backlog's, its place taken by one job.
    assert!(limits.contains("most waiting: big ("), "{limits}");
    let limits = run_flotilla(&url, &[], &["queues", "limits", "--json"]);
    let limits: serde_json::Value = serde_json::from_str(&limits).expect("JSON");
    let busiest = &limits[0]["busiest_groups"];
    assert_eq!(busiest[0]["group"], "big", "{limits}");
    let ran = s.ran.get("big").copied().unwrap_or(0) as u64;
    let waiting = busiest[0]["waiting"].as_u64().unwrap_or(0);
    assert!(
        waiting + ran + 1 >= backlog() as u64 && waiting + ran <= backlog() as u64,
        "{waiting} waiting after {ran} ran of {}: {limits}",
        backlog()
    );
    assert!(busiest[0]["let_through"].as_u64() <= Some(1), "{limits}");
}

#[tokio::test]
async fn a_job_waiting_its_turn_is_read_cancelled_and_deleted_and_a_dead_one_gives_its_place_back()
{
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    // The first job dies; its place comes back on a promote pass, as nothing else says so.
    let first = env
        .enqueue_job(
            NewJob::new("work", &json!({"group": "t", "ms": 50, "fail": true}))
                .expect("job")
                .group("t")
                .max_attempts(1),
        )
        .await;
    let waiting = enqueue_all(&env, (0..4).map(|_| work("t", 10)).collect()).await;
    let shown = run_flotilla(&url, &[], &["jobs", "show", &waiting[0]]);
    assert!(shown.contains("pending"), "{shown}");
    // The jobs waiting their turn count in the queue's depth and as pending.
    let depth = |env: &Env| {
        let (mut conn, keys) = (env.conn.clone(), env.keys.clone());
        async move {
            flotilla_proto::queue_depth(&mut conn, &keys, "default")
                .await
                .expect("depth")
        }
    };
    assert_eq!(depth(&env).await, (1, 4));
    run_flotilla(&url, &[], &["jobs", "cancel", &waiting[1]]);
    run_flotilla(&url, &[], &["jobs", "delete", &waiting[2]]);
    assert_eq!(
        depth(&env).await,
        (1, 2),
        "a cancel and a delete leave the line"
    );
    let stats = run_flotilla(&url, &[], &["queues", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("JSON");
    let default = stats
        .as_array()
        .and_then(|queues| queues.iter().find(|q| q["queue"] == "default"))
        .unwrap_or_else(|| panic!("default in {stats}"));
    assert_eq!(default["pending"], 3, "{default}");
    let worker = InProcessWorker::start(&url, fast_config(), watching(&seen)).await;
    env.wait_status("default", &first, Status::Dead, LONG).await;
    for id in [&waiting[0], &waiting[3]] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let cancelled = env.record("default", &waiting[1]).await.expect("a record");
    assert_eq!(cancelled.status, Some(Status::Cancelled));
    assert!(
        env.record("default", &waiting[2]).await.is_none(),
        "deleted"
    );
    assert_eq!(seen.lock().expect("lock").ran.get("t"), Some(&3));
    // Clearing the limit lets a whole line through at once.
    let line = enqueue_all(&env, (0..5).map(|_| work("u", 300)).collect()).await;
    let started = Instant::now();
    run_flotilla(&url, &[], &["queues", "limit", "default", "--clear"]);
    for id in &line {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "once cleared, the group's jobs ran side by side: {:?}",
        started.elapsed()
    );
    assert!(seen.lock().expect("lock").most_at_once.get("u") > Some(&1));
    assert_eq!(
        depth(&env).await,
        (0, 0),
        "every line counted out as it emptied"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_place_held_by_an_entry_deleted_by_hand_comes_back_and_new_partitions_keep_the_window() {
    let (env, url) = one_job_per_group().await;
    let first = env.enqueue_job(work("d", 10)).await;
    let next = env.enqueue_job(work("d", 10)).await;
    // The first job's entry is deleted by hand before any worker reads it: its id key
    // names an entry that is gone, and it holds its group's place no more.
    let entry: String = env
        .cmd(redis::cmd("GET").arg(env.keys.id_key("default", &first)))
        .await;
    env.cmd::<()>(
        redis::cmd("XDEL")
            .arg(env.keys.stream("default"))
            .arg(&entry),
    )
    .await;
    let seen = Shared::default();
    let worker = InProcessWorker::start(&url, fast_config(), watching(&seen)).await;
    env.wait_status("default", &next, Status::Completed, LONG)
        .await;
    worker.stop().await;

    // Partitions added later read the queue's window as the first ones do.
    run_flotilla(
        &url,
        &[],
        &["queues", "limit", "mail", "--group-concurrency", "2"],
    );
    run_flotilla(&url, &[], &["queues", "partition", "mail", "3"]);
    for partition in ["mail", "mail#1", "mail#2"] {
        let window: Option<u32> = env
            .cmd(
                redis::cmd("HGET")
                    .arg(env.keys.group_limit(partition))
                    .arg("concurrency"),
            )
            .await;
        assert_eq!(window, Some(2), "{partition}");
    }
    // A count raised by a worker's own settings (a worker may not write the group limits):
    // the scheduler's leader writes them to the new partition.
    flotilla_proto::partition::raise_partition_count(&mut env.conn.clone(), &env.keys, "mail", 4)
        .await
        .expect("raised");
    let _scheduler = flotilla_tests::FlotillaProcess::scheduler(&url, &[], None);
    let key = env.keys.group_limit("mail#3");
    eventually(LONG, "the new partition's window written", || async {
        let window: Option<u32> = redis::cmd("HGET")
            .arg(&key)
            .arg("concurrency")
            .query_async(&mut env.conn.clone())
            .await
            .ok()?;
        (window == Some(2)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_job_of_a_group_with_a_time_or_a_debounce_waits_its_groups_turn_when_its_time_comes() {
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    // The first job holds the group's one place for 800 ms; one due 100 ms on, and a
    // debounced one (three enqueues folded into one, 150 ms on), wait their turn behind it.
    let first = env.enqueue_job(work("t", 800)).await;
    let later = env
        .enqueue_job(work("t", 10).delay(Duration::from_millis(100)))
        .await;
    let mut debounced = Vec::new();
    for ms in [11, 12, 13] {
        let job = work("t", ms).debounce("t-edits", Duration::from_millis(150));
        debounced.push(env.enqueue_job(job).await);
    }
    assert!(
        debounced.iter().all(|id| *id == debounced[0]),
        "folded into one job: {debounced:?}"
    );
    let worker = InProcessWorker::start(&url, fast_config(), watching(&seen)).await;
    for id in [&first, &later, &debounced[0]] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    worker.stop().await;
    let s = seen.lock().expect("lock");
    assert_eq!(
        s.ran.get("t"),
        Some(&3),
        "one run each, the debounced one once"
    );
    assert_eq!(
        s.most_at_once.get("t"),
        Some(&1),
        "two of the group ran at once"
    );
    let first_started = s.started[&first];
    for id in [&later, &debounced[0]] {
        let waited = s.started[id].saturating_duration_since(first_started);
        assert!(
            waited >= Duration::from_millis(790),
            "{id} started {waited:?} after the first, which held the group's place for 800 ms"
        );
    }
}

#[tokio::test]
async fn a_job_of_a_group_that_dies_gives_its_place_to_the_next_at_once() {
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    // Promote passes ten seconds apart: only the death itself lets the next job through
    // in time.
    let config = WorkerConfig {
        promote_interval: Duration::from_secs(10),
        ..fast_config()
    };
    let dies = NewJob::new("work", &json!({"group": "d", "ms": 10, "fail": true}))
        .expect("job")
        .group("d")
        .max_attempts(1);
    let dies = env.enqueue_job(dies).await;
    let next = env.enqueue_job(work("d", 10)).await;
    let worker = InProcessWorker::start(&url, config, watching(&seen)).await;
    env.wait_status("default", &dies, Status::Dead, LONG).await;
    let died = Instant::now();
    env.wait_status("default", &next, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert!(
        died.elapsed() < Duration::from_secs(3),
        "the next job of the group waited {:?} after the first died",
        died.elapsed()
    );
}

#[tokio::test]
async fn jobs_of_a_group_added_by_a_raw_xadd_wait_their_turn_too() {
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    // Four jobs of one group by a raw XADD, as another language adds them, two with ids of
    // their own: no script kept their group's turn, so workers put them through it.
    let payload = json!({"group": "raw", "ms": 150}).to_string();
    let mut ids = Vec::new();
    for n in 0..4 {
        let own = format!("raw-{n}");
        let mut fields: Vec<(&str, &[u8])> = Vec::new();
        // The first named by its entry (no id key), so its place is judged by its entry.
        if n % 2 == 1 {
            fields.push(("id", own.as_bytes()));
        }
        fields.push(("type", b"work"));
        fields.push(("payload", payload.as_bytes()));
        fields.push(("group", b"raw"));
        let entry =
            flotilla_proto::add_raw_entry(&mut env.conn.clone(), &env.keys, "default", &fields)
                .await
                .expect("xadd");
        ids.push(if n % 2 == 1 { own } else { entry });
    }
    let workers = [
        InProcessWorker::start(&url, fast_config(), watching(&seen)).await,
        InProcessWorker::start(&url, fast_config(), watching(&seen)).await,
    ];
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    for worker in workers {
        worker.stop().await;
    }
    let s = seen.lock().expect("lock");
    assert_eq!(s.ran.get("raw"), Some(&4), "each ran once");
    assert_eq!(
        s.most_at_once.get("raw"),
        Some(&1),
        "two of the group ran at once"
    );
}

#[tokio::test]
async fn a_unique_job_of_a_group_waits_its_turn_holding_its_key() {
    let (env, url) = one_job_per_group().await;
    let seen = Shared::default();
    let unique = |key: &str, ms: u64| work("u", ms).unique(key, Duration::from_secs(60));
    let first = env.enqueue_job(unique("u-1", 1500)).await;
    let second = env.enqueue_job(unique("u-2", 10)).await;
    let third = env.enqueue_job(unique("u-3", 10)).await;
    // Waiting its turn, a unique job holds its key and reads as pending.
    let again = env
        .producer
        .enqueue(unique("u-2", 10))
        .await
        .expect("enqueue");
    assert_eq!(again.outcome, flotilla_producer::Outcome::Duplicate);
    assert_eq!(again.id, second);
    let waiting = env.record("default", &second).await.expect("a record");
    assert_eq!(waiting.status, Some(Status::Pending));
    // The first is on the stream, the other two in their group's line, not on the stream.
    let (mut conn, keys) = (env.conn.clone(), env.keys.clone());
    let depth = flotilla_proto::queue_depth(&mut conn, &keys, "default")
        .await
        .expect("depth");
    assert_eq!(depth, (1, 2));
    // A cancel takes it out of its line and gives its key back.
    run_flotilla(&url, &[], &["jobs", "cancel", &third]);
    let fresh = env
        .producer
        .enqueue(unique("u-3", 10))
        .await
        .expect("enqueue");
    assert_eq!(fresh.outcome, flotilla_producer::Outcome::Created);
    // One with a time waits for it, then for its group's turn, its record the while.
    let later = env
        .enqueue_job(unique("u-4", 10).delay(Duration::from_millis(100)))
        .await;
    let worker = InProcessWorker::start(&url, fast_config(), watching(&seen)).await;
    // Due while the first still runs, it waits in its group's line, not on the stream.
    let due = eventually(LONG, "the job with a time to come due", || async {
        let record = env.record("default", &later).await?;
        (record.status != Some(Status::Scheduled)).then_some(record)
    })
    .await;
    assert_eq!(due.status, Some(Status::Pending));
    let entry: Option<String> = env
        .cmd(
            redis::cmd("HGET")
                .arg(env.keys.job("default", &later))
                .arg("entry"),
        )
        .await;
    assert_eq!(entry, None, "on the stream already");
    for id in [&first, &second, &fresh.id, &later] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let cancelled = env.record("default", &third).await.expect("a record");
    assert_eq!(cancelled.status, Some(Status::Cancelled));
    worker.stop().await;
    let depth = flotilla_proto::queue_depth(&mut conn, &keys, "default")
        .await
        .expect("depth");
    assert_eq!(depth, (0, 0), "nothing left in the line");
    let s = seen.lock().expect("lock");
    assert_eq!(s.ran.get("u"), Some(&4), "the cancelled one never ran");
    assert_eq!(
        s.most_at_once.get("u"),
        Some(&1),
        "two of the group ran at once"
    );
}

/// When each group's jobs started, as the handlers saw them.
type Starts = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

#[derive(Deserialize)]
struct Tick {
    group: String,
    #[serde(default)]
    fail_first: bool,
}

/// A registry whose `tick` handler notes when a job of its group started, and fails the
/// first attempt of a job that asks, to be retried a millisecond later.
fn ticking(starts: &Starts) -> Registry {
    let mut registry = Registry::with_builtins();
    let starts = Arc::clone(starts);
    registry.register_fn("tick", move |tick: Tick, ctx: JobContext| {
        let starts = Arc::clone(&starts);
        async move {
            starts
                .lock()
                .expect("lock")
                .entry(tick.group)
                .or_default()
                .push(Instant::now());
            if tick.fail_first && ctx.attempt == 1 {
                return Err(HandlerError::retry_after(
                    "first attempt fails",
                    Duration::from_millis(1),
                ));
            }
            Ok::<_, HandlerError>(())
        }
    });
    registry
}

fn tick(group: &str, fail_first: bool) -> NewJob {
    NewJob::new("tick", &json!({"group": group, "fail_first": fail_first}))
        .expect("job")
        .group(group)
}

#[tokio::test]
async fn a_rate_per_group_spaces_each_groups_starts_retries_included_and_holds_back_no_other() {
    let env = Env::start().await;
    let url = env.url();
    let limit = [
        "queues",
        "limit",
        "default",
        "--per-group",
        "--rate",
        "10/s",
        "--burst",
        "2",
    ];
    run_flotilla(&url, &[], &limit);
    // Two groups of 20 jobs, one whose 8 jobs each fail once (16 starts), one of a single
    // job: each group's starts are spaced 100 ms apart after a burst of two.
    let mut jobs: Vec<NewJob> = Vec::new();
    for _ in 0..20 {
        jobs.push(tick("a", false));
        jobs.push(tick("b", false));
    }
    jobs.extend((0..8).map(|_| tick("r", true)));
    jobs.push(tick("one", false));
    let ids = enqueue_all(&env, jobs).await;
    // Promote passes a second apart: a group's next turn wakes the promoters sooner.
    let config = WorkerConfig {
        promote_interval: Duration::from_secs(1),
        ..fast_config()
    };
    let starts = Starts::default();
    let began = Instant::now();
    let workers = [
        InProcessWorker::start(&url, config.clone(), ticking(&starts)).await,
        InProcessWorker::start(&url, config, ticking(&starts)).await,
    ];
    for id in &ids {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    let took = began.elapsed();
    for worker in workers {
        worker.stop().await;
    }
    let starts = starts.lock().expect("lock");
    // GCRA: n starts of a group take at least (n - burst) spacings; a start is seen a
    // little after its job was let through, so each gap gets 60 ms of slack.
    let spacing = Duration::from_millis(100);
    let slack = Duration::from_millis(60);
    for (group, count) in [("a", 20), ("b", 20), ("r", 16), ("one", 1)] {
        let seen = starts.get(group).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(seen.len(), count, "starts of group {group}");
        let mut sorted = seen.to_vec();
        sorted.sort();
        for i in 0..sorted.len() {
            for j in i + 2..sorted.len() {
                let least = spacing * (j - i - 1) as u32;
                assert!(
                    sorted[j] - sorted[i] + slack >= least,
                    "group {group}: starts {i} to {j} came {:?} apart, the rate allows no less than {least:?}",
                    sorted[j] - sorted[i]
                );
            }
        }
    }
    // The groups went side by side, each at its own rate, and their turns came when due
    // rather than at the one-second promote passes (those would take about ten seconds).
    assert!(
        took < Duration::from_millis(4500),
        "the groups took {took:?}: one held back another, or turns waited for promote passes"
    );
    let limits = run_flotilla(&url, &[], &["queues", "limits"]);
    assert!(limits.contains("10/s per group (burst 2)"), "{limits}");
}
