//! Scheduler replicas: one leads at a time, every tick is enqueued exactly once across
//! kills and freezes, SIGTERM hands over at once, and schedules survive restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla_scheduler::{CatchUp, Schedule, ScheduleStore};
use flotilla_tests::{FlotillaProcess, JSON_LOGS, eventually, json_lines};

use crate::util::{Env, LONG};

/// The lease the test schedulers use (see the support's fast settings).
const LEASE: Duration = Duration::from_secs(2);

/// The period of [`every_second`]'s schedule.
const TICK: Duration = Duration::from_secs(1);

fn store(env: &Env) -> ScheduleStore {
    ScheduleStore::new(env.conn.clone(), env.keys.clone())
}

fn every_second(name: &str) -> Schedule {
    let mut schedule = Schedule::new(name, "noop");
    schedule.cron = Some("* * * * * *".into());
    schedule.catch_up = CatchUp::All;
    schedule
}

/// The pid inside the current leader's holder id (`host-pid-suffix`), if one leads.
async fn leader_pid(env: &Env) -> Option<u32> {
    let holder: Option<String> = env.cmd(redis::cmd("GET").arg(env.keys.leader())).await;
    holder?.rsplit('-').nth(1)?.parse().ok()
}

async fn wait_for_leader(env: &Env, not: Option<u32>) -> u32 {
    eventually(LONG, "a leader", || async {
        leader_pid(env).await.filter(|pid| Some(*pid) != not)
    })
    .await
}

/// How many stream entries each job id of `schedule` has in the queue (no worker runs).
async fn entries_per_job(env: &Env, schedule: &str) -> BTreeMap<i64, usize> {
    let reply: redis::streams::StreamRangeReply = env
        .cmd(
            redis::cmd("XRANGE")
                .arg(env.keys.stream("default"))
                .arg("-")
                .arg("+"),
        )
        .await;
    let mut counts = BTreeMap::new();
    for entry in reply.ids {
        let id: String = entry.get("id").unwrap_or_default();
        let tick = id
            .strip_prefix(&format!("{schedule}@"))
            .and_then(|t| t.parse::<i64>().ok());
        if let Some(tick) = tick {
            *counts.entry(tick).or_insert(0) += 1;
        }
    }
    counts
}

/// Ticks that a process logged as fired (created, not "already fired").
fn fired_in_log(log: &str) -> Vec<i64> {
    json_lines(log)
        .into_iter()
        .filter(|line| line["fields"]["message"] == "fired")
        .filter_map(|line| line["fields"]["tick"].as_i64())
        .collect()
}

/// Whether a process logged that it stopped leading.
fn stepped_down(log: &str) -> bool {
    json_lines(log).iter().any(|line| {
        line["level"] == "WARN"
            && line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("stepping down"))
    })
}

/// A small deterministic random source, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[tokio::test]
async fn every_tick_is_enqueued_exactly_once_while_leaders_are_killed_and_frozen() {
    let env = Env::start().await;
    let url = env.url();
    let mut replicas: Vec<FlotillaProcess> = (0..3)
        .map(|_| FlotillaProcess::scheduler(&url, JSON_LOGS, None))
        .collect();
    wait_for_leader(&env, None).await;
    store(&env)
        .put(&every_second("chaos"))
        .await
        .expect("schedule saved");

    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("chaos seed {seed} (set CHAOS_SEED to replay)");
    let mut rng = Rng(seed);
    let mut logs = String::new();
    let (mut kills, mut freezes) = (0, 0);
    // At least 30 s of chaos and at least 6 blows; a slow machine (or a leader still
    // being elected when the monkey looks) gets up to 60 s to deliver them.
    let began = Instant::now();
    let (chaos_ends, chaos_cap) = (
        began + Duration::from_secs(30),
        began + Duration::from_secs(60),
    );
    while Instant::now() < chaos_ends || (kills + freezes < 6 && Instant::now() < chaos_cap) {
        tokio::time::sleep(Duration::from_millis(800 + rng.below(2500))).await;
        let Some(pid) = leader_pid(&env).await else {
            continue;
        };
        let Some(slot) = replicas.iter().position(|p| p.pid() == pid) else {
            continue;
        };
        if rng.below(2) == 0 {
            replicas[slot].signal("KILL");
            kills += 1;
            tokio::time::sleep(Duration::from_millis(200 + rng.below(1500))).await;
            let fresh = FlotillaProcess::scheduler(&url, JSON_LOGS, None);
            let dead = std::mem::replace(&mut replicas[slot], fresh);
            logs.push_str(&dead.log());
        } else {
            replicas[slot].signal("STOP");
            freezes += 1;
            tokio::time::sleep(LEASE + Duration::from_millis(200 + rng.below(1500))).await;
            replicas[slot].signal("CONT");
        }
    }
    // Let the last leader catch up: once a tick due after the chaos has fired, every
    // earlier one has (a leader fires ticks in order, catching up first). Then stop
    // everyone gracefully.
    let chaos_over_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    eventually(LONG, "a tick due after the chaos", || async {
        let counts = entries_per_job(&env, "chaos").await;
        counts
            .keys()
            .next_back()
            .filter(|tick| **tick >= chaos_over_ms)
            .map(|_| ())
    })
    .await;
    for replica in &replicas {
        replica.signal("TERM");
    }
    for replica in &mut replicas {
        replica.wait_exit(Duration::from_secs(5));
        logs.push_str(&replica.log());
    }

    let counts = entries_per_job(&env, "chaos").await;
    let first = *counts.keys().next().expect("ticks were fired");
    let last = *counts.keys().last().expect("ticks were fired");
    let expected: BTreeSet<i64> = (0..=(last - first) / 1000)
        .map(|i| first + i * 1000)
        .collect();
    let fired: BTreeSet<i64> = counts.keys().copied().collect();
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = expected.difference(&fired).collect();
    let mut logged = fired_in_log(&logs);
    logged.sort_unstable();
    let logged_twice = logged.windows(2).filter(|w| w[0] == w[1]).count();
    eprintln!(
        "failover figures: {kills} kills, {freezes} freezes; ticks expected {}, fired {}, duplicates {}, missing {}, \
         fired-twice in logs {logged_twice}",
        expected.len(),
        fired.len(),
        duplicates.len(),
        missing.len()
    );
    assert!(kills + freezes >= 5, "too little chaos to prove anything");
    // A leader logs a tick once Redis has taken it, so a SIGKILL between the two loses
    // that one line: each kill may hide at most the tick it was firing, no more.
    let logged_set: BTreeSet<i64> = logged.iter().copied().collect();
    let unlogged: Vec<_> = fired.difference(&logged_set).collect();
    assert!(
        unlogged.len() <= kills,
        "every created tick is in some log but at most one per kill ({} logged, unlogged {unlogged:?})",
        logged.len()
    );
    assert!(expected.len() >= 30, "the window spans the chaos");
    assert!(
        duplicates.is_empty(),
        "ticks enqueued twice: {duplicates:?}"
    );
    assert!(missing.is_empty(), "ticks never enqueued: {missing:?}");
    assert_eq!(logged_twice, 0, "two schedulers both created the same tick");
}

#[tokio::test]
async fn a_frozen_ex_leader_fires_nothing_the_new_leader_fired() {
    let env = Env::start().await;
    let url = env.url();
    let first = FlotillaProcess::scheduler(&url, JSON_LOGS, None);
    let leader = wait_for_leader(&env, None).await;
    assert_eq!(leader, first.pid());
    let second = FlotillaProcess::scheduler(&url, JSON_LOGS, None);
    store(&env)
        .put(&every_second("fenced"))
        .await
        .expect("saved");
    eventually(LONG, "the first leader to fire a tick", || async {
        (!fired_in_log(&first.log()).is_empty()).then_some(())
    })
    .await;
    first.signal("STOP");
    let new_leader = wait_for_leader(&env, Some(first.pid())).await;
    assert_eq!(new_leader, second.pid());
    eventually(LONG, "the new leader to fire a tick", || async {
        (!fired_in_log(&second.log()).is_empty()).then_some(())
    })
    .await;
    first.signal("CONT");
    eventually(LONG, "the old leader to step down", || async {
        stepped_down(&first.log()).then_some(())
    })
    .await;
    // Proves something does not happen: over a whole lease (two ticks of the schedule, and
    // three renewals of the new leader's lease) the ex-leader fires nothing and takes
    // nothing back.
    tokio::time::sleep(LEASE).await;
    let counts = entries_per_job(&env, "fenced").await;
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let fired_by_old: BTreeSet<i64> = fired_in_log(&first.log()).into_iter().collect();
    let fired_by_new: BTreeSet<i64> = fired_in_log(&second.log()).into_iter().collect();
    assert!(
        !fired_by_old.is_empty() && !fired_by_new.is_empty(),
        "both led for a while"
    );
    assert!(
        fired_by_old.is_disjoint(&fired_by_new),
        "both fired {:?}",
        fired_by_old.intersection(&fired_by_new)
    );
    assert_eq!(
        leader_pid(&env).await,
        Some(second.pid()),
        "the new leader kept the lease"
    );
}

#[tokio::test]
async fn sigterm_hands_the_lease_over_in_about_a_second() {
    let env = Env::start().await;
    let url = env.url();
    let mut first = FlotillaProcess::scheduler(&url, &[], None);
    wait_for_leader(&env, None).await;
    let second = FlotillaProcess::scheduler(&url, &[], None);
    let epoch_before: u64 = env.cmd(redis::cmd("GET").arg(env.keys.fence())).await;
    let signalled = Instant::now();
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success());
    let leader = wait_for_leader(&env, Some(first.pid())).await;
    let took = signalled.elapsed();
    assert_eq!(leader, second.pid());
    assert!(
        took < Duration::from_millis(1500),
        "hand-over took {took:?}; the lease is {LEASE:?}"
    );
    let epoch_after: u64 = env.cmd(redis::cmd("GET").arg(env.keys.fence())).await;
    assert_eq!(
        epoch_after,
        epoch_before + 1,
        "each acquisition bumps the fencing epoch"
    );
}

#[tokio::test]
async fn runtime_schedule_changes_survive_a_scheduler_restart() {
    let env = Env::start().await;
    let url = env.url();
    let config = r#"
[schedules.from_file]
every = "1s"
type = "noop"
queue = "low"
"#;
    let scheduler = FlotillaProcess::scheduler(&url, &[], Some(config));
    wait_for_leader(&env, None).await;
    let schedules = store(&env);
    let mut added = every_second("added_at_runtime");
    added.catch_up = CatchUp::Skip;
    schedules.put(&added).await.expect("saved");
    schedules
        .set_paused("from_file", true)
        .await
        .expect("paused");
    drop(scheduler);
    let restarted = FlotillaProcess::scheduler(&url, &[], Some(config));
    wait_for_leader(&env, None).await;
    // The killed replica's lease may still name a leader: what the listing below must
    // follow is the restarted one's sync of its settings file, which it logs.
    eventually(LONG, "the restarted scheduler's sync", || async {
        restarted
            .log()
            .contains("schedules from the settings file synced")
            .then_some(())
    })
    .await;
    let after = schedules.list().await.expect("list");
    let names: Vec<&str> = after.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["added_at_runtime", "from_file"]);
    assert_eq!(after[0].catch_up, CatchUp::Skip);
    assert!(
        after[1].paused,
        "a pause survives the restart and the file sync"
    );
    // The runtime schedule fires under the new leader; the paused one does not.
    eventually(LONG, "the runtime schedule to fire", || async {
        (!entries_per_job(&env, "added_at_runtime").await.is_empty()).then_some(())
    })
    .await;
    let low: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("low")))
        .await;
    assert_eq!(low, 0, "paused schedule fired");
}

#[tokio::test]
async fn the_leader_promotes_delayed_jobs_when_no_worker_runs() {
    let env = Env::start().await;
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &[], None);
    let job = flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
        .expect("encodes")
        .delay(Duration::from_millis(300));
    let id = env.enqueue_job(job).await;
    env.wait_status("default", &id, flotilla_proto::Status::Pending, LONG)
        .await;
}

#[tokio::test]
async fn resuming_or_retiming_a_schedule_starts_it_from_now() {
    let env = Env::start().await;
    let _scheduler = FlotillaProcess::scheduler(&env.url(), &[], None);
    wait_for_leader(&env, None).await;
    let schedules = store(&env);
    schedules.put(&every_second("paced")).await.expect("saved");
    eventually(LONG, "a first fire", || async {
        (!entries_per_job(&env, "paced").await.is_empty()).then_some(())
    })
    .await;
    let server_ms = || async {
        let (secs, micros): (i64, i64) = env.cmd(&mut redis::cmd("TIME")).await;
        secs * 1000 + micros / 1000
    };
    schedules.set_paused("paced", true).await.expect("paused");
    let paused_at = server_ms().await;
    // The time is the point: the pause spans ticks past its first second, which catch-up
    // `all` would fire on resuming if resuming did not start afresh.
    tokio::time::sleep(TICK * 5 / 2).await;
    let resumed_at = server_ms().await;
    schedules.set_paused("paced", false).await.expect("resumed");
    // Catch-up `all` would fire the ticks of the pause, in order, before any later one if
    // resuming did not start afresh: once a tick after the resume is fired, they would be.
    let fired: Vec<i64> = eventually(LONG, "a fire after resuming", || async {
        let fired: Vec<i64> = entries_per_job(&env, "paced").await.into_keys().collect();
        fired.iter().any(|t| *t > resumed_at).then_some(fired)
    })
    .await;
    let during_pause: Vec<_> = fired
        .iter()
        .filter(|t| **t > paused_at + 1000 && **t <= resumed_at)
        .collect();
    assert!(
        during_pause.is_empty(),
        "ticks of the pause were fired: {during_pause:?}"
    );

    // A new timing starts from when it was saved, not from the old timing's last tick.
    let mut retimed = every_second("paced");
    retimed.every = Some("2s".into());
    retimed.cron = None;
    let saved_at = server_ms().await;
    schedules.put(&retimed).await.expect("saved");
    let state = eventually(LONG, "a tick of the new timing to be handled", || async {
        let state = schedules.state("paced").await.ok()?;
        let handled = state.last_tick.zip(state.since);
        handled
            .is_some_and(|(tick, since)| tick > since)
            .then_some(state)
    })
    .await;
    assert!(state.since.is_some_and(|s| s >= saved_at), "{state:?}");
    let config = flotilla_scheduler::ReconcileConfig::default();
    let report = flotilla_scheduler::Reconciler::new(env.conn.clone(), env.keys.clone(), config)
        .run(false, true)
        .await
        .expect("report");
    let missed: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == flotilla_scheduler::FindingKind::TickMissed)
        .collect();
    assert!(
        missed.is_empty(),
        "pause and retiming are not misses: {missed:?}"
    );
}
