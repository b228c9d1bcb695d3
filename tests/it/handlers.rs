//! The built-in `exec` and `http` handlers, through which any language serves jobs.

use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{InProcessWorker, fast_config, http_server, http_server_bytes};
use flotilla_worker::Registry;
use flotilla_worker::builtin::{ExecHandler, HttpHandler};
use serde_json::json;

use crate::util::{Env, LONG};

pub fn exec(script: &str) -> ExecHandler {
    ExecHandler::new(["sh", "-c", script])
}

pub fn http(url: &str) -> HttpHandler {
    HttpHandler::new(url, &Default::default()).expect("valid url")
}

#[tokio::test]
async fn exec_feeds_the_payload_on_stdin_and_stores_stdout() {
    let env = Env::start().await;
    let mut registry = Registry::new();
    registry.register(
        "echo",
        exec(r#"read input; printf '{"got": %s, "attempt": %s}' "$input" "$FLOTILLA_ATTEMPT""#),
    );
    registry.register("broken", exec("echo 'disk full' >&2; exit 3"));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env.enqueue("echo", json!({"to": "a@b.c"})).await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(
        record.result,
        Some(json!({"got": {"to": "a@b.c"}, "attempt": 1}))
    );
    let id = env
        .enqueue_job(
            NewJob::new("broken", &json!({}))
                .expect("encodes")
                .max_attempts(2),
        )
        .await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 2);
    let error = record.error.expect("error");
    assert!(
        error.contains("exited with status 3") && error.contains("disk full"),
        "{error}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn exec_kills_the_child_on_timeout() {
    // How long the child sleeps before it leaves its marker.
    const CHILD_SLEEPS: Duration = Duration::from_secs(1);
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let marker = dir.path().join("finished");
    let mut registry = Registry::new();
    registry.register(
        "slow",
        exec(&format!(
            "sleep {}; touch {}",
            CHILD_SLEEPS.as_secs(),
            marker.display()
        )),
    );
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let job = NewJob::new("slow", &json!({}))
        .expect("encodes")
        .timeout(Duration::from_millis(200))
        .max_attempts(1);
    let id = env.enqueue_job(job).await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timed out"))
    );
    // Proves something does not happen: a child left running would have left its marker
    // by the end of its sleep, which this outlasts by half.
    tokio::time::sleep(CHILD_SLEEPS * 3 / 2).await;
    assert!(!marker.exists(), "the child outlived its timeout");
    worker.stop().await;
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";
const UNAVAILABLE: &str =
    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy";
const TOO_MANY: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\ncontent-length: 7\r\nconnection: close\r\n\r\nno such";

#[tokio::test]
async fn http_retries_5xx_honours_retry_after_and_succeeds_on_2xx() {
    let env = Env::start().await;
    let (url, bodies) = http_server(vec![UNAVAILABLE, TOO_MANY, OK]);
    let mut registry = Registry::new();
    registry.register("notify", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let started = std::time::Instant::now();
    let id = env
        .enqueue_job(
            NewJob::new("notify", &json!({"user": 7}))
                .expect("encodes")
                .max_attempts(5),
        )
        .await;
    let record = env
        .wait_status("default", &id, Status::Completed, LONG)
        .await;
    assert_eq!(record.attempts, 3);
    assert_eq!(record.result, Some(json!({"ok": true})));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(
        bodies.lock().expect("lock").first().map(String::as_str),
        Some(r#"{"user":7}"#)
    );
    worker.stop().await;
}

#[tokio::test]
async fn http_gives_up_on_4xx() {
    let env = Env::start().await;
    let (url, _) = http_server(vec![BAD_REQUEST]);
    let mut registry = Registry::new();
    registry.register("notify", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env
        .enqueue_job(
            NewJob::new("notify", &json!({}))
                .expect("encodes")
                .max_attempts(5),
        )
        .await;
    let record = env.wait_status("default", &id, Status::Dead, LONG).await;
    assert_eq!(record.attempts, 1);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("400") && e.contains("no such")),
        "{:?}",
        record.error
    );
    worker.stop().await;
}

/// A 200 whose body is not UTF-8: `ok ` then the byte 0xFF.
const OK_NOT_UTF8: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nok \xff";

#[tokio::test]
async fn a_large_payload_reaches_both_handlers_whole_and_output_that_is_not_utf8_stays_readable() {
    let env = Env::start().await;
    let (url, bodies) = http_server_bytes(vec![OK_NOT_UTF8]);
    let mut registry = Registry::new();
    // Counts what arrives on stdin, so a payload cut short (or a pipe that stalls while
    // the child writes) shows.
    registry.register("count_stdin", exec("wc -c | tr -d ' '"));
    registry.register("latin1", exec(r"printf 'caf\351'"));
    registry.register("latin1_fails", exec(r"printf 'd\351j\340 vu' >&2; exit 4"));
    registry.register("notify", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    // Close to the 512 KiB payload limit, well over any pipe's buffer.
    let large = json!({ "blob": "x".repeat(500_000) });
    let large_len = large.to_string().len();

    let counted = env.enqueue("count_stdin", large.clone()).await;
    let record = env
        .wait_status("default", &counted, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!(large_len)));

    let posted = env.enqueue("notify", large).await;
    let record = env
        .wait_status("default", &posted, Status::Completed, LONG)
        .await;
    assert_eq!(
        bodies.lock().expect("lock").first().map(String::len),
        Some(large_len),
        "the POST carried the whole payload"
    );
    // Output that is not UTF-8 is kept as text, each bad byte replaced by U+FFFD.
    assert_eq!(record.result, Some(json!("ok \u{FFFD}")));
    let latin1 = env.enqueue("latin1", json!({})).await;
    let record = env
        .wait_status("default", &latin1, Status::Completed, LONG)
        .await;
    assert_eq!(record.result, Some(json!("caf\u{FFFD}")));
    let failed = env
        .enqueue_job(
            NewJob::new("latin1_fails", &json!({}))
                .expect("encodes")
                .max_attempts(1),
        )
        .await;
    let record = env
        .wait_status("default", &failed, Status::Dead, LONG)
        .await;
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("exited with status 4") && error.contains("d\u{FFFD}j\u{FFFD} vu"),
        "{error}"
    );
    worker.stop().await;
}
