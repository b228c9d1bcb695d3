//! Hostile input and faults from outside: secrets in errors, runaway child processes,
//! oversized results, forged log lines, Redis coming back empty, and settings that would
//! quietly mean something surprising.

use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{
    InProcessWorker, RedisServer, WorkerProcess, eventually, fast_config, http_server,
};
use flotilla_worker::builtin::HttpHandler;
use flotilla_worker::{JobContext, Registry};
use serde_json::json;

use crate::handlers::{exec, http};
use crate::util::{Env, Fields, LONG, is_dead};

fn flotilla_with_url(url: &str, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .args(args)
        .env("FLOTILLA_REDIS_URL", url)
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    (output, started.elapsed())
}

/// Asserts a failed command said one clear line without the secret, quickly.
fn assert_one_clear_line(output: &std::process::Output, took: Duration, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit 0 with {stderr}");
    assert!(!stderr.contains("s3cretpw"), "secret shown: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{stderr} should say {needle}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[tokio::test]
async fn redis_urls_are_redacted_and_connection_errors_are_one_line() {
    // Nothing listens on port 1: refused at once.
    let (output, took) = flotilla_with_url(
        "redis://:s3cretpw@127.0.0.1:1",
        &["enqueue", "--type", "noop"],
    );
    assert_one_clear_line(&output, took, "redis://:***@127.0.0.1:1");
    let (output, took) = flotilla_with_url("redis//:s3cretpw@nowhere", &["jobs", "show", "x"]);
    assert_one_clear_line(&output, took, "not a valid Redis URL");

    // A server that wants a password: NOAUTH is said once, in plain words.
    let server = RedisServer::start_with(&["--requirepass", "s3cretpw"]);
    let (output, took) = flotilla_with_url(&server.url(), &["enqueue", "--type", "noop"]);
    assert_one_clear_line(&output, took, "wants a password");
    let with_password = format!("{}?pass=s3cretpw", server.url());
    let (output, _) = flotilla_with_url(&with_password, &["enqueue", "--type", "noop"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Something that is not Redis at all.
    let (not_redis, _) = http_server(vec!["HTTP/1.1 400 Bad Request\r\n\r\n"; 4]);
    let port = not_redis
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (output, took) = flotilla_with_url(
        &format!("redis://:s3cretpw@{port}"),
        &["enqueue", "--type", "noop"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        !stderr.contains("s3cretpw") && !stderr.contains("Unexpected"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

async fn grandchild_pid(pid_file: &std::path::Path) -> String {
    eventually(LONG, "the background child to write its pid", || async {
        std::fs::read_to_string(pid_file)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .await
}

#[tokio::test]
async fn exec_timeout_ends_the_whole_process_group() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pid_file = dir.path().join("pid");
    let mut registry = Registry::new();
    registry.register(
        "spawner",
        exec(&format!(
            "sleep 300 & echo $! > {}; wait",
            pid_file.display()
        )),
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let job = NewJob::new("spawner", &json!({}))
        .expect("encodes")
        .timeout(Duration::from_millis(500))
        .max_attempts(1);
    let id = env.enqueue_job(job).await;
    let pid = grandchild_pid(&pid_file).await;
    env.wait_status("default", &id, Status::Dead, LONG).await;
    eventually(LONG, "the background sleep to be ended", || async {
        is_dead(&pid).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_cancelled_exec_job_that_ignores_sigterm_is_killed_after_its_grace() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pid_file = dir.path().join("pid");
    let mut handler = exec(&format!(
        "trap '' TERM; sleep 300 & echo $! > {}; wait",
        pid_file.display()
    ));
    handler.kill_grace = Duration::from_millis(300);
    let mut registry = Registry::new();
    registry.register("stubborn", handler);
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("stubborn", json!({})).await;
    let pid = grandchild_pid(&pid_file).await;
    env.producer.cancel("default", &id).await.expect("cancel");
    eventually(LONG, "the TERM-ignoring sleep to be killed", || async {
        is_dead(&pid).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn results_over_the_limit_fail_and_never_reach_redis() {
    let env = Env::start().await;
    let (url, _) = http_server(vec![Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 3000\r\nconnection: close\r\n\r\n{}",
            "b".repeat(3000)
        )
        .into_boxed_str(),
    )]);
    let mut registry = Registry::new();
    registry.register("chatty", exec("head -c 20000 /dev/zero | tr '\\0' a"));
    registry.register("fits", exec("printf '\"%s\"' small"));
    registry.register("notify", http(&url));
    registry.register_fn(
        "big_value",
        |_: serde_json::Value, _ctx: JobContext| async {
            Ok::<_, flotilla_worker::HandlerError>(json!({ "blob": "c".repeat(5000) }))
        },
    );
    let mut config = fast_config();
    config.jobs.limits.max_result_bytes = 1000;
    let worker = InProcessWorker::start(&env.url(), config, registry).await;
    for job_type in ["chatty", "notify", "big_value"] {
        let job = NewJob::new(job_type, &json!({}))
            .expect("encodes")
            .max_attempts(3);
        let id = env.enqueue_job(job).await;
        let record = env.wait_status("default", &id, Status::Dead, LONG).await;
        let error = record.error.unwrap_or_default();
        assert!(error.contains("max_result_bytes"), "{job_type}: {error}");
        assert_eq!(record.attempts, 1, "{job_type}: retrying cannot help");
        assert_eq!(
            record.result, None,
            "{job_type}: nothing over the limit is kept"
        );
    }
    let id = env.enqueue("fits", json!({})).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!("small")));
    worker.stop().await;
}

#[tokio::test]
async fn http_errors_keep_their_cause_and_bad_settings_are_refused_up_front() {
    let env = Env::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/jobs", closed.local_addr().expect("addr"));
    drop(closed);
    let mut registry = Registry::new();
    registry.register("notify", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let job = NewJob::new("notify", &json!({}))
        .expect("encodes")
        .max_attempts(1);
    let id = env.enqueue_job(job).await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    let error = record.error.unwrap_or_default().to_lowercase();
    assert!(error.contains("refused"), "{error}");
    worker.stop().await;

    let header = [("x-token".to_owned(), "a\r\nforged: yes".to_owned())].into();
    assert!(HttpHandler::new("http://example.invalid/", &header).is_err());
    assert!(HttpHandler::new("http//example.invalid", &Default::default()).is_err());
    assert!(HttpHandler::new("ftp://example.invalid/", &Default::default()).is_err());
}

#[tokio::test]
async fn malformed_raw_entries_are_dead_lettered_with_a_warning_that_forges_nothing() {
    let env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_LOG_FORMAT", "json")], None);
    let cases: [(Fields, &str); 6] = [
        (
            &[("type", b"noop\r\nINFO forged line")],
            "control characters",
        ),
        (&[("id", b"a\nb"), ("type", b"noop")], "control characters"),
        (
            &[("type", b"noop"), ("payload", b"{\"a\": \"\xff\"}")],
            "json",
        ),
        (&[("type", b"noop"), ("timeout", b"0")], "at least 1ms"),
        (
            &[("type", b"noop"), ("max_attempts", b"123456")],
            "from 1 to 10000",
        ),
        // An id but no type, naming no job: dead-lettered with the same warning and the
        // reason PROTOCOL.md gives.
        (
            &[("id", b"no-such-job")],
            "entry has neither an `id` of a known job nor a `type`",
        ),
    ];
    let mut entries = Vec::new();
    for (fields, _) in &cases {
        entries.push(env.xadd("default", fields).await);
    }
    let dead = eventually(LONG, "every entry to be dead-lettered", || async {
        let dead = env.dead_entries("default").await;
        (dead.len() == cases.len()).then_some(dead)
    })
    .await;
    for ((_, needle), entry) in cases.iter().zip(&entries) {
        let record = dead
            .iter()
            .find(|d| d.get("error").is_some_and(|e| e.contains(needle)))
            .unwrap_or_else(|| panic!("no dead entry says {needle}: {dead:?}"));
        let id = record.get("id").cloned().unwrap_or_default();
        assert!(!id.contains('\n'), "a malformed id never becomes a job id");
        let warned = eventually(LONG, "a warning for each dead-lettered entry", || async {
            worker.json_logs().into_iter().find(|line| {
                line["level"] == "WARN"
                    && line["fields"]["entry"] == entry.as_str()
                    && line["fields"]["message"] == "dead-lettered a malformed entry"
            })
        })
        .await;
        assert!(warned["fields"]["reason"].is_string(), "{warned}");
    }
    assert!(
        !worker.log().lines().any(|l| l.starts_with("INFO forged")),
        "a control character wrote a log line of its own"
    );
}

#[tokio::test]
async fn a_raw_entry_with_run_at_waits_until_then() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let (secs, _): (u64, u64) = env.cmd(&mut redis::cmd("TIME")).await;
    let run_at = secs * 1000 + 1500;
    let entry = env
        .xadd(
            "default",
            &[("type", b"noop"), ("run_at", run_at.to_string().as_bytes())],
        )
        .await;
    let scheduled = env
        .wait_status("default", &entry, Status::Scheduled, LONG)
        .await;
    assert_eq!(scheduled.run_at, Some(run_at));
    let done = env
        .wait_status("default", &entry, Status::Completed, LONG)
        .await;
    assert!(
        done.started_at.is_some_and(|s| s >= run_at),
        "started at {:?}, due {run_at}",
        done.started_at
    );
    worker.stop().await;
}

/// `delay` counts from the entry's own id (the server's clock at the XADD), so a worker
/// that reads the entry late does not add its lateness; `unique` on a raw entry is refused
/// with the way to do it, since a raw XADD cannot hold a unique key atomically.
#[tokio::test]
async fn a_raw_entry_with_a_delay_waits_from_its_xadd_and_a_raw_unique_is_refused() {
    const DELAY_MS: u64 = 1500;
    let env = Env::start().await;
    let delay = format!("{DELAY_MS}ms").into_bytes();
    let entry = env
        .xadd("default", &[("type", b"noop"), ("delay", &delay)])
        .await;
    let refused = env
        .xadd("default", &[("type", b"noop"), ("unique", b"report-7")])
        .await;
    let added_ms: u64 = entry
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .expect("an entry id");
    let due = added_ms + DELAY_MS;
    // The worker comes late, half-way through the delay: the wait still ends the delay
    // after the XADD. The time is the point.
    tokio::time::sleep(Duration::from_millis(DELAY_MS / 2)).await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let scheduled = env
        .wait_status("default", &entry, Status::Scheduled, LONG)
        .await;
    assert_eq!(scheduled.run_at, Some(due));
    let done = env
        .wait_status("default", &entry, Status::Completed, LONG)
        .await;
    assert!(
        done.started_at
            .is_some_and(|s| (due..due + 1000).contains(&s)),
        "started at {:?}, added at {added_ms}",
        done.started_at
    );
    let dead = env
        .wait_status("default", &refused, Status::Dead, LONG)
        .await;
    let error = dead.error.unwrap_or_default();
    assert!(
        error.contains("unique") && error.contains("protocol/v2/enqueue.lua"),
        "{error}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn the_dead_letter_stream_keeps_what_retention_keeps() {
    let env = Env::start().await;
    let mut config = fast_config();
    let retention = Duration::from_secs(1);
    config.jobs.retention.dead = retention;
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;
    let fail = |_: ()| {
        NewJob::new("fail", &json!({"times": -1}))
            .expect("encodes")
            .max_attempts(1)
    };
    let first = env.enqueue_job(fail(())).await;
    env.wait_status("default", &first, Status::Dead, LONG).await;
    // The time is the point: the first dead letter grows older than the retention.
    tokio::time::sleep(retention + Duration::from_millis(100)).await;
    let second = env.enqueue_job(fail(())).await;
    env.wait_status("default", &second, Status::Dead, LONG)
        .await;
    let ids: Vec<String> = env
        .dead_entries("default")
        .await
        .into_iter()
        .filter_map(|d| d.get("id").cloned())
        .collect();
    assert_eq!(ids, vec![second], "the entry older than retention is gone");
    worker.stop().await;
}

#[tokio::test]
async fn finished_records_are_bounded_by_count_as_well_as_by_age() {
    let env = Env::start().await;
    let mut config = fast_config();
    // One at a time, so jobs finish in the order they were enqueued.
    config.concurrency = 1;
    config.jobs.retention.completed_max_len = 5;
    config.jobs.retention.dead_max_len = 3;
    let worker = InProcessWorker::start(&env.url(), config, Registry::with_builtins()).await;

    // Completions go to the queue's `done` stream, a worker's batch to an entry, trimmed
    // by whole entries: it keeps the newest 5, and at most one batch more.
    let mut completed = Vec::new();
    for _ in 0..250 {
        completed.push(env.enqueue("noop", json!(null)).await);
    }
    let last = completed.last().expect("jobs").clone();
    env.wait_status("default", &last, Status::Completed, LONG)
        .await;
    let kept = env.completions("default").await.len();
    assert!((5..=10).contains(&kept), "done keeps {kept} completions");
    assert!(
        env.record("default", &completed[0]).await.is_none(),
        "the oldest completion beyond the bound is gone"
    );
    for id in &completed[completed.len() - 5..] {
        let record = env.record("default", id).await.expect("kept");
        assert_eq!(record.status, Some(Status::Completed));
    }
    let mut dead = Vec::new();
    for _ in 0..7 {
        let job = NewJob::new("fail", &json!({"times": -1}))
            .expect("encodes")
            .max_attempts(1);
        dead.push(env.enqueue_job(job).await);
    }
    let last = dead.last().expect("jobs").clone();
    env.wait_status("default", &last, Status::Dead, LONG).await;

    let indexed: usize = env
        .cmd(redis::cmd("ZCARD").arg(env.keys.index("default", Status::Dead)))
        .await;
    assert_eq!(indexed, 3, "dead index holds the newest 3");
    let (gone, newest) = dead.split_at(dead.len() - 3);
    for id in gone {
        assert!(
            env.record("default", id).await.is_none(),
            "dead record {id} beyond the newest 3 is deleted"
        );
    }
    for id in newest {
        let record = env.record("default", id).await.expect("kept");
        assert_eq!(record.status, Some(Status::Dead));
    }
    worker.stop().await;
}

#[tokio::test]
async fn redis_restarted_empty_is_named_and_the_group_comes_back_at_once() {
    let mut env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_LOG_FORMAT", "json")], None);
    // With a record, `running` means the worker began the attempt (a fast-path entry reads
    // as running once delivered, which may be before its handler starts: a restart then
    // leaves the worker nothing of its own to notice).
    let id = env.enqueue_with_record("sleep", json!({"ms": 3000})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    env.redis.restart();
    env.reconnect().await;
    let gone = eventually(LONG, "the worker to notice the record is gone", || async {
        worker.json_logs().into_iter().find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("record is gone"))
        })
    })
    .await;
    assert_eq!(gone["fields"]["job"], id.as_str());
    let reclaim_claims: Vec<_> = worker
        .json_logs()
        .into_iter()
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reclaimed by another worker"))
        })
        .collect();
    assert!(
        reclaim_claims.is_empty(),
        "a lost record is not a reclaim: {reclaim_claims:?}"
    );
    // The group is made again and new work runs.
    let after = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &after, Status::Completed, LONG)
        .await;
}

#[tokio::test]
async fn quiet_surprises_are_now_said() {
    let env = Env::start().await;
    let run = |args: &[&str]| flotilla_with_url(&env.url(), args).0;

    // A queue the fleet does not know (a typo, say) is refused, naming those it knows;
    // asked to start it, the job is enqueued, with a warning that no worker serves it.
    let output = run(&["enqueue", "--type", "noop", "--queue", "nosuchqueue"]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("no queue \"nosuchqueue\"") && said.contains("--create-queue"),
        "{said}"
    );
    let known: Vec<String> = env.cmd(redis::cmd("SMEMBERS").arg(env.keys.queues())).await;
    assert!(
        !known.iter().any(|q| q == "nosuchqueue"),
        "the typo was listed"
    );
    let output = run(&[
        "enqueue",
        "--type",
        "noop",
        "--queue",
        "nosuchqueue",
        "--create-queue",
    ]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no live worker serves queue"));
    // And a queue started by mistake can be removed once it holds nothing to run.
    let refused = run(&["queues", "remove", "nosuchqueue", "--yes"]);
    assert!(
        !refused.status.success(),
        "removed a queue with a job waiting"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("still holds jobs"));
    let stream = env.keys.stream("nosuchqueue");
    env.cmd::<()>(redis::cmd("DEL").arg(&stream)).await;
    assert!(
        run(&["queues", "limit", "nosuchqueue", "--concurrency", "2"])
            .status
            .success()
    );
    let removed = run(&["queues", "remove", "nosuchqueue", "--yes"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let known: Vec<String> = env.cmd(redis::cmd("SMEMBERS").arg(env.keys.queues())).await;
    assert!(
        !known.iter().any(|q| q == "nosuchqueue"),
        "still listed: {known:?}"
    );
    let limited: bool = env
        .cmd(
            redis::cmd("HEXISTS")
                .arg(env.keys.limits())
                .arg("nosuchqueue"),
        )
        .await;
    assert!(!limited, "its flow limit outlived it");
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let served = eventually(LONG, "the worker to register", || async {
        let output = run(&["enqueue", "--type", "noop"]);
        (!String::from_utf8_lossy(&output.stderr).contains("no live worker")).then_some(output)
    })
    .await;
    assert!(served.status.success());
    worker.stop().await;

    // An empty prefix is not "every job".
    let output = run(&["jobs", "show", ""]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("empty prefix"));

    // Zero timeouts and out-of-range attempts are refused with their range.
    let output = run(&["enqueue", "--type", "noop", "--timeout", "0s"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 1ms"));
    let output = run(&["enqueue", "--type", "noop", "--max-attempts", "20000"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("10000"));
    assert!(
        env.producer
            .enqueue(
                NewJob::new("noop", &json!({}))
                    .expect("encodes")
                    .timeout(Duration::ZERO)
            )
            .await
            .is_err()
    );

    // Settings whose zero would mean something surprising name their key.
    let dir = tempfile::tempdir().expect("dir");
    for (toml, needle) in [
        (
            "[limits]\nmax_payload_bytes = 0\n",
            "limits.max_payload_bytes",
        ),
        (
            "[limits]\nmax_result_bytes = 0\n",
            "limits.max_result_bytes",
        ),
        ("[retention]\ncompleted = \"0s\"\n", "retention.completed"),
        ("[defaults]\nmax_attempts = 0\n", "defaults.max_attempts"),
        ("[defaults]\nmax_attempts = 99999\n", "from 1 to 10000"),
        ("[defaults]\ntimeout = \"0s\"\n", "defaults.timeout"),
        (
            "[queues]\ncritical = 0\n",
            "toml: queues: weight of \"critical\"",
        ),
        ("[worker]\nlease_ttl = \"1s\"\n", "worker.lease_ttl"),
        (
            "[scheduler]\nsafety_margin = \"9s\"\n",
            "scheduler.safety_margin",
        ),
        (
            "[handlers.hook]\nkind = \"http\"\nurl = \"http//x\"\n",
            "handlers.hook.url",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).expect("write");
        let output = run(&["--config", &path.display().to_string(), "worker"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{toml} was accepted");
        assert!(stderr.contains(needle), "{stderr} should name {needle}");
    }
}

#[tokio::test]
async fn scheduled_jobs_follow_the_settings_defaults() {
    let env = Env::start().await;
    let toml =
        "[defaults]\nmax_attempts = 7\n\n[schedules.tick]\nevery = \"1s\"\ntype = \"noop\"\n";
    let _scheduler = WorkerProcess::scheduler(&env.url(), &[], Some(toml));
    let record = eventually(LONG, "a tick to be fired", || async {
        let keys: Vec<String> = env
            .cmd(redis::cmd("KEYS").arg(format!("{}tick@*", env.keys.job_prefix("default"))))
            .await;
        match keys.first() {
            Some(key) => {
                let id = key.rsplit_once(":job:").map(|(_, id)| id.to_owned())?;
                env.record("default", &id).await
            }
            None => None,
        }
    })
    .await;
    assert_eq!(record.max_attempts, 7);
}
