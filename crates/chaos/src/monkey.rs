//! The monkey: for a bounded time, at a steady pace, it SIGKILLs a worker or the leading
//! scheduler, freezes a worker past its lease, or rolls one with SIGTERM, and replaces
//! what it stopped, as a ReplicaSet would. Optionally it crashes Redis once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_proto::Keys;
use flotilla_proto::SharedConnection;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use flotilla_harness::{RedisServer, STARTUP, Signal, send_signal};

use super::fleet::{Failure, Fleet, Role};
use super::ledger::now_ms;

/// What the monkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL a worker; a new one starts half a second later.
    KillWorker,
    /// SIGKILL the leading scheduler; a new replica starts half a second later.
    KillLeader,
    /// SIGSTOP a worker for longer than its lease, then SIGCONT it …
    FreezeWorker,
    /// … the SIGCONT, logged so that the cap's proof knows when it ran again.
    ThawWorker,
    /// SIGTERM a worker after starting its replacement: a rolling restart.
    RestartWorker,
    /// SIGKILL redis-server …
    CrashRedis,
    /// … and start it again from its append-only file a second later.
    RestartRedis,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::KillWorker => "kill worker",
            Action::KillLeader => "kill leader",
            Action::FreezeWorker => "freeze worker",
            Action::ThawWorker => "thaw worker",
            Action::RestartWorker => "rolling restart",
            Action::CrashRedis => "crash redis",
            Action::RestartRedis => "restart redis",
        }
    }

    /// Whether the process it hit stopped running its jobs (and they run again).
    pub fn interrupts_jobs(self) -> bool {
        !matches!(
            self,
            Action::KillLeader | Action::RestartRedis | Action::ThawWorker
        )
    }
}

/// One thing the monkey did, and to whom (0 for Redis).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub action: Action,
    pub pid: u32,
    pub at_ms: i64,
}

/// How the monkey behaves.
#[derive(Debug, Clone)]
pub struct Plan {
    pub duration: Duration,
    pub every: Duration,
    /// How long a frozen worker stays frozen: longer than its lease, so its jobs are
    /// taken over and its late results must be refused.
    pub freeze_for: Duration,
    pub crash_redis: bool,
    pub seed: u64,
}

/// Pause between stopping a process and starting its replacement.
const RESTART_AFTER: Duration = Duration::from_millis(500);

/// What the monkey did, and what failed without its help.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<Event>,
    /// Processes that exited without the monkey stopping them.
    pub failures: Vec<Failure>,
}

/// Acts until `plan.duration` has passed, then thaws everything it froze; what it killed
/// it has replaced already.
pub async fn run(
    fleet: &mut Fleet,
    redis: &mut RedisServer,
    conn: &mut SharedConnection,
    keys: &Keys,
    plan: &Plan,
) -> anyhow::Result<Outcome> {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x6d6f_6e6b);
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut outcome = Outcome::default();
    // Frozen worker → when to thaw it.
    let mut frozen: HashMap<u32, Instant> = HashMap::new();
    let mut crashed_redis = !plan.crash_redis;
    let mut round = 0usize;
    loop {
        let next = started + plan.every.mul_f64((round + 1) as f64);
        sleep_thawing(&mut frozen, next.min(deadline), &mut outcome.events).await;
        if Instant::now() >= deadline {
            break;
        }
        outcome.failures.extend(replace_failed(fleet)?);
        if !crashed_redis && started.elapsed() >= plan.duration / 2 {
            crashed_redis = true;
            outcome.events.push(event(Action::CrashRedis, 0));
            redis.kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
            redis.relaunch().context("redis-server did not restart")?;
            redis
                .ready(STARTUP)
                .await
                .context("redis-server did not restart")?;
            outcome.events.push(event(Action::RestartRedis, 0));
            round += 1;
            continue;
        }
        // Every kind of action happens early in a run, however short, then at random.
        let action = match round {
            0 => Action::FreezeWorker,
            1 => Action::RestartWorker,
            2 => Action::KillLeader,
            _ => *[
                (Action::KillWorker, 45),
                (Action::KillLeader, 20),
                (Action::FreezeWorker, 15),
                (Action::RestartWorker, 20),
            ]
            .choose_weighted(&mut rng, |(_, weight)| *weight)
            .map(|(action, _)| action)
            .context("the monkey has no actions")?,
        };
        round += 1;
        if let Some(done) = act(action, fleet, conn, keys, &frozen, &mut rng).await? {
            if action == Action::FreezeWorker {
                frozen.insert(done.pid, Instant::now() + plan.freeze_for);
            }
            outcome.events.push(done);
        }
    }
    // The run is over: thaw whoever is still frozen.
    for (pid, _) in frozen.drain() {
        send_signal(pid, Signal::Cont);
        outcome.events.push(event(Action::ThawWorker, pid));
    }
    Ok(outcome)
}

async fn act(
    action: Action,
    fleet: &mut Fleet,
    conn: &mut SharedConnection,
    keys: &Keys,
    frozen: &HashMap<u32, Instant>,
    rng: &mut StdRng,
) -> anyhow::Result<Option<Event>> {
    let workers: Vec<u32> = fleet
        .live(Role::Worker)
        .into_iter()
        .filter(|pid| !frozen.contains_key(pid))
        .collect();
    match action {
        Action::KillWorker => {
            let Some(&pid) = workers.choose(rng) else {
                return Ok(None);
            };
            fleet.signal(pid, Signal::Kill);
            let done = event(action, pid);
            tokio::time::sleep(RESTART_AFTER).await;
            fleet.spawn(Role::Worker)?;
            Ok(Some(done))
        }
        Action::KillLeader => {
            let Some(pid) = leader_pid(conn, keys).await else {
                return Ok(None);
            };
            if fleet.role_of(pid) != Some(Role::Scheduler) {
                return Ok(None);
            }
            fleet.signal(pid, Signal::Kill);
            let done = event(action, pid);
            tokio::time::sleep(RESTART_AFTER).await;
            fleet.spawn(Role::Scheduler)?;
            Ok(Some(done))
        }
        Action::FreezeWorker => {
            // Keep one worker running, or nothing would take the frozen one's jobs over.
            if workers.len() < 2 {
                return Ok(None);
            }
            let Some(&pid) = workers.choose(rng) else {
                return Ok(None);
            };
            fleet.signal(pid, Signal::Stop);
            Ok(Some(event(action, pid)))
        }
        Action::RestartWorker => {
            let Some(&pid) = workers.choose(rng) else {
                return Ok(None);
            };
            // Surge first, as a Deployment with maxUnavailable 0 does.
            fleet.spawn(Role::Worker)?;
            fleet.signal(pid, Signal::Term);
            Ok(Some(event(action, pid)))
        }
        Action::CrashRedis | Action::RestartRedis | Action::ThawWorker => Ok(None),
    }
}

/// Sleeps until `until`, thawing frozen workers whose time has come on the way (each
/// thaw logged in `events`).
async fn sleep_thawing(
    frozen: &mut HashMap<u32, Instant>,
    until: Instant,
    events: &mut Vec<Event>,
) {
    loop {
        let now = Instant::now();
        frozen.retain(|pid, thaw_at| {
            let due = *thaw_at <= now;
            if due {
                send_signal(*pid, Signal::Cont);
                events.push(event(Action::ThawWorker, *pid));
            }
            !due
        });
        if now >= until {
            return;
        }
        let wake = frozen
            .values()
            .copied()
            .min()
            .map_or(until, |t| t.min(until));
        tokio::time::sleep_until(wake.into()).await;
    }
}

/// Replaces members that exited without the monkey stopping them, as a ReplicaSet
/// would, and returns them as failures.
pub fn replace_failed(fleet: &mut Fleet) -> anyhow::Result<Vec<Failure>> {
    let failures = fleet.reap();
    for failure in &failures {
        tracing::warn!(
            pid = failure.pid,
            "a {} {}",
            failure.role.as_str(),
            failure.how
        );
        fleet.spawn(failure.role)?;
    }
    Ok(failures)
}

/// The pid of the leading scheduler: its holder id is `<host>-<pid>-<suffix>`.
async fn leader_pid(conn: &mut SharedConnection, keys: &Keys) -> Option<u32> {
    let status = flotilla_scheduler::leader_status(conn, keys).await.ok()?;
    flotilla_proto::instance_pid(&status.holder?)
}

fn event(action: Action, pid: u32) -> Event {
    Event {
        action,
        pid,
        at_ms: now_ms(),
    }
}
