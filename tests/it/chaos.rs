//! `flotilla chaos` as users run it: a short drill on its own fleet of real processes,
//! with workers killed, frozen and rolled, the leader killed and Redis crashed, ends in a
//! verdict of nothing lost, no zombie completion, every tick fired once, flows run in
//! order and every batch's callback fired once.

use std::process::Command;

use flotilla_tests::WorkerProcess;
use serde_json::Value;

/// The drill's output, for failure messages, and its JSON verdict.
fn verdict_of(output: &std::process::Output, report: &std::path::Path) -> (String, Value) {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    let verdict = std::fs::read_to_string(report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no JSON verdict: {printed}"));
    (printed, verdict)
}

#[test]
fn a_short_drill_loses_nothing_and_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let report = dir.path().join("verdict.json");
    let output = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args([
            "chaos",
            "--duration",
            "50s",
            "--workers",
            "4",
            "--jobs",
            "2000",
            "--kill-every",
            "2s",
            "--redis-fault",
            "--flows",
            "100",
            "--batches",
            "20",
            "--json",
        ])
        .arg(&report)
        .env_remove("FLOTILLA_CONFIG")
        .env_remove("FLOTILLA_REDIS_URL")
        .output()
        .expect("flotilla chaos runs");
    let (printed, verdict) = verdict_of(&output, &report);
    let at = |path: &str| verdict.pointer(path).cloned().unwrap_or(Value::Null);
    assert_eq!(at("/passed"), Value::Bool(true), "{printed}");
    // 2000 jobs, 100 flows of 10, 20 batches of 50 and their callbacks.
    let enqueued = 2000 + 100 * 10 + 20 * 51;
    assert_eq!(at("/jobs/enqueued"), enqueued, "{printed}");
    // Flows ran in order, callbacks fired once each after their batch, nothing waits.
    assert_eq!(at("/workflows/flows"), 100, "{printed}");
    assert_eq!(at("/workflows/early_starts"), 0, "{printed}");
    assert_eq!(at("/workflows/callbacks_early"), 0, "{printed}");
    assert_eq!(at("/workflows/callbacks_fired"), 20, "{printed}");
    assert_eq!(at("/workflows/waiting_left"), 0, "{printed}");
    // Everything enqueued finished; the drill's jobs never fail, so none is dead.
    assert_eq!(
        at("/jobs/completed"),
        enqueued,
        "dead: {}\n{printed}",
        at("/jobs/dead_reasons")
    );
    assert_eq!(at("/jobs/lost"), 0, "{printed}");
    assert_eq!(at("/executions/zombie_completions"), 0, "{printed}");
    assert_eq!(at("/executions/unexplained"), 0, "{printed}");
    // The monkey did interrupt jobs, and they ran again.
    assert!(
        at("/executions/jobs_run_again").as_u64() > Some(0),
        "{printed}"
    );
    assert!(at("/recovery_ms/samples").as_u64() > Some(0), "{printed}");
    assert!(at("/ticks/expected").as_u64() >= Some(45), "{printed}");
    assert_eq!(at("/ticks/fired_once"), at("/ticks/expected"), "{printed}");
    assert_eq!(at("/process_failures"), Value::Array(vec![]), "{printed}");
    assert_eq!(at("/leftovers/on_streams"), 0, "{printed}");
    assert_eq!(
        at("/leftovers/stale_consumers"),
        Value::Array(vec![]),
        "{printed}"
    );
    assert_eq!(
        at("/leftovers/reconcile_open"),
        Value::Array(vec![]),
        "{printed}"
    );
    for action in [
        "freeze worker",
        "rolling restart",
        "kill leader",
        "crash redis",
    ] {
        assert!(
            at(&format!("/monkey/{action}")).as_u64() >= Some(1),
            "no {action} in {printed}"
        );
    }
    // Redis came back from its append-only file, and the fleet reconnected by itself.
    assert!(
        at("/redis_fault/first_completion_after_restart_ms").as_u64() > Some(0),
        "{printed}"
    );
}

#[test]
fn under_chaos_a_concurrency_cap_and_a_window_per_group_are_never_exceeded_and_no_slot_leaks() {
    let dir = tempfile::tempdir().expect("dir");
    let report = dir.path().join("verdict.json");
    let output = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(["chaos", "--duration", "30s", "--workers", "4"])
        .args([
            "--jobs",
            "600",
            "--job-ms",
            "800",
            "--kill-every",
            "2s",
            "--cap",
            "3",
            "--group-cap",
            "1",
            "--groups",
            "8",
        ])
        .arg("--json")
        .arg(&report)
        .env_remove("FLOTILLA_CONFIG")
        .env_remove("FLOTILLA_REDIS_URL")
        .output()
        .expect("flotilla chaos runs");
    let (printed, verdict) = verdict_of(&output, &report);
    let at = |path: &str| verdict.pointer(path).cloned().unwrap_or(Value::Null);
    assert_eq!(at("/passed"), Value::Bool(true), "{printed}");
    assert_eq!(
        at("/jobs/completed"),
        600,
        "dead: {}\n{printed}",
        at("/jobs/dead_reasons")
    );
    assert_eq!(at("/jobs/lost"), 0, "{printed}");
    // Counted outside Redis, from the handlers' own ledger: never more than three of a
    // queue's jobs at once, and the cap was reached (the check had something to hold).
    assert_eq!(at("/cap/moments_over_cap"), 0, "{printed}");
    let most = at("/cap/most_at_once");
    let most: Vec<u64> = most
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert!(!most.is_empty(), "{printed}");
    assert!(most.iter().all(|&n| n <= 3), "{printed}");
    assert!(most.contains(&3), "the cap was never reached: {printed}");
    // The jobs, in eight groups of each queue at one job at a time (the raw XADDs' put
    // through their groups' gates by the workers): no group ever ran two at once, though
    // workers died holding its place.
    assert_eq!(at("/group_cap/moments_over_cap"), 0, "{printed}");
    let per_group = at("/group_cap/most_at_once");
    let per_group: Vec<u64> = per_group
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert!(per_group.len() >= 8, "{printed}");
    assert!(per_group.iter().all(|&n| n == 1), "{printed}");
    // Killed and frozen workers' slots came back: nothing is held once all is done.
    assert_eq!(at("/leftovers/slots_held"), 0, "{printed}");
    for action in ["freeze worker", "kill worker"] {
        assert!(
            at(&format!("/monkey/{action}")).as_u64() >= Some(1),
            "no {action} in {printed}"
        );
    }
}

#[tokio::test]
async fn against_a_running_fleet_it_only_enqueues_watches_and_reports() {
    let env = crate::util::Env::start().await;
    let mut doomed = WorkerProcess::start(&env.url(), &[], None);
    let mut survivor = WorkerProcess::start(&env.url(), &[], None);
    let dir = tempfile::tempdir().expect("dir");
    let report = dir.path().join("verdict.json");
    let drill = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(["chaos", "--against", &env.url(), "--namespace"])
        .arg(env.keys.namespace())
        .args(["--jobs", "300", "--duration", "6s", "--job-ms", "100"])
        .args(["--settle", "60s", "--json"])
        .arg(&report)
        .env_remove("FLOTILLA_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("flotilla chaos runs");
    // The operator's own chaos: a worker dies mid-run (once the drill's jobs are
    // completing); its jobs must still finish.
    flotilla_tests::eventually(
        crate::util::LONG,
        "the drill's first completions",
        || async {
            let mut completed = 0;
            for queue in ["critical", "default", "low"] {
                completed += env.completions(queue).await.len();
            }
            (completed >= 10).then_some(())
        },
    )
    .await;
    doomed.signal("KILL");
    let output = drill.wait_with_output().expect("the drill ends");
    let (printed, verdict) = verdict_of(&output, &report);
    assert!(
        doomed
            .wait_exit(std::time::Duration::from_secs(5))
            .is_some()
    );
    assert!(
        !survivor.has_exited(),
        "the drill stopped a process it did not start"
    );
    let at = |path: &str| verdict.pointer(path).cloned().unwrap_or(Value::Null);
    assert_eq!(at("/passed"), Value::Bool(true), "{printed}");
    assert_eq!(at("/jobs/enqueued"), 300, "{printed}");
    assert_eq!(at("/jobs/completed"), 300, "{printed}");
    assert_eq!(at("/jobs/lost"), 0, "{printed}");
    assert_eq!(at("/executions/zombie_completions"), 0, "{printed}");
    assert_eq!(
        at("/executions/causes_unknown"),
        Value::Bool(true),
        "{printed}"
    );
    assert_eq!(at("/monkey"), serde_json::json!({}), "it killed nothing");
}
