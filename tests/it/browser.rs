//! The dashboard's pages in a real headless browser (Debian's chromium driven by
//! playwright-core, both installed by the test command): the overview shows what waits,
//! a dead job is retried and a queue paused by clicking, and each step is saved as a
//! screenshot under `target/test-output/dashboard-browser/`.

use std::path::PathBuf;
use std::process::Command;

use flotilla_proto::Status;
use flotilla_tests::{WorkerProcess, free_local_addr, repo_root};

use crate::ops::unhandled;
use crate::util::{Env, LONG};

const TOKEN: &str = "browser-token-9d1e";

/// The chromium executable on the PATH.
fn chromium() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .expect("chromium is missing: run ./scripts/ensure-deps.sh (the test command does)")
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[tokio::test]
async fn an_operator_retries_a_dead_job_and_pauses_a_queue_by_clicking() {
    let env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let dead = env.enqueue_job(unhandled("ghost").queue("critical")).await;
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    // With no worker left, the retried job stays pending where the test can see it.
    drop(worker);
    env.leave_waiting(2).await;
    let addr = free_local_addr();
    let _dashboard = WorkerProcess::dashboard(&env.url(), &addr, Some(TOKEN));

    let shots = repo_root().join("target/test-output/dashboard-browser");
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    let script = repo_root().join("tests/browser/dashboard.mjs");
    let output = Command::new("node")
        .arg(&script)
        .env("DASHBOARD_URL", format!("http://{addr}/"))
        .env("DASHBOARD_TOKEN", TOKEN)
        .env("DEAD_JOB", &dead)
        .env("DEAD_QUEUE", "critical")
        .env("PENDING", "2")
        .env("SHOTS", &shots)
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs (the test command installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saw: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .expect("the script's JSON line");
    assert_eq!(saw["overview_default_pending"], "2", "{saw}");

    // What the clicks did, read back from Redis.
    let record = env
        .record("critical", &dead)
        .await
        .expect("the retried job");
    assert_eq!(record.status, Some(Status::Pending), "{record:?}");
    assert_eq!(record.attempts, 0);
    let paused: bool = env
        .cmd(
            redis::cmd("SISMEMBER")
                .arg(env.keys.paused())
                .arg("default"),
        )
        .await;
    assert!(paused, "the click paused default");
    for shot in saw["screenshots"].as_array().expect("screenshots") {
        let path = PathBuf::from(shot.as_str().unwrap_or_default());
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", path.display());
    }
}
