//! The verdict: what the ledger, the monkey's log and Redis say together. Nothing lost,
//! no completion from an attempt that had been taken over, extra runs only where the
//! monkey interrupted one, every tick fired once, and nothing left behind.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::cap_check::CapCheck;
use super::fleet::Failure;
use super::ledger::{Execution, Mark, job_key};
use super::monkey::{Action, Event};
use super::produce::Enqueued;

/// A completion as the `done` stream records it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub attempts: u32,
    pub pid: Option<u32>,
    pub at_ms: i64,
}

/// What is left once the fleet has settled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Leftovers {
    /// Entries still on the streams: waiting or running.
    pub on_streams: u64,
    /// Of those, read by a worker and not finished.
    pub running: u64,
    /// Jobs still waiting for a time (delayed or retrying).
    pub scheduled: u64,
    /// Consumers in a group whose worker is gone.
    pub stale_consumers: Vec<String>,
    /// Open findings of a full reconciliation pass.
    pub reconcile_open: Vec<String>,
    /// Slots of the queues' concurrency caps that live workers hold with nothing left to
    /// run: a leak, had it lasted.
    pub slots_held: u64,
}

impl Leftovers {
    fn clean(&self) -> bool {
        self.on_streams == 0
            && self.running == 0
            && self.scheduled == 0
            && self.stale_consumers.is_empty()
            && self.reconcile_open.is_empty()
            && self.slots_held == 0
    }
}

/// Everything the verdict is drawn from.
#[derive(Debug)]
pub struct Evidence {
    pub enqueued: Vec<Enqueued>,
    pub enqueue_retries: usize,
    pub abandoned: usize,
    /// The ledger, when the drill's own workers kept one; `None` against a fleet of
    /// someone else's, where only the `done` streams' attempt counts tell.
    pub executions: Option<Vec<Execution>>,
    pub events: Vec<Event>,
    /// Processes that exited without being told to, or did not drain when told.
    pub failures: Vec<Failure>,
    /// `<queue>/<id>` → its completions.
    pub completions: HashMap<String, Vec<Completion>>,
    /// `<queue>/<id>` of a dead job → the reason it was dead-lettered.
    pub dead: HashMap<String, String>,
    /// `<queue>/<id>` of each tick due within the run.
    pub expected_ticks: Vec<String>,
    pub leftovers: Leftovers,
    /// The cap every queue had (`--cap`), whose keeping the ledger proves.
    pub cap: Option<u32>,
    /// The cap every group had (`--group-cap`), likewise.
    pub group_cap: Option<u32>,
    /// The flows and batches made (`--flows`, `--batches`), with how many batches' callbacks
    /// fired and how many jobs were left waiting once the fleet settled.
    pub workflows: Option<(super::workflows::Made, usize, u64)>,
}

/// The ids shown in a verdict when there are more.
const SHOWN: usize = 20;

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub jobs: JobCounts,
    pub executions: ExecutionCounts,
    pub ticks: TickCounts,
    pub recovery_ms: Option<Spread>,
    pub leftovers: Leftovers,
    pub monkey: BTreeMap<&'static str, usize>,
    /// Processes that exited without being told to, or did not drain when told.
    pub process_failures: Vec<String>,
    pub redis_fault: Option<RedisFault>,
    /// How many jobs of each capped queue ran at once, by the ledger.
    pub cap: Option<CapCheck>,
    /// How many jobs of each group ran at once, by the ledger.
    pub group_cap: Option<CapCheck>,
    /// Flows and batches: order, callbacks, nothing left waiting.
    pub workflows: Option<super::workflows::WorkflowCheck>,
}

#[derive(Debug, Serialize)]
pub struct JobCounts {
    pub enqueued: usize,
    pub enqueue_retries: usize,
    pub abandoned: usize,
    pub completed: usize,
    pub dead: usize,
    pub dead_reasons: BTreeMap<String, usize>,
    pub lost: usize,
    /// Of those, enqueued in the two seconds before a Redis crash, or while Redis was
    /// down: what an append-only file fsynced every second may lose. Counted, not judged.
    pub lost_in_crash: usize,
    pub lost_ids: Vec<String>,
    /// Jobs that ran and completed although no producer saw their enqueue succeed (an
    /// enqueue whose reply was lost, then tried again).
    pub unexpected: usize,
}

#[derive(Debug, Serialize)]
pub struct ExecutionCounts {
    pub total: usize,
    /// Jobs that began more than once.
    pub jobs_run_again: usize,
    /// … each earlier run interrupted by the monkey (its worker killed, frozen or
    /// rolled, or Redis crashed).
    pub explained: usize,
    pub unexplained: usize,
    pub unexplained_ids: Vec<String>,
    /// Jobs run again after an interruption, with what interrupted them.
    pub explained_ids: Vec<String>,
    /// No ledger was kept: runs are counted from attempt numbers, and what caused a
    /// second run is unknown.
    pub causes_unknown: bool,
    /// Completions accepted from an attempt that had been taken over, or more than one
    /// completion for a job.
    pub zombie_completions: usize,
    pub zombie_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TickCounts {
    pub expected: usize,
    pub fired_once: usize,
    pub missing: usize,
    pub missing_ids: Vec<String>,
    pub completed_twice: usize,
}

#[derive(Debug, Serialize)]
pub struct Spread {
    pub samples: usize,
    pub p50: i64,
    pub p99: i64,
    pub max: i64,
}

#[derive(Debug, Serialize)]
pub struct RedisFault {
    pub crashed_at_ms: i64,
    /// From the crash until Redis answered again, its file loaded.
    pub down_ms: Option<i64>,
    /// From Redis's return to the fleet's first completion: it reconnected by itself.
    pub first_completion_after_restart_ms: Option<i64>,
    /// Jobs run again because of the crash alone.
    pub ran_again: usize,
}

pub fn judge(evidence: &Evidence) -> Verdict {
    let began = evidence
        .executions
        .as_deref()
        .map(|ledger| executions_by_job(ledger, Mark::Began))
        .unwrap_or_default();
    let jobs = count_jobs(evidence);
    let executions = match evidence.executions {
        Some(_) => count_executions(evidence, &began),
        None => count_attempts(evidence),
    };
    let ticks = count_ticks(evidence);
    let recovery_ms = recovery(evidence, &began);
    let redis_fault = redis_fault(evidence, &began);
    let mut monkey = BTreeMap::new();
    for event in &evidence.events {
        *monkey.entry(event.action.as_str()).or_default() += 1;
    }
    let losses = jobs.lost - jobs.lost_in_crash + jobs.abandoned;
    // An enqueue tried again across the crash may have landed twice.
    let unexpected = if redis_fault.is_some() {
        0
    } else {
        jobs.unexpected
    };
    let process_failures: Vec<String> = evidence
        .failures
        .iter()
        .map(|f| format!("{} {} {}", f.role.as_str(), f.pid, f.how))
        .collect();
    let cap = evidence
        .cap
        .zip(evidence.executions.as_deref())
        .map(|(cap, ledger)| super::cap_check::check(cap, ledger, &evidence.events));
    let group_of: HashMap<String, String> = evidence
        .enqueued
        .iter()
        .filter_map(|job| {
            let group = job.group.as_ref()?;
            Some((
                job_key(job.queue, &job.id),
                format!("{}/{group}", job.queue),
            ))
        })
        .collect();
    let group_cap = evidence
        .group_cap
        .zip(evidence.executions.as_deref())
        .map(|(cap, ledger)| {
            super::cap_check::check_by(cap, ledger, &evidence.events, "group", |job| {
                group_of.get(job).cloned()
            })
        });
    let workflows = evidence
        .workflows
        .as_ref()
        .zip(evidence.executions.as_deref())
        .map(|((made, fired, waiting), ledger)| {
            super::workflows::check(made, ledger, &evidence.dead, *fired, *waiting)
        });
    let passed = losses == 0
        && workflows
            .as_ref()
            .is_none_or(super::workflows::WorkflowCheck::held)
        && cap.as_ref().is_none_or(CapCheck::held)
        && group_cap.as_ref().is_none_or(CapCheck::held)
        && unexpected == 0
        && executions.unexplained == 0
        && executions.zombie_completions == 0
        && ticks.missing == 0
        && ticks.completed_twice == 0
        && evidence.leftovers.clean()
        && process_failures.is_empty();
    Verdict {
        passed,
        jobs,
        executions,
        ticks,
        recovery_ms,
        leftovers: evidence.leftovers.clone(),
        monkey,
        process_failures,
        redis_fault,
        cap,
        group_cap,
        workflows,
    }
}

/// Each job's ledger lines with `mark`, oldest first.
fn executions_by_job(executions: &[Execution], mark: Mark) -> HashMap<&str, Vec<&Execution>> {
    let mut by_job: HashMap<&str, Vec<&Execution>> = HashMap::new();
    for execution in executions.iter().filter(|e| e.mark == mark) {
        by_job.entry(&execution.job).or_default().push(execution);
    }
    by_job
}

fn count_jobs(evidence: &Evidence) -> JobCounts {
    let mut completed = 0;
    let mut dead = 0;
    let mut dead_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost_ids = Vec::new();
    let mut lost_in_crash = 0;
    let crash_window = crash_window(&evidence.events);
    for job in &evidence.enqueued {
        let key = job_key(job.queue, &job.id);
        if evidence.completions.contains_key(&key) {
            completed += 1;
        } else if let Some(reason) = evidence.dead.get(&key) {
            dead += 1;
            *dead_reasons.entry(reason.clone()).or_default() += 1;
        } else {
            if crash_window.is_some_and(|(from, to)| (from..=to).contains(&job.at_ms)) {
                lost_in_crash += 1;
            }
            lost_ids.push(key);
        }
    }
    let lost = lost_ids.len();
    lost_ids.truncate(SHOWN);
    let known: std::collections::HashSet<String> = evidence
        .enqueued
        .iter()
        .map(|job| job_key(job.queue, &job.id))
        .chain(evidence.expected_ticks.iter().cloned())
        .collect();
    let tick_prefix = format!("{}@", super::TICK_SCHEDULE);
    // Against someone else's fleet the `done` streams hold their jobs too.
    let unexpected = if evidence.executions.is_none() {
        0
    } else {
        evidence
            .completions
            .keys()
            .filter(|key| !known.contains(*key))
            // Ticks after the run's end fire while the fleet settles.
            .filter(|key| !key.contains(&tick_prefix))
            .count()
    };
    JobCounts {
        enqueued: evidence.enqueued.len(),
        enqueue_retries: evidence.enqueue_retries,
        abandoned: evidence.abandoned,
        completed,
        dead,
        dead_reasons,
        lost,
        lost_in_crash,
        lost_ids,
        unexpected,
    }
}

/// From two seconds before Redis was crashed to when it was back, if it was.
fn crash_window(events: &[Event]) -> Option<(i64, i64)> {
    let crash = events.iter().find(|e| e.action == Action::CrashRedis)?;
    let back = events
        .iter()
        .find(|e| e.action == Action::RestartRedis)
        .map_or(i64::MAX, |e| e.at_ms);
    Some((crash.at_ms - 2000, back))
}

/// How long a process may go on after the monkey's signal to it returned: a signal takes
/// effect a moment later, in which a worker can still begin a job and write its time.
const SIGNAL_LAG_MS: i64 = 50;

/// What cut short the run `execution` began, before the job's next run began at
/// `next_ms`: an action of the monkey's that hit its process, or a crash of Redis.
fn interruption<'a>(execution: &Execution, next_ms: i64, events: &'a [Event]) -> Option<&'a Event> {
    events.iter().find(|event| {
        event.action.interrupts_jobs()
            && (execution.at_ms - SIGNAL_LAG_MS..=next_ms).contains(&event.at_ms)
            && (event.pid == execution.pid || event.action == Action::CrashRedis)
    })
}

/// A run that began after a later attempt of its job had begun elsewhere: its worker had
/// begun the attempt, was frozen before the handler's first line, and ran it once thawed
/// (its outcome is refused: the entry is another's). Explained by that thaw, when one of
/// its worker's came between the later attempt's start and this run's.
fn stale_after_thaw<'a>(
    earlier: &Execution,
    stale: &Execution,
    events: &'a [Event],
) -> Option<&'a Event> {
    if stale.attempt >= earlier.attempt {
        return None;
    }
    events.iter().find(|event| {
        event.action == Action::ThawWorker
            && event.pid == stale.pid
            && (earlier.at_ms - SIGNAL_LAG_MS..=stale.at_ms + SIGNAL_LAG_MS).contains(&event.at_ms)
    })
}

fn count_executions(
    evidence: &Evidence,
    began: &HashMap<&str, Vec<&Execution>>,
) -> ExecutionCounts {
    let mut jobs_run_again = 0;
    let mut unexplained_ids = Vec::new();
    let mut explained_ids = Vec::new();
    for (job, runs) in began {
        if runs.len() < 2 {
            continue;
        }
        jobs_run_again += 1;
        let causes: Option<Vec<&str>> = runs
            .windows(2)
            .map(|pair| {
                interruption(pair[0], pair[1].at_ms, &evidence.events)
                    .map(|e| e.action.as_str())
                    .or_else(|| {
                        stale_after_thaw(pair[0], pair[1], &evidence.events)
                            .map(|_| "freeze worker")
                    })
            })
            .collect();
        match causes {
            Some(causes) => explained_ids.push(format!("{job} ({})", causes.join(", "))),
            None => unexplained_ids.push((*job).to_owned()),
        }
    }
    explained_ids.sort();
    explained_ids.truncate(SHOWN);
    let mut zombie_ids = Vec::new();
    for (job, completions) in &evidence.completions {
        let zombie = match completions.as_slice() {
            [only] => {
                // The accepted completion must come from the job's last attempt, run by
                // a worker that began that attempt.
                let runs = began
                    .get(job.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let last = runs.iter().map(|r| r.attempt).max();
                let ran_it = runs
                    .iter()
                    .any(|r| r.attempt == only.attempts && Some(r.pid) == only.pid);
                last != Some(only.attempts) || !ran_it
            }
            _ => true,
        };
        if zombie {
            zombie_ids.push(job.clone());
        }
    }
    let unexplained = unexplained_ids.len();
    let zombie_completions = zombie_ids.len();
    unexplained_ids.sort();
    unexplained_ids.truncate(SHOWN);
    zombie_ids.sort();
    zombie_ids.truncate(SHOWN);
    ExecutionCounts {
        total: began.values().map(Vec::len).sum(),
        jobs_run_again,
        explained: jobs_run_again - unexplained,
        unexplained,
        unexplained_ids,
        explained_ids,
        causes_unknown: false,
        zombie_completions,
        zombie_ids,
    }
}

/// Runs as the `done` streams count them, for a fleet that keeps no ledger: a job's
/// accepted attempt number is how many times it began, and more than one completion is
/// a zombie.
fn count_attempts(evidence: &Evidence) -> ExecutionCounts {
    let mut total = 0;
    let mut run_again = Vec::new();
    let mut zombie_ids = Vec::new();
    for job in &evidence.enqueued {
        let key = job_key(job.queue, &job.id);
        match evidence.completions.get(&key).map(Vec::as_slice) {
            Some([only]) => {
                total += only.attempts as usize;
                if only.attempts > 1 {
                    run_again.push(format!("{key} ({} attempts)", only.attempts));
                }
            }
            Some(_) => zombie_ids.push(key),
            None => {}
        }
    }
    let jobs_run_again = run_again.len();
    let zombie_completions = zombie_ids.len();
    run_again.sort();
    run_again.truncate(SHOWN);
    zombie_ids.sort();
    zombie_ids.truncate(SHOWN);
    ExecutionCounts {
        total,
        jobs_run_again,
        explained: 0,
        unexplained: 0,
        unexplained_ids: Vec::new(),
        explained_ids: run_again,
        causes_unknown: true,
        zombie_completions,
        zombie_ids,
    }
}

fn count_ticks(evidence: &Evidence) -> TickCounts {
    let mut fired_once = 0;
    let mut completed_twice = 0;
    let mut missing_ids = Vec::new();
    for id in &evidence.expected_ticks {
        match evidence.completions.get(id).map(Vec::len) {
            Some(1) => fired_once += 1,
            Some(_) => completed_twice += 1,
            // Fired once, then failed for good: still fired once.
            None if evidence.dead.contains_key(id) => fired_once += 1,
            None => missing_ids.push(id.clone()),
        }
    }
    let missing = missing_ids.len();
    missing_ids.truncate(SHOWN);
    TickCounts {
        expected: evidence.expected_ticks.len(),
        fired_once,
        missing,
        missing_ids,
        completed_twice,
    }
}

/// From each interruption to the moment another worker began each job the interrupted
/// process was running.
fn recovery(evidence: &Evidence, began: &HashMap<&str, Vec<&Execution>>) -> Option<Spread> {
    let mut samples = Vec::new();
    for event in evidence
        .events
        .iter()
        .filter(|e| e.action.interrupts_jobs() && e.action != Action::CrashRedis)
    {
        for runs in began.values() {
            let was_running = runs
                .iter()
                .any(|r| r.pid == event.pid && r.at_ms <= event.at_ms);
            let again = runs
                .iter()
                .find(|r| r.at_ms > event.at_ms && r.pid != event.pid);
            if was_running && let Some(again) = again {
                // Only runs cut short by this event: the job's earlier run is its last
                // before the event.
                let last_before = runs.iter().rev().find(|r| r.at_ms <= event.at_ms);
                if last_before.is_some_and(|r| r.pid == event.pid) {
                    samples.push(again.at_ms - event.at_ms);
                }
            }
        }
    }
    spread(samples)
}

fn spread(mut samples: Vec<i64>) -> Option<Spread> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some(Spread {
        samples: samples.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: samples[samples.len() - 1],
    })
}

fn redis_fault(evidence: &Evidence, began: &HashMap<&str, Vec<&Execution>>) -> Option<RedisFault> {
    let crash = evidence
        .events
        .iter()
        .find(|e| e.action == Action::CrashRedis)?;
    let back = evidence
        .events
        .iter()
        .find(|e| e.action == Action::RestartRedis);
    let first_completion_after_restart_ms = back.and_then(|back| {
        evidence
            .completions
            .values()
            .flatten()
            .map(|c| c.at_ms)
            .filter(|at| *at >= back.at_ms)
            .min()
            .map(|at| at - back.at_ms)
    });
    // Run again because of the crash alone: no action hit their process in between.
    let ran_again = began
        .values()
        .filter(|runs| {
            runs.windows(2).any(|pair| {
                interruption(pair[0], pair[1].at_ms, &evidence.events)
                    .is_some_and(|e| e.action == Action::CrashRedis)
            })
        })
        .count();
    Some(RedisFault {
        crashed_at_ms: crash.at_ms,
        down_ms: back.map(|b| b.at_ms - crash.at_ms),
        first_completion_after_restart_ms,
        ran_again,
    })
}

impl Verdict {
    /// The verdict as a table for a terminal.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |name: &str, value: String| rows.push((name.to_owned(), value));
        let j = &self.jobs;
        row("jobs enqueued", j.enqueued.to_string());
        row("  completed", j.completed.to_string());
        row("  dead (with reason)", j.dead.to_string());
        for (reason, n) in &j.dead_reasons {
            row(&format!("    {reason}"), n.to_string());
        }
        row("  lost", j.lost.to_string());
        if self.redis_fault.is_some() {
            row(
                "    enqueued around the Redis crash",
                j.lost_in_crash.to_string(),
            );
        }
        row(
            "  unexpected (an enqueue retried)",
            j.unexpected.to_string(),
        );
        row(
            "  enqueue retries / given up",
            format!("{} / {}", j.enqueue_retries, j.abandoned),
        );
        let e = &self.executions;
        row("executions", e.total.to_string());
        row("  jobs run again", e.jobs_run_again.to_string());
        if e.causes_unknown {
            row("    why", "unknown: this fleet keeps no ledger".to_owned());
        } else {
            row("    after an interruption", e.explained.to_string());
            row("    unexplained", e.unexplained.to_string());
        }
        row("  zombie completions", e.zombie_completions.to_string());
        let t = &self.ticks;
        row("schedule ticks due", t.expected.to_string());
        row("  fired exactly once", t.fired_once.to_string());
        row("  missing", t.missing.to_string());
        row("  completed twice", t.completed_twice.to_string());
        if let Some(r) = &self.recovery_ms {
            row(
                "recovery after a kill (ms)",
                format!(
                    "p50 {}  p99 {}  max {}  ({} jobs)",
                    r.p50, r.p99, r.max, r.samples
                ),
            );
        }
        let l = &self.leftovers;
        row("left on the streams", l.on_streams.to_string());
        row("  running", l.running.to_string());
        row("  delayed or retrying", l.scheduled.to_string());
        row("stale consumers", l.stale_consumers.len().to_string());
        row(
            "open reconciliation findings",
            l.reconcile_open.len().to_string(),
        );
        row("cap slots held when idle", l.slots_held.to_string());
        for c in [&self.cap, &self.group_cap].into_iter().flatten() {
            // Per group, the groups are many: the most of any tells.
            let most = match c.per {
                "queue" => c
                    .most_at_once
                    .iter()
                    .map(|(queue, n)| format!("{queue} {n}"))
                    .collect::<Vec<String>>()
                    .join(", "),
                _ => format!(
                    "at most {} in any of {} groups",
                    c.most_at_once.values().max().copied().unwrap_or(0),
                    c.most_at_once.len()
                ),
            };
            row(
                &format!("{} cap {}: most running at once", c.per, c.cap),
                format!("{most}  ({} runs)", c.runs),
            );
            row("  moments over the cap", c.moments_over_cap.to_string());
            if self.redis_fault.is_some() {
                row(
                    "    after the Redis crash (not judged)",
                    c.moments_over_cap_after_crash.to_string(),
                );
            }
        }
        if let Some(w) = &self.workflows {
            row(
                "flows / batches",
                format!("{} of 10 jobs / {} with a callback", w.flows, w.batches),
            );
            row(
                "  jobs begun before a parent finished",
                w.early_starts.to_string(),
            );
            row(
                "  callbacks begun before their last job finished",
                w.callbacks_early.to_string(),
            );
            row(
                "  callbacks fired (once each)",
                format!("{} of {}", w.callbacks_fired, w.batches),
            );
            row("  left waiting", w.waiting_left.to_string());
        }
        for (action, n) in &self.monkey {
            row(&format!("monkey: {action}"), n.to_string());
        }
        row("process failures", self.process_failures.len().to_string());
        if let Some(f) = &self.redis_fault {
            let ms = |v: Option<i64>| v.map_or("never".to_owned(), |ms| ms.to_string());
            row("redis crash: down for (ms)", ms(f.down_ms));
            row(
                "redis crash: first completion after its return (ms)",
                ms(f.first_completion_after_restart_ms),
            );
            row("redis crash: jobs run again", f.ran_again.to_string());
        }
        row(
            "verdict",
            if self.passed { "PASSED" } else { "FAILED" }.to_owned(),
        );
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (name, value) in rows {
            text.push_str(&format!("{name:<width$}  {value}\n"));
        }
        for (label, ids) in [
            ("lost", &self.jobs.lost_ids),
            ("run again", &self.executions.explained_ids),
            ("run again unexplained", &self.executions.unexplained_ids),
            ("zombie completions", &self.executions.zombie_ids),
            ("missing ticks", &self.ticks.missing_ids),
            ("stale consumers", &self.leftovers.stale_consumers),
            ("open findings", &self.leftovers.reconcile_open),
            (
                "over the cap",
                &self
                    .cap
                    .as_ref()
                    .map(|c| c.over_cap.clone())
                    .unwrap_or_default(),
            ),
            (
                "over a group's cap",
                &self
                    .group_cap
                    .as_ref()
                    .map(|c| c.over_cap.clone())
                    .unwrap_or_default(),
            ),
            ("process failures", &self.process_failures),
            (
                "begun before a parent finished",
                &self
                    .workflows
                    .as_ref()
                    .map(|w| w.early_ids.clone())
                    .unwrap_or_default(),
            ),
        ] {
            if !ids.is_empty() {
                text.push_str(&format!("{label}: {}\n", ids.join(", ")));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn began(pid: u32, at_ms: i64) -> Execution {
        Execution {
            mark: Mark::Began,
            job: "default/1-0".to_owned(),
            attempt: 1,
            pid,
            at_ms,
        }
    }

    #[test]
    fn a_job_begun_as_the_signal_to_its_worker_lands_was_interrupted_by_it() {
        let freeze = Event {
            action: Action::FreezeWorker,
            pid: 7,
            at_ms: 1_000,
        };
        let events = [freeze];
        // Written 1 ms after the monkey's clock read: the signal had not landed yet.
        assert!(interruption(&began(7, 1_001), 5_000, &events).is_some());
        // Another worker's job, or one begun long after, is not explained by it.
        assert!(interruption(&began(8, 1_001), 5_000, &events).is_none());
        assert!(interruption(&began(7, 1_200), 5_000, &events).is_none());
    }

    #[test]
    fn an_earlier_attempt_run_after_a_thaw_is_explained_by_it() {
        let attempt = |n: u32, pid: u32, at_ms: i64| Execution {
            attempt: n,
            ..began(pid, at_ms)
        };
        let thaw = Event {
            action: Action::ThawWorker,
            pid: 7,
            at_ms: 3_000,
        };
        let events = [thaw];
        // Attempt 2 ran elsewhere at 2 000; the frozen worker ran attempt 1 once thawed.
        assert!(stale_after_thaw(&attempt(2, 8, 2_000), &attempt(1, 7, 3_010), &events).is_some());
        // Not without a thaw of its worker in between, nor for a later attempt.
        assert!(stale_after_thaw(&attempt(2, 8, 2_000), &attempt(1, 9, 3_010), &events).is_none());
        assert!(stale_after_thaw(&attempt(2, 8, 3_500), &attempt(1, 7, 4_000), &events).is_none());
        assert!(stale_after_thaw(&attempt(1, 8, 2_000), &attempt(2, 7, 3_010), &events).is_none());
    }
}
