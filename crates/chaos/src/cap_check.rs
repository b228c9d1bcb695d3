//! The concurrency cap's proof: from the ledger's begin and end lines, how many of a
//! capped queue's jobs (or of one group's, under a window per group) ran at once, at
//! every moment of the drill, counted outside Redis.
//!
//! A run lasts from its handler's `B` line to the first `F` or `S` line of the same
//! attempt and process after it, or to the SIGKILL of its process. A frozen process runs
//! nothing: a run it began before a freeze does not count from the freeze until
//! [`WAKE_GRACE_MS`] after the thaw, by when its heartbeat has stopped every attempt whose
//! slot went to another worker while it slept (a thawed worker learns that at its first
//! beat, which it takes at once); a run it begins after the thaw counts in full.
//!
//! A Redis that loses its last second of writes in a crash (an append-only file fsynced
//! every second) may lose holds it granted, and then grant those slots again: moments over
//! the cap after a Redis crash are counted apart, not judged, as jobs enqueued around it
//! are.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::ledger::{Execution, Mark};
use super::monkey::{Action, Event};

/// How long after a thaw a frozen worker's runs still do not count: its first heartbeat
/// (due at once) and the stopping of the attempts it lost.
pub const WAKE_GRACE_MS: i64 = 1500;

/// The most moments over the cap a verdict lists.
const SHOWN: usize = 10;

/// What the ledger says of the cap.
#[derive(Debug, Clone, Serialize)]
pub struct CapCheck {
    /// The cap every queue (or every group) had.
    pub cap: u32,
    /// What the cap held for: `queue`, or `group` (`<queue>/<group>`).
    pub per: &'static str,
    /// Per queue (or group), the most of its jobs that ran at once.
    pub most_at_once: BTreeMap<String, usize>,
    /// How many times a queue (or group) went over its cap (a start that made it so),
    /// before any Redis crash.
    pub moments_over_cap: usize,
    /// … and after a Redis crash, which may have lost the holds of its last second.
    pub moments_over_cap_after_crash: usize,
    /// The first of them, as `<queue or group> at <ms>: <n> running`.
    pub over_cap: Vec<String>,
    /// Runs counted.
    pub runs: usize,
    /// Runs with no end line whose process was not killed: counted to the ledger's end.
    pub unended: usize,
    /// How long after a thaw a frozen worker's runs still did not count, ms.
    pub wake_grace_ms: i64,
}

impl CapCheck {
    pub fn held(&self) -> bool {
        self.moments_over_cap == 0
    }
}

/// Counts, from the ledger and the monkey's log, how many jobs of each queue ran at once.
pub fn check(cap: u32, executions: &[Execution], events: &[Event]) -> CapCheck {
    check_by(cap, executions, events, "queue", |job| {
        job.split('/').next().map(str::to_owned)
    })
}

/// Counts, from the ledger and the monkey's log, how many jobs of each bucket ran at
/// once: `bucket_of` names a job's (`<queue>/<id>`) bucket, `None` for one in none.
pub fn check_by(
    cap: u32,
    executions: &[Execution],
    events: &[Event],
    per: &'static str,
    bucket_of: impl Fn(&str) -> Option<String>,
) -> CapCheck {
    let kills = kill_times(events);
    let asleep = frozen_windows(events);
    let crashed_at = events
        .iter()
        .find(|e| e.action == Action::CrashRedis)
        .map(|e| e.at_ms);
    let ledger_end = executions.last().map_or(0, |e| e.at_ms);
    // Each attempt's end lines, oldest first (the ledger is sorted by time).
    let mut ends: HashMap<(&str, u32, u32), Vec<i64>> = HashMap::new();
    for e in executions.iter().filter(|e| e.mark != Mark::Began) {
        ends.entry((e.job.as_str(), e.attempt, e.pid))
            .or_default()
            .push(e.at_ms);
    }
    // Per bucket: (time, +1 for a start, -1 for an end), ends first at the same time.
    let mut steps: BTreeMap<String, Vec<(i64, i32)>> = BTreeMap::new();
    let mut runs = 0;
    let mut unended = 0;
    for began in executions.iter().filter(|e| e.mark == Mark::Began) {
        let Some(bucket) = bucket_of(&began.job) else {
            continue;
        };
        let key = (began.job.as_str(), began.attempt, began.pid);
        let end = match ends.get(&key).and_then(|e| first_after(e, began.at_ms)) {
            Some(end) => end,
            None => match kills
                .get(&began.pid)
                .and_then(|k| first_after(k, began.at_ms))
            {
                Some(killed) => killed,
                None => {
                    unended += 1;
                    ledger_end
                }
            },
        };
        runs += 1;
        // Only a run under way when its process froze slept through the freeze.
        let windows: Vec<(i64, i64)> = asleep
            .get(&began.pid)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&(froze, _)| began.at_ms <= froze)
            .collect();
        for (from, to) in awake_parts(began.at_ms, end, &windows) {
            let queue_steps = steps.entry(bucket.clone()).or_default();
            queue_steps.push((from, 1));
            queue_steps.push((to, -1));
        }
    }
    let mut most_at_once = BTreeMap::new();
    let mut over_cap = Vec::new();
    let mut moments_over_cap = 0;
    let mut moments_over_cap_after_crash = 0;
    for (queue, mut queue_steps) in steps {
        queue_steps.sort();
        let (mut running, mut most) = (0i64, 0i64);
        for (at, step) in queue_steps {
            running += i64::from(step);
            most = most.max(running);
            if step > 0 && running > i64::from(cap) {
                if crashed_at.is_some_and(|crash| at >= crash) {
                    moments_over_cap_after_crash += 1;
                    continue;
                }
                moments_over_cap += 1;
                if over_cap.len() < SHOWN {
                    over_cap.push(format!("{queue} at {at}: {running} running"));
                }
            }
        }
        most_at_once.insert(queue, usize::try_from(most).unwrap_or(0));
    }
    CapCheck {
        cap,
        per,
        most_at_once,
        moments_over_cap,
        moments_over_cap_after_crash,
        over_cap,
        runs,
        unended,
        wake_grace_ms: WAKE_GRACE_MS,
    }
}

/// Each process's SIGKILLs, oldest first.
fn kill_times(events: &[Event]) -> HashMap<u32, Vec<i64>> {
    let mut kills: HashMap<u32, Vec<i64>> = HashMap::new();
    for e in events.iter().filter(|e| e.action == Action::KillWorker) {
        kills.entry(e.pid).or_default().push(e.at_ms);
    }
    kills
}

/// Each process's frozen windows, from its freeze to [`WAKE_GRACE_MS`] after its thaw (to
/// the end of time when no thaw was logged).
fn frozen_windows(events: &[Event]) -> HashMap<u32, Vec<(i64, i64)>> {
    let mut windows: HashMap<u32, Vec<(i64, i64)>> = HashMap::new();
    for freeze in events.iter().filter(|e| e.action == Action::FreezeWorker) {
        let thaw = events
            .iter()
            .filter(|e| e.action == Action::ThawWorker && e.pid == freeze.pid)
            .map(|e| e.at_ms)
            .find(|&at| at >= freeze.at_ms)
            .map_or(i64::MAX, |at| at.saturating_add(WAKE_GRACE_MS));
        windows
            .entry(freeze.pid)
            .or_default()
            .push((freeze.at_ms, thaw));
    }
    windows
}

fn first_after(times: &[i64], at: i64) -> Option<i64> {
    times.iter().copied().find(|&t| t >= at)
}

/// The parts of the run `[from, to)` outside every one of `asleep`'s windows.
fn awake_parts(from: i64, to: i64, asleep: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut parts = vec![(from, to)];
    for &(sleep_from, sleep_to) in asleep {
        parts = parts
            .into_iter()
            .flat_map(|(a, b)| {
                let before = (a, b.min(sleep_from));
                let after = (a.max(sleep_to), b);
                [before, after]
            })
            .filter(|(a, b)| a < b)
            .collect();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(mark: Mark, job: &str, pid: u32, at_ms: i64) -> Execution {
        Execution {
            mark,
            job: job.to_owned(),
            attempt: 1,
            pid,
            at_ms,
        }
    }

    fn event(action: Action, pid: u32, at_ms: i64) -> Event {
        Event { action, pid, at_ms }
    }

    #[test]
    fn overlapping_runs_over_the_cap_are_found() {
        let ledger = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Began, "default/b", 2, 10),
            line(Mark::Finished, "default/a", 1, 20),
            line(Mark::Finished, "default/b", 2, 30),
            line(Mark::Began, "low/c", 2, 15),
            line(Mark::Finished, "low/c", 2, 16),
        ];
        let check = check(1, &ledger, &[]);
        assert_eq!(check.most_at_once.get("default"), Some(&2));
        assert_eq!(check.most_at_once.get("low"), Some(&1));
        assert_eq!(check.over_cap, vec!["default at 10: 2 running"]);
        // A run that ends as another begins does not overlap it.
        let back_to_back = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Finished, "default/a", 1, 10),
            line(Mark::Began, "default/b", 2, 10),
            line(Mark::Finished, "default/b", 2, 20),
        ];
        assert!(check_held(&back_to_back, &[]));
    }

    fn check_held(ledger: &[Execution], events: &[Event]) -> bool {
        check(1, ledger, events).held()
    }

    #[test]
    fn a_killed_run_ends_at_its_kill_and_a_frozen_one_runs_nothing_while_asleep() {
        let killed = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Began, "default/b", 2, 50),
            line(Mark::Finished, "default/b", 2, 60),
        ];
        assert!(check_held(&killed, &[event(Action::KillWorker, 1, 40)]));
        assert!(!check_held(&killed, &[]), "unended, it runs on");
        let frozen = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Began, "default/b", 2, 2000),
            line(Mark::Finished, "default/b", 2, 2500),
            line(Mark::Stopped, "default/a", 1, 3100),
        ];
        let asleep = [
            event(Action::FreezeWorker, 1, 100),
            event(Action::ThawWorker, 1, 3000),
        ];
        assert!(check_held(&frozen, &asleep));
        // Running on well past its wake-up grace is over the cap.
        let woke_and_ran = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Began, "default/b", 2, 2000),
            line(Mark::Finished, "default/b", 2, 6000),
            line(Mark::Finished, "default/a", 1, 6000),
        ];
        assert!(!check_held(&woke_and_ran, &asleep));
        // A run begun after the thaw counts at once, grace or not.
        let began_after_thaw = vec![
            line(Mark::Began, "default/b", 2, 2000),
            line(Mark::Began, "default/c", 1, 3100),
            line(Mark::Finished, "default/c", 1, 3200),
            line(Mark::Finished, "default/b", 2, 3300),
        ];
        assert!(!check_held(&began_after_thaw, &asleep));
    }

    #[test]
    fn each_run_of_an_attempt_ends_at_its_own_end_line() {
        // The same attempt run twice by one process (delivered again after a Redis
        // restart): the second run lasts to the second end line.
        let rerun = vec![
            line(Mark::Began, "default/a", 1, 0),
            line(Mark::Finished, "default/a", 1, 10),
            line(Mark::Began, "default/a", 1, 100),
            line(Mark::Began, "default/b", 2, 150),
            line(Mark::Finished, "default/b", 2, 160),
            line(Mark::Finished, "default/a", 1, 200),
        ];
        assert!(!check_held(&rerun, &[]));
    }

    #[test]
    fn moments_over_the_cap_after_a_redis_crash_are_counted_apart() {
        let ledger = vec![
            line(Mark::Began, "default/a", 1, 100),
            line(Mark::Began, "default/b", 2, 110),
            line(Mark::Finished, "default/a", 1, 120),
            line(Mark::Finished, "default/b", 2, 130),
        ];
        let check = check(1, &ledger, &[event(Action::CrashRedis, 0, 50)]);
        assert!(check.held());
        assert_eq!(check.moments_over_cap_after_crash, 1);
    }
}
