//! The runbook's read-only commands run as written: every line of every `sh read-only`
//! block of docs/runbooks/job-queue.md, against a fleet with work in every state,
//! succeeds and prints something.

use std::process::Command;

use flotilla_proto::Status;
use flotilla_tests::{WorkerProcess, repo_root};

use crate::ops::unhandled;
use crate::util::{Env, LONG};

/// The command lines of the runbook's `sh read-only` blocks.
fn read_only_commands(runbook: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut inside = false;
    for line in runbook.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            inside = !inside && fence.trim_start_matches('`').trim() == "sh read-only";
            continue;
        }
        if inside && !line.trim().is_empty() {
            commands.push(line.trim().to_owned());
        }
    }
    commands
}

#[tokio::test]
async fn the_runbooks_read_only_commands_run_as_written() {
    let runbook = std::fs::read_to_string(repo_root().join("docs/runbooks/job-queue.md"))
        .expect("docs/runbooks/job-queue.md");
    let commands = read_only_commands(&runbook);
    assert!(
        commands.len() >= 8,
        "too few read-only commands: {commands:?}"
    );

    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let _scheduler = WorkerProcess::scheduler(&env.url(), &[], None);
    // The runbook is read on a running fleet: one whose scheduler leads.
    flotilla_tests::eventually(LONG, "the scheduler to lead", || async {
        flotilla_scheduler::leader_status(&mut env.conn.clone(), &env.keys)
            .await
            .ok()
            .and_then(|status| status.holder)
    })
    .await;
    let dead = env.enqueue_job(unhandled("ghost").queue("critical")).await;
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    env.leave_waiting(2).await;
    // The flow and the batch the runbook names.
    let mut flow = flotilla_producer::Flow::with_id("nightly-42");
    let first = flow
        .add(flotilla_producer::NewJob::new("noop", &serde_json::json!({})).expect("job"))
        .expect("a job");
    flow.add(
        flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
            .expect("job")
            .delay(std::time::Duration::from_secs(600))
            .after(first),
    )
    .expect("a job");
    env.producer.enqueue_flow(flow).await.expect("the flow");
    let mut batch = flotilla_producer::Batch::new("import-42");
    batch
        .add(flotilla_producer::NewJob::new("noop", &serde_json::json!({})).expect("job"))
        .expect("a job");
    env.producer.enqueue_batch(batch).await.expect("the batch");

    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(
            words.first(),
            Some(&"flotilla"),
            "not a flotilla command: {command}"
        );
        let output = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
            .args(&words[1..])
            .env("FLOTILLA_REDIS_URL", env.url())
            .env_remove("FLOTILLA_CONFIG")
            .output()
            .expect("flotilla runs");
        assert!(
            output.status.success(),
            "`{command}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty(), "`{command}` printed nothing");
    }
}

#[test]
fn only_read_only_blocks_are_picked() {
    let text = "```sh\nflotilla jobs delete x\n```\n```sh read-only\nflotilla queues stats\n\nflotilla workers list\n```\n";
    assert_eq!(
        read_only_commands(text),
        ["flotilla queues stats", "flotilla workers list"]
    );
}
