//! Smaller inputs that used to slip through or say the wrong thing: trailing msgpack
//! bytes, JSON nested past the handlers' limit, names with braces and misspelt sections
//! in settings, crafted list cursors, a bad stored schedule, and an attempt whose entry
//! was deleted while it ran.

use flotilla_tests::{WorkerProcess, eventually, free_local_addr, http_request};
use serde_json::json;

use crate::util::{Env, Fields, LONG, SCHEDULER_POLL};

#[tokio::test]
async fn payloads_with_bytes_left_over_or_nested_too_deep_are_dead_lettered_at_once() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let cases: [(Fields, &str); 2] = [
        (
            &[
                ("type", b"noop"),
                ("content_type", b"msgpack"),
                ("payload", &[0x01, 0x02]),
            ],
            "left over",
        ),
        (
            &[("type", b"noop"), ("payload", deep.as_bytes())],
            "recursion limit",
        ),
    ];
    for (fields, _) in &cases {
        env.xadd("default", fields).await;
    }
    let dead = eventually(LONG, "both payloads to be dead-lettered", || async {
        let dead = env.dead_entries("default").await;
        (dead.len() == cases.len()).then_some(dead)
    })
    .await;
    for (_, needle) in &cases {
        let entry = dead
            .iter()
            .find(|d| d.get("error").is_some_and(|e| e.contains(needle)))
            .unwrap_or_else(|| panic!("no dead entry says {needle}: {dead:?}"));
        assert_eq!(
            entry.get("attempts").map(String::as_str),
            Some("0"),
            "refused before it ran: {entry:?}"
        );
    }
}

fn flotilla(env: &Env, extra_env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(args)
        .env("FLOTILLA_REDIS_URL", env.url())
        .envs(extra_env.iter().copied())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs")
}

#[tokio::test]
async fn names_with_braces_and_misspelt_sections_are_settings_errors() {
    let env = Env::start().await;
    for (variables, needle) in [
        (&[("FLOTILLA_QUEUES__MAIL{X}", "1")][..], "mail{x}"),
        (&[("FLOTILLA_NAMESPACE", "jobs{a}")][..], "namespace"),
        (
            &[("FLOTILLA_WROKER__CONCURRENCY", "3")][..],
            "FLOTILLA_WROKER__CONCURRENCY",
        ),
    ] {
        let output = flotilla(&env, variables, &["queues", "stats"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variables:?} was accepted");
        assert!(stderr.contains(needle), "{variables:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_crafted_cursor_is_a_clear_400_not_a_redis_error() {
    let env = Env::start().await;
    env.enqueue("noop", json!({})).await;
    let addr = free_local_addr();
    let _dashboard = WorkerProcess::dashboard(&env.url(), &addr, None);
    for cursor in [
        "%7Bdefault%7D99999999999999999999999-0",
        "%7Bdefault%7D18446744073709551615-18446744073709551615",
        "%7Bdefault%7D1-99999999999999999999999",
    ] {
        let path = format!("/api/v1/jobs?status=pending&queue=default&cursor={cursor}");
        let answer = http_request(&addr, "GET", &path, &[], "").expect("answers");
        assert!(
            answer.status == 400 || answer.status == 200,
            "{cursor}: {} {}",
            answer.status,
            answer.body
        );
        assert!(!answer.body.contains("ERR"), "{cursor}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_bad_stored_schedule_is_said_once_not_at_every_poll() {
    let env = Env::start().await;
    let schedules = env.keys.schedules();
    env.cmd::<()>(
        redis::cmd("HSET")
            .arg(&schedules)
            .arg("garbled")
            .arg("{not json")
            .arg("badcron")
            .arg(json!({"name": "badcron", "cron": "not a cron", "type": "noop"}).to_string()),
    )
    .await;
    let scheduler = WorkerProcess::scheduler(&env.url(), &[], None);
    let times_said = |log: &str, name: &str| {
        log.lines()
            .filter(|l| l.contains(name) && (l.contains("WARN") || l.contains("ERROR")))
            .count()
    };
    eventually(LONG, "both bad schedules to be named", || async {
        let log = scheduler.log();
        ["garbled", "badcron"]
            .into_iter()
            .all(|name| times_said(&log, name) > 0)
            .then_some(())
    })
    .await;
    // Proves something does not happen: the scheduler polls every 50 ms in tests, and forty
    // passes more said it forty times before. Now: once when the settings are synced, once
    // when firing, once by the first reconciliation.
    tokio::time::sleep(40 * SCHEDULER_POLL).await;
    let log = scheduler.log();
    for name in ["garbled", "badcron"] {
        let said = times_said(&log, name);
        assert!(
            (1..=3).contains(&said),
            "{name} was said {said} times:\n{log}"
        );
    }
}

#[tokio::test]
async fn an_attempt_whose_entry_was_deleted_while_it_ran_is_not_called_a_reclaim() {
    let env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), flotilla_tests::JSON_LOGS, None);
    let id = env.enqueue("sleep", json!({"ms": 1500})).await;
    env.wait_status("default", &id, flotilla_proto::Status::Running, LONG)
        .await;
    env.cmd::<i64>(redis::cmd("XDEL").arg(env.keys.stream("default")).arg(&id))
        .await;
    let said = eventually(LONG, "the worker to say what happened", || async {
        worker
            .json_logs()
            .into_iter()
            .find(|line| line["fields"]["job"] == id.as_str() && line["level"] == "WARN")
    })
    .await;
    let message = said["fields"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("deleted") && !message.contains("reclaimed by another worker"),
        "{said}"
    );
}
