//! Entries from other languages: raw XADDs that run, and bad input that goes to the DLQ
//! with a reason while the worker carries on (rule 9).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, eventually, fast_config};
use flotilla_worker::{JobContext, Registry};
use serde_json::json;

use crate::util::{Env, LONG};

/// The reason PROTOCOL.md gives for an entry with an `id` of no known job and no `type`.
const NO_KNOWN_JOB: &str = "entry has neither an `id` of a known job nor a `type`";

/// XADDs raw fields to a queue's stream, as a producer in another language would.
fn counting_registry(runs: &Arc<Mutex<Vec<serde_json::Value>>>) -> Registry {
    let mut registry = Registry::with_builtins();
    let seen = Arc::clone(runs);
    registry.register("record", move |ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            let payload: serde_json::Value =
                ctx.args().map_err(flotilla_worker::HandlerError::give_up)?;
            seen.lock()
                .expect("lock")
                .push(json!({"payload": payload, "max_attempts": ctx.max_attempts}));
            Ok(Some(payload))
        }
    });
    // Answers with what the worker made of an entry's optional fields.
    registry.register("context", |ctx: JobContext| async move {
        Ok(Some(json!({
            "content_type": ctx.payload.content_type.as_str(),
            "max_attempts": ctx.max_attempts,
            "timeout_ms": ctx.timeout.as_millis() as u64,
        })))
    });
    registry
}

#[tokio::test]
async fn a_raw_xadd_with_only_type_and_payload_runs() {
    let env = Env::start().await;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let worker = InProcessWorker::start(&env.url(), fast_config(), counting_registry(&runs)).await;
    let entry = env
        .xadd(
            "default",
            &[("type", b"record"), ("payload", br#"{"to":"a@b.c"}"#)],
        )
        .await;
    // Without an `id` field the entry id stands in for the job id.
    let record = env
        .wait_status("default", &entry, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!({"to": "a@b.c"})));
    // Defaults apply to fields the entry leaves out.
    let entry = env
        .xadd("default", &[("type", b"context"), ("payload", b"{}")])
        .await;
    let record = env
        .wait_status("default", &entry, Status::Completed, LONG)
        .await;
    let result = record.result.expect("a result");
    assert_eq!(result["content_type"], "json");
    assert_eq!(result["max_attempts"], 3);
    assert_eq!(
        result["timeout_ms"],
        fast_config().jobs.defaults.timeout.as_millis() as u64
    );
    worker.stop().await;
    assert_eq!(runs.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn the_same_producer_id_xadded_twice_runs_once() {
    let env = Env::start().await;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let fields: [(&str, &[u8]); 4] = [
        ("id", b"4f9c1d2e-0000-4000-8000-000000000001"),
        ("type", b"record"),
        ("payload", b"[1]"),
        ("max_attempts", b"5"),
    ];
    env.xadd("default", &fields).await;
    env.xadd("default", &fields).await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), counting_registry(&runs)).await;
    let id = "4f9c1d2e-0000-4000-8000-000000000001";
    env.wait_status("default", id, Status::Completed, LONG)
        .await;
    let ran_with = runs.lock().expect("lock")[0]["max_attempts"].clone();
    assert_eq!(ran_with, 5, "the entry's max_attempts holds");
    // Also after the first run finished, a late duplicate must not run.
    env.xadd("default", &fields).await;
    let marker = env.xadd("default", &[("type", b"noop")]).await;
    env.wait_status("default", &marker, Status::Completed, LONG)
        .await;
    worker.stop().await;
    assert_eq!(runs.lock().expect("lock").len(), 1, "ran more than once");
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 0, "duplicates were acknowledged and removed");
}

#[tokio::test]
async fn malformed_entries_go_to_the_dlq_with_reasons_and_the_worker_carries_on() {
    let env = Env::start().await;
    let mut config = fast_config();
    config.jobs.limits.max_payload_bytes = 1024;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let worker = InProcessWorker::start(&env.url(), config, counting_registry(&runs)).await;
    let oversize = format!("\"{}\"", "x".repeat(2000));
    let cases: Vec<(String, &str)> = vec![
        (
            env.xadd(
                "default",
                &[
                    ("type", b"record"),
                    ("content_type", b"msgpack"),
                    ("payload", b"\xc1\xc1"),
                ],
            )
            .await,
            "not valid msgpack",
        ),
        (
            env.xadd("default", &[("type", b"record"), ("payload", b"{\"to\": ")])
                .await,
            "not valid json",
        ),
        (
            env.xadd(
                "default",
                &[("type", b"record"), ("payload", oversize.as_bytes())],
            )
            .await,
            "over the 1024-byte limit",
        ),
        (
            env.xadd("default", &[("payload", b"{}")]).await,
            "neither an `id`",
        ),
        (
            env.xadd("default", &[("type", b"record"), ("content_type", b"xml")])
                .await,
            "unknown content type",
        ),
        (
            env.xadd("default", &[("type", b"record"), ("max_attempts", b"lots")])
                .await,
            "max_attempts",
        ),
        (
            env.xadd("default", &[("id", b"no-such-job")]).await,
            NO_KNOWN_JOB,
        ),
    ];
    let good = env
        .xadd(
            "default",
            &[("type", b"record"), ("payload", b"{\"ok\":true}")],
        )
        .await;
    env.wait_status("default", &good, Status::Completed, LONG)
        .await;
    let dead = eventually(LONG, "every bad entry in the DLQ", || async {
        let dead = env.dead_entries("default").await;
        (dead.len() >= cases.len()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), cases.len());
    for (entry_id, reason) in &cases {
        let job_id = if *reason == NO_KNOWN_JOB {
            "no-such-job"
        } else {
            entry_id.as_str()
        };
        let found = dead
            .iter()
            .find(|d| d["id"] == job_id)
            .unwrap_or_else(|| panic!("{job_id} not in the DLQ"));
        assert!(
            found["error"].contains(reason),
            "{:?} should mention {reason:?}",
            found["error"]
        );
        if *reason != NO_KNOWN_JOB {
            let record = env
                .record("default", job_id)
                .await
                .expect("a record is kept for inspection");
            assert_eq!(record.status, Some(Status::Dead));
        }
    }
    let len: u64 = env
        .cmd(redis::cmd("XLEN").arg(env.keys.stream("default")))
        .await;
    assert_eq!(len, 0, "bad entries are acknowledged and removed");
    assert!(!worker.is_finished(), "the worker is still serving");
    worker.stop().await;
    assert_eq!(
        runs.lock().expect("lock").len(),
        1,
        "only the good entry ran"
    );
}

#[tokio::test]
async fn an_unknown_type_is_retried_per_policy_with_a_clear_error() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let entry = env
        .xadd(
            "default",
            &[
                ("type", b"resize_image"),
                ("payload", b"{}"),
                ("max_attempts", b"2"),
            ],
        )
        .await;
    let marker = env.xadd("default", &[("type", b"noop")]).await;
    env.wait_status("default", &marker, Status::Completed, LONG)
        .await;
    let record = env.wait_status("default", &entry, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 2, "followed the retry policy");
    let error = record.error.expect("error");
    assert!(
        error.contains("no handler for type resize_image"),
        "{error}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_type_added_by_a_rolling_deploy_is_served_once_a_worker_knows_it() {
    let env = Env::start().await;
    let old = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let job = flotilla_producer::NewJob::new("new_type", &json!({}))
        .expect("encodes")
        .max_attempts(20)
        .backoff(flotilla_proto::Backoff::Fixed(Duration::from_millis(100)));
    let id = env.enqueue_job(job).await;
    eventually(LONG, "a failed attempt", || async {
        env.record("default", &id)
            .await
            .filter(|r| r.attempts >= 1)
            .map(|_| ())
    })
    .await;
    old.stop().await;
    let mut registry = Registry::with_builtins();
    registry.register("new_type", |_ctx: JobContext| async {
        Ok(Some(json!("served")))
    });
    let new = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!("served")));
    new.stop().await;
}

/// The redis-cli examples in docs/PROTOCOL.md, each run exactly as written (pointed at
/// this test's server), must show a completed job: the fast path's completion in `done`,
/// and the record of a job with its own id.
#[tokio::test]
async fn the_protocol_documents_redis_cli_example_works_as_written() {
    let env = Env::start().await;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("doc");
    let section = doc
        .split("### Try it with redis-cli")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("section");
    let scripts: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|s| s.split("```").next())
        .collect();
    assert_eq!(scripts.len(), 2, "a fast-path example and a record example");
    let socket = env.redis.socket();
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    for script in scripts {
        let script = script.replace("redis-cli", &format!("redis-cli -s {}", socket.display()));
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .await
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let value_of = |field: &str| {
            lines
                .iter()
                .position(|l| *l == field)
                .and_then(|i| lines.get(i + 1))
                .copied()
        };
        if script.contains("HGETALL") {
            assert_eq!(value_of("status"), Some("completed"), "{stdout}");
            assert_eq!(value_of("attempts"), Some("1"), "{stdout}");
        } else {
            // A completion leaves out one attempt, the default.
            assert_eq!(value_of("type"), Some("sleep"), "{stdout}");
            assert_eq!(value_of("attempts"), None, "{stdout}");
        }
        assert_eq!(value_of("result"), Some(r#"{"slept_ms":100}"#), "{stdout}");
    }
    worker.stop().await;
}

/// The first `sh` block after `heading` in a document of the repository.
fn first_sh_block_after(document: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(flotilla_tests::repo_root().join(document))
        .unwrap_or_else(|e| panic!("{document}: {e}"));
    text.split(heading)
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("no sh block after {heading:?} in {document}"))
        .to_owned()
}

/// Runs a documented shell example from the repository's root, its redis-cli pointed at
/// this test's server; its stdout, after checking it succeeded.
async fn run_documented(env: &Env, script: &str) -> String {
    let socket = env.redis.socket();
    let script = script.replace("redis-cli", &format!("redis-cli -s {}", socket.display()));
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(flotilla_tests::repo_root())
        .output()
        .await
        .expect("sh runs");
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The published script's redis-cli example in docs/PROTOCOL.md, run as written from the
/// repository's root: a delayed unique job is created, the second call finds the key
/// held, and the job runs once its delay is over, releasing the key.
#[tokio::test]
async fn the_protocol_documents_published_script_example_works_as_written() {
    let env = Env::start().await;
    let script = first_sh_block_after(
        "docs/PROTOCOL.md",
        "### Delayed and unique jobs: the published script",
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let stdout = run_documented(&env, &script).await;
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["report-7", "created", "report-7", "duplicate"],
        "{stdout}"
    );
    let record = env
        .wait_status("default", "report-7", Status::Completed, LONG)
        .await;
    assert!(
        record
            .started_at
            .zip(record.created_at)
            .is_some_and(|(started, created)| started >= created + 500),
        "ran after its delay: {record:?}"
    );
    assert_eq!(record.result, Some(serde_json::json!({"slept_ms": 100})));
    let key = env.keys.unique("default", "report-7");
    let held: Option<String> = env.cmd(redis::cmd("GET").arg(&key)).await;
    assert_eq!(held, None, "the key is released when the job completes");
    worker.stop().await;
}

/// The protocol's flow example (a diamond through the published flow script), run as
/// written: one word per job, and the last job runs after its parents.
#[tokio::test]
async fn the_protocol_documents_flow_example_works_as_written() {
    let env = Env::start().await;
    let script = first_sh_block_after(
        "docs/PROTOCOL.md",
        "### Jobs that wait for other jobs: the published flow script",
    );
    let stdout = run_documented(&env, &script).await;
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["created", "waiting", "waiting", "waiting"],
        "{stdout}"
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    env.wait_status("default", "d", Status::Completed, LONG)
        .await;
    worker.stop().await;
    let flow: Vec<String> = env
        .cmd(
            redis::cmd("LRANGE")
                .arg(env.keys.flow("default", "diamond"))
                .arg(0)
                .arg(-1),
        )
        .await;
    assert_eq!(flow.len(), 4, "{flow:?}");
}

/// The README's one-line redis-cli enqueue, run as written: its reply is the job's id, and
/// the job completes.
#[tokio::test]
async fn the_readmes_redis_cli_example_works_as_written() {
    let env = Env::start().await;
    let line = first_sh_block_after(
        "README.md",
        "From another language, one command enqueues a job",
    );
    assert!(line.trim().starts_with("redis-cli XADD"), "{line}");
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let id = run_documented(&env, &line).await.trim().to_owned();
    assert!(id.contains('-'), "{id}");
    let described = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(described.result, Some(json!({"slept_ms": 100})));
    worker.stop().await;
}
