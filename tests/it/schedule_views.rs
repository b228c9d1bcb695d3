//! What operators read about schedules and checks: a cron schedule shows its next run
//! from the moment it is added (none while paused), pausing and resuming does not hide
//! the ticks missed before, and the checks' exit statuses and counts say what they find.

use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, LONG, run_flotilla};

fn flotilla(env: &Env, args: &[&str]) -> std::process::Output {
    std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(args)
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs")
}

async fn server_ms(env: &Env) -> i64 {
    let (secs, micros): (i64, i64) = env.cmd(&mut redis::cmd("TIME")).await;
    secs * 1000 + micros / 1000
}

fn listed(env: &Env) -> Vec<Value> {
    let text = run_flotilla(&env.url(), &[], &["schedules", "list", "--json"]);
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test]
async fn a_cron_schedule_shows_its_next_run_at_once_and_none_while_paused() {
    let env = Env::start().await;
    run_flotilla(
        &env.url(),
        &[],
        &[
            "schedules",
            "add",
            "nightly",
            "--cron",
            "0 30 2 * * *",
            "--tz",
            "America/New_York",
            "--type",
            "noop",
        ],
    );
    let now = server_ms(&env).await;
    let nightly = &listed(&env)[0];
    let next = nightly["next_tick"].as_i64().expect("a next tick");
    assert!(
        next > now && next <= now + 25 * 3_600_000,
        "next tick {next} is not within a day of {now}"
    );
    assert_eq!(
        nightly["last_tick"],
        Value::Null,
        "it has fired nothing yet"
    );
    let table = run_flotilla(&env.url(), &[], &["schedules", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("nightly"))
        .expect("a row");
    assert!(!row.trim_end().ends_with(" -"), "NEXT TICK is blank: {row}");

    run_flotilla(&env.url(), &[], &["schedules", "pause", "nightly"]);
    assert_eq!(
        listed(&env)[0]["next_tick"],
        Value::Null,
        "paused: no next tick"
    );
    run_flotilla(&env.url(), &[], &["schedules", "resume", "nightly"]);
    assert_eq!(listed(&env)[0]["next_tick"].as_i64(), Some(next));
}

/// `flotilla reconcile --json`'s open tick_missed findings for `schedule`.
fn missed(env: &Env, schedule: &str) -> Vec<Value> {
    let output = flotilla(env, &["reconcile", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["kind"] == "tick_missed" && f["subject"] == schedule && f["open"] == true)
        .cloned()
        .collect()
}

/// The period of the `ticker` schedule below (`--every 1s`).
const TICK: Duration = Duration::from_secs(1);

#[tokio::test]
async fn pausing_and_resuming_does_not_hide_the_ticks_missed_before() {
    let env = Env::start().await;
    run_flotilla(
        &env.url(),
        &[],
        &[
            "schedules",
            "add",
            "ticker",
            "--every",
            "1s",
            "--type",
            "noop",
            "--catch-up",
            "skip",
        ],
    );
    // No scheduler leads for three ticks: they are missed, and the leader that comes skips
    // them (catch-up `skip`). The time is the point: the ticks must come and go unfired.
    tokio::time::sleep(3 * TICK).await;
    let scheduler = flotilla_tests::FlotillaProcess::scheduler(&env.url(), &[], None);
    flotilla_tests::eventually(LONG, "the leader to fire a tick", || async {
        (!listed(&env)[0]["last_job"].is_null()).then_some(())
    })
    .await;
    drop(scheduler);
    let before = missed(&env, "ticker");
    assert!(
        before.len() >= 2,
        "the skipped ticks are findings: {before:?}"
    );
    // The reconcile that found them exits 1: something is open.
    assert!(!flotilla(&env, &["reconcile"]).status.success());

    run_flotilla(&env.url(), &[], &["schedules", "pause", "ticker"]);
    let paused = missed(&env, "ticker");
    run_flotilla(&env.url(), &[], &["schedules", "resume", "ticker"]);
    let resumed = missed(&env, "ticker");
    for (when, found) in [("while paused", &paused), ("after resuming", &resumed)] {
        for finding in &before {
            assert!(
                found.iter().any(|f| f["detail"] == finding["detail"]),
                "{when}: {} is no longer reported: {found:?}",
                finding["detail"]
            );
        }
    }
}

#[tokio::test]
async fn a_job_without_an_id_shows_its_attempts_without_an_unknown_limit() {
    let env = Env::start().await;
    let worker = flotilla_tests::InProcessWorker::start(
        &env.url(),
        flotilla_tests::fast_config(),
        flotilla_worker::Registry::with_builtins(),
    )
    .await;
    let id = env.enqueue("noop", serde_json::json!({})).await;
    env.wait_status("default", &id, flotilla_proto::Status::Completed, LONG)
        .await;
    worker.stop().await;
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", &id]);
    let line = shown
        .lines()
        .find(|l| l.trim_start().starts_with("attempts"))
        .expect("an attempts line");
    assert!(!line.contains(" of 0"), "{line}");
    assert!(line.trim_end().ends_with('1'), "{line}");
}
