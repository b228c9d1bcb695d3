//! The `flotilla` binary from the outside: enqueue, jobs show, settings errors.

use std::process::Command;

use flotilla_proto::Status;
use flotilla_tests::WorkerProcess;
use serde_json::Value;

use crate::util::{Env, LONG, SCHEDULER_POLL};

fn flotilla(env: &Env, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(args)
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn enqueue_prints_an_id_that_jobs_show_finds_by_prefix() {
    let env = Env::start().await;
    let id = stdout(&flotilla(
        &env,
        &[
            "enqueue",
            "--type",
            "fail",
            "--payload",
            r#"{"times": 1}"#,
            "--max-attempts",
            "2",
        ],
    ));
    // A job to run now takes the fast path: its id is its stream entry's, printed as
    // its full id, which names the queue.
    let name = flotilla_proto::JobName::parse(&id);
    assert_eq!(name.queue, Some("default"), "a full id: {id}");
    assert!(flotilla_proto::is_entry_id(name.id), "a full id: {id}");
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    env.wait_status("default", name.id, Status::Completed, LONG)
        .await;
    let shown: Value = serde_json::from_str(&stdout(&flotilla(
        &env,
        &["jobs", "show", &id[..id.len() - 2], "--json"],
    )))
    .expect("JSON");
    assert_eq!(shown["id"], Value::from(name.id));
    assert_eq!(shown["full_id"], Value::from(id.as_str()));
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["attempts"], 2);
    assert_eq!(shown["result"]["succeeded_on_attempt"], 2);
    let text = stdout(&flotilla(&env, &["jobs", "show", &id]));
    assert!(
        text.contains("completed") && text.contains("2 of 2"),
        "{text}"
    );
}

/// The attempts' errors of a job shown by `jobs show`, as (attempt, error) pairs.
fn shown_errors(shown: &Value) -> Vec<(u64, String)> {
    shown["errors"]
        .as_array()
        .expect("errors is an array")
        .iter()
        .map(|e| {
            assert!(e["at"].as_u64().is_some_and(|at| at > 0), "{e}");
            (
                e["attempt"].as_u64().expect("attempt"),
                e["error"].as_str().expect("error").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn jobs_show_lists_each_attempts_error() {
    let env = Env::start().await;
    let enqueue = |times: &str, max_attempts: &str| {
        stdout(&flotilla(
            &env,
            &[
                "enqueue",
                "--type",
                "fail",
                "--payload",
                &format!(r#"{{"times": {times}}}"#),
                "--max-attempts",
                max_attempts,
            ],
        ))
    };
    let recovers = enqueue("2", "3");
    let dies = enqueue("-1", "2");
    let _worker = WorkerProcess::start(&env.url(), &[], None);
    env.wait_status("default", &recovers, Status::Completed, LONG)
        .await;
    env.wait_status("default", &dies, Status::Dead, LONG).await;
    let planned = |n: u64| (n, format!("planned failure on attempt {n}"));

    let shown: Value = serde_json::from_str(&stdout(&flotilla(
        &env,
        &["jobs", "show", &recovers, "--json"],
    )))
    .expect("JSON");
    assert_eq!(shown["status"], "completed");
    assert_eq!(
        shown["error"],
        Value::Null,
        "a success clears the last error"
    );
    assert_eq!(shown_errors(&shown), [planned(1), planned(2)]);

    let shown: Value =
        serde_json::from_str(&stdout(&flotilla(&env, &["jobs", "show", &dies, "--json"])))
            .expect("JSON");
    assert_eq!(shown["status"], "dead");
    // The last error names the attempts spent; the history keeps what the handler said.
    assert_eq!(shown_errors(&shown), [planned(1), planned(2)]);

    let text = stdout(&flotilla(&env, &["jobs", "show", &dies]));
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("planned failure on attempt"))
        .collect();
    assert!(lines.len() == 3, "last error and two attempts: {text}");
    assert!(
        lines[1].starts_with("errors") && lines[1].contains("#1 "),
        "{text}"
    );
    assert!(
        lines[2].contains("#2 ") && lines[2].ends_with("attempt 2"),
        "{text}"
    );
}

#[tokio::test]
async fn enqueue_with_a_delay_a_unique_key_and_a_time() {
    let env = Env::start().await;
    let first = stdout(&flotilla(
        &env,
        &[
            "enqueue", "--type", "noop", "--in", "1h", "--unique", "nightly",
        ],
    ));
    let second = stdout(&flotilla(
        &env,
        &["enqueue", "--type", "noop", "--unique", "nightly"],
    ));
    assert_eq!(first, second, "unique key returns the first job");
    let record = env.record("default", &first).await.expect("record");
    assert_eq!(record.status, Some(Status::Scheduled));
    let at = stdout(&flotilla(
        &env,
        &[
            "enqueue",
            "--type",
            "noop",
            "--at",
            "2099-01-01T00:00:00Z",
            "--queue",
            "low",
        ],
    ));
    let record = env.record("low", &at).await.expect("record");
    assert_eq!(record.run_at, Some(4_070_908_800_000));
}

#[tokio::test]
async fn ambiguous_and_unknown_ids_are_clear_errors() {
    let env = Env::start().await;
    let a = stdout(&flotilla(&env, &["enqueue", "--type", "noop"]));
    let _b = stdout(&flotilla(&env, &["enqueue", "--type", "noop"]));
    // The first characters of a full id search its queue.
    let ambiguous = flotilla(&env, &["jobs", "show", &a[.."default:".len() + 4]]);
    assert!(!ambiguous.status.success());
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("matches several jobs"));
    let missing = flotilla(&env, &["jobs", "show", "zzzz"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no job with id"));
}

#[tokio::test]
async fn bad_settings_name_the_file_the_key_and_the_expected_form() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        ("[worker]\nconcurrency = \"lots\"\n", "concurrency"),
        ("[worker]\nconcurrancy = 4\n", "concurrancy"),
        (
            "[handlers.resize]\nkind = \"exec\"\n",
            "handlers.resize.command",
        ),
        (
            "[handlers.hook]\nkind = \"ftp\"\n",
            "expected \"exec\" or \"http\"",
        ),
        ("[defaults]\nbackoff = \"linear\"\n", "defaults.backoff"),
        ("[partitions]\nmial = 4\n", "partitions.mial"),
        ("[partitions]\ndefault = 0\n", "from 1 to 1024"),
        ("[queues]\n\"mail#2\" = 1\n", "names a partition"),
    ];
    for (i, (toml, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, toml).expect("write");
        let path = path.display().to_string();
        let output = flotilla(&env, &["--config", &path, "worker"]);
        assert!(!output.status.success(), "{toml} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{stderr} should name {needle}");
        assert!(
            stderr.contains(&format!("bad{i}.toml")),
            "{stderr} should name the file"
        );
    }
    let bad_env = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(["worker"])
        .env("FLOTILLA_WORKER__CONCURRENCY", "0")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("concurrency"));
}

#[tokio::test]
async fn the_redis_url_can_come_from_a_mounted_secret_file() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("url");
    // As a Secret mounted as a file may hold it: with a trailing line break.
    std::fs::write(&secret, format!("{}\n", env.url())).expect("write");
    let enqueue = |url_file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
            .args(["enqueue", "--type", "noop"])
            .env("FLOTILLA_REDIS_URL", "redis://127.0.0.1:1")
            .env("FLOTILLA_REDIS_URL_FILE", url_file)
            .env_remove("FLOTILLA_CONFIG")
            .output()
            .expect("flotilla runs")
    };
    let id = stdout(&enqueue(&secret));
    let shown = flotilla(&env, &["jobs", "show", &id, "--json"]);
    assert!(
        stdout(&shown).contains("pending"),
        "the file's Redis has the job"
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    for bad in [empty, dir.path().join("missing")] {
        let output = enqueue(&bad);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("redis_url_file") && stderr.contains(&bad.display().to_string()),
            "{stderr} should name the key and the file"
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["worker", "--help"],
        &["enqueue", "--help"],
        &["jobs", "show", "--help"],
        &["demo", "--help"],
        &["chaos", "--help"],
        &["queues", "stats", "--help"],
        &["queues", "pause", "--help"],
        &["workers", "list", "--help"],
        &["jobs", "retry", "--help"],
        &["jobs", "cancel", "--help"],
        &["jobs", "purge", "--help"],
        &["dead", "list", "--help"],
        &["queues", "drain", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
            .args(args)
            .output()
            .expect("runs");
        assert!(output.status.success(), "{args:?}");
        assert!(!output.stdout.is_empty());
    }
}

#[tokio::test]
async fn schedules_are_managed_from_the_command_line() {
    // The period of the `pulse` schedule (`--every 1s` below).
    const PULSE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    let env = Env::start().await;
    let added = flotilla(
        &env,
        &[
            "schedules",
            "add",
            "pulse",
            "--every",
            "1s",
            "--type",
            "noop",
            "--queue",
            "low",
            "--payload",
            r#"{"a": 1}"#,
        ],
    );
    assert_eq!(stdout(&added), "schedule pulse saved");
    let bad = flotilla(
        &env,
        &[
            "schedules",
            "add",
            "broken",
            "--cron",
            "nope",
            "--type",
            "noop",
        ],
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cron"),
        "bad cron accepted"
    );
    // No leader is a failure to whoever checks.
    let leaderless = flotilla(&env, &["schedules", "status"]);
    assert!(!leaderless.status.success());
    assert!(String::from_utf8_lossy(&leaderless.stderr).contains("no leader"));

    let _scheduler = flotilla_tests::FlotillaProcess::scheduler(&env.url(), &[], None);
    let low_len = || async {
        env.cmd::<u64>(redis::cmd("XLEN").arg(env.keys.stream("low")))
            .await
    };
    flotilla_tests::eventually(LONG, "a first fire", || async {
        (low_len().await > 0).then_some(())
    })
    .await;
    let status = stdout(&flotilla(&env, &["schedules", "status"]));
    assert!(
        status.contains("leader") && status.contains("epoch    1"),
        "{status}"
    );
    let listed: Value =
        serde_json::from_str(&stdout(&flotilla(&env, &["schedules", "list", "--json"])))
            .expect("JSON");
    assert_eq!(listed[0]["schedule"]["name"], "pulse");
    assert_eq!(listed[0]["schedule"]["payload"]["a"], 1);
    assert!(
        listed[0]["last_job"]
            .as_str()
            .is_some_and(|j| j.starts_with("pulse@"))
    );

    stdout(&flotilla(&env, &["schedules", "pause", "pulse"]));
    // A pass that read the schedule before the pause has fired what it would: a few of the
    // scheduler's polls.
    tokio::time::sleep(6 * SCHEDULER_POLL).await;
    let paused_at = low_len().await;
    // Proves something does not happen: one and a half periods of the schedule, in which
    // it would have fired once at least.
    tokio::time::sleep(PULSE_EVERY * 3 / 2).await;
    assert_eq!(low_len().await, paused_at, "a paused schedule fired");
    stdout(&flotilla(&env, &["schedules", "resume", "pulse"]));
    flotilla_tests::eventually(LONG, "fires after resume", || async {
        (low_len().await > paused_at).then_some(())
    })
    .await;

    let triggered = stdout(&flotilla(&env, &["schedules", "trigger", "pulse"]));
    assert!(triggered.starts_with("pulse@manual-"), "{triggered}");
    assert!(env.record("low", &triggered).await.is_some());
    stdout(&flotilla(&env, &["schedules", "remove", "pulse"]));
    assert_eq!(
        stdout(&flotilla(&env, &["schedules", "list"])),
        "no schedules"
    );
}

#[tokio::test]
async fn bench_runs_every_scenario_and_writes_both_reports() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let markdown = dir.path().join("report.md");
    let output = flotilla(
        &env,
        &[
            "bench",
            "--scenarios",
            "enqueue,drain,latency,mixed,backlog,floor",
            "--jobs",
            "300",
            "--concurrency",
            "10",
            "--workers",
            "2",
            "--rate",
            "200,half",
            "--latency-secs",
            "1",
            "--backlog",
            "200",
            "--json",
            json.to_str().expect("UTF-8 path"),
            "--markdown",
            markdown.to_str().expect("UTF-8 path"),
        ],
    );
    stdout(&output);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).expect("JSON");
    assert_eq!(report["system"], "flotilla");
    let rows = report["results"].as_array().expect("results");
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["scenario"].as_str().unwrap_or("?"),
                r["variant"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "enqueue/single",
            "enqueue/pipelined",
            "enqueue/bulk",
            "drain/W2xC10",
            "latency/rate200",
            "latency/half-max",
            "mixed/W1xC50",
            "backlog/200",
            "floor/xadd+xreadgroup+xack+xdel",
        ]
    );
    for row in rows {
        let rate = row["jobs_per_s"].as_f64().unwrap_or(0.0);
        assert!(rate > 0.0, "no rate in {row}");
        assert!(
            row["redis_calls_per_job"].as_f64().unwrap_or(0.0) > 0.0,
            "{row}"
        );
    }
    let drain = &rows[3];
    assert!(
        drain["worker_rss_mb"].as_f64().unwrap_or(0.0) > 1.0,
        "{drain}"
    );
    assert!(drain["redis_bytes_per_job"].as_f64().is_some(), "{drain}");
    let latency = &rows[4]["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap_or(-1.0) >= 0.0, "{latency}");
    assert!(
        latency["p99"].as_f64() >= latency["p50"].as_f64(),
        "{latency}"
    );
    let text = std::fs::read_to_string(&markdown).expect("Markdown report");
    assert!(text.contains("| drain | W2xC10 |"), "{text}");
}
