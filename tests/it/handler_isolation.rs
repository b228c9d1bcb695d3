//! What a built-in handler may see and leave behind: an `exec` command gets a clean
//! environment and its background children end with its job; an `http` handler's URL
//! credentials never reach an error, the dead-letter queue or a log.

use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, WorkerProcess, eventually, fast_config, http_server};
use flotilla_worker::Registry;
use serde_json::json;

use crate::handlers::{exec, http};
use crate::util::{Env, LONG, is_dead};

#[tokio::test]
async fn exec_commands_see_only_a_clean_environment_and_what_their_settings_pass() {
    let env = Env::start().await;
    let settings = r#"
[handlers.envdump]
kind = "exec"
command = ["sh", "-c", "env"]
env = { GREETING = "hello" }
inherit_env = ["KEEP_ME"]
"#;
    let worker = WorkerProcess::start(
        &env.url(),
        &[
            ("FLOTILLA_DASHBOARD_TOKEN", "tok-s3cret"),
            ("PAYMENTS_API_KEY", "key-s3cret"),
            ("KEEP_ME", "kept"),
        ],
        Some(settings),
    );
    let id = env.enqueue("envdump", json!({})).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    let shown = record
        .result
        .as_ref()
        .and_then(|r| r.as_str())
        .unwrap_or_default()
        .to_owned();
    let names: Vec<&str> = shown
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    for secret in [
        "FLOTILLA_REDIS_URL",
        "FLOTILLA_DASHBOARD_TOKEN",
        "PAYMENTS_API_KEY",
    ] {
        assert!(
            !names.contains(&secret),
            "{secret} reached the command: {shown}"
        );
    }
    assert!(
        !shown.contains("s3cret"),
        "a secret reached the command: {shown}"
    );
    let full_id = format!("FLOTILLA_JOB_FULL_ID=default:{id}");
    for passed in [
        "GREETING=hello",
        "KEEP_ME=kept",
        "FLOTILLA_JOB_TYPE=envdump",
        "FLOTILLA_QUEUE=default",
        &format!("FLOTILLA_JOB_ID={id}"),
        &full_id,
    ] {
        assert!(
            shown.lines().any(|l| l == passed),
            "{passed} missing: {shown}"
        );
    }
    assert!(names.contains(&"PATH"), "PATH is passed on: {shown}");
    drop(worker);
}

#[tokio::test]
async fn a_bad_inherit_env_name_is_a_settings_error_naming_the_key() {
    let env = Env::start().await;
    let settings = r#"
[handlers.envdump]
kind = "exec"
command = ["env"]
inherit_env = ["NOT A NAME"]
"#;
    let mut worker = WorkerProcess::start(&env.url(), &[], Some(settings));
    let status = worker
        .wait_exit(LONG)
        .expect("a worker with bad settings exits");
    assert!(!status.success());
    let log = worker.log();
    assert!(
        log.contains("handlers.envdump") && log.contains("\"NOT A NAME\" is not a variable name"),
        "{log}"
    );
}

#[tokio::test]
async fn http_handler_urls_are_shown_without_credentials_or_query_values() {
    let env = Env::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = format!(
        "http://user:pw-s3cret@{}/jobs?api_key=key-s3cret",
        closed.local_addr().expect("addr")
    );
    drop(closed);
    let (failing, _) = http_server(vec![
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops",
    ]);
    let failing = failing.replace("http://", "http://user:pw-s3cret@") + "?token=tok-s3cret";
    let mut registry = Registry::new();
    registry.register("refused", http(&refused));
    registry.register("failing", http(&failing));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    for (job_type, needle) in [("refused", "refused"), ("failing", "500")] {
        let job = NewJob::new(job_type, &json!({}))
            .expect("encodes")
            .max_attempts(1);
        let id = env.enqueue_job(job).await;
        let record = env.wait_status("default", &id, Status::Dead, LONG).await;
        let error = record.error.unwrap_or_default();
        assert!(error.to_lowercase().contains(needle), "{job_type}: {error}");
        assert!(
            error.contains("http://***@127.0.0.1:"),
            "{job_type}: the URL is still named: {error}"
        );
        assert!(!error.contains("s3cret"), "{job_type}: {error}");
    }
    let dead = env.dead_entries("default").await;
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|d| !d.values().any(|v| v.contains("s3cret"))),
        "{dead:?}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn what_an_exec_command_leaves_running_ends_with_its_job() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let detached_pid = dir.path().join("detached");
    let holding_pid = dir.path().join("holding");
    let mut registry = Registry::new();
    // Detached from the pipes: the job succeeds at once, and the sleep must not stay.
    registry.register(
        "detaches",
        exec(&format!(
            "sleep 300 >/dev/null 2>&1 </dev/null & echo $! > {}; echo started",
            detached_pid.display()
        )),
    );
    // Still holding stdout open: the job must still succeed when its command exits,
    // not wait for the background child and time out.
    registry.register(
        "holds_stdout",
        exec(&format!(
            "sleep 300 & echo $! > {}; echo started",
            holding_pid.display()
        )),
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    for (job_type, pid_file) in [("detaches", &detached_pid), ("holds_stdout", &holding_pid)] {
        let began = Instant::now();
        let job = NewJob::new(job_type, &json!({}))
            .expect("encodes")
            .timeout(Duration::from_secs(20))
            .max_attempts(1);
        let id = env.enqueue_job(job).await;
        let record = env
            .wait_status("default", &id, Status::Completed, LONG)
            .await;
        assert_eq!(record.result, Some(json!("started")), "{job_type}");
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{job_type} took {:?}: it waited for its background child",
            began.elapsed()
        );
        let pid = std::fs::read_to_string(pid_file).expect("pid written");
        let pid = pid.trim().to_owned();
        eventually(LONG, "the background sleep to be ended", || async {
            is_dead(&pid).then_some(())
        })
        .await;
    }
    worker.stop().await;
}
