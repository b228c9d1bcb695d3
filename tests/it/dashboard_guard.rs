//! The dashboard as a service on a network: it answers only to its own host names, sends
//! the headers that keep a browser from framing, sniffing or caching it, needs the token
//! to read when it listens beyond loopback, logs and limits wrong tokens, shows only the
//! messages it made, bounds its connections and slow clients, and finds a job by its id
//! in a few Redis calls however many keys Redis holds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flotilla_tests::{WorkerProcess, free_local_addr, http_request};

use crate::util::{Env, run_flotilla};

const TOKEN: &str = "guard-token-81d3";

/// Sends `request` as it is and returns what came back (empty when the connection was
/// closed without an answer).
fn raw(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("writes");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn get_with_host(addr: &str, host: &str, path: &str) -> String {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn it_answers_only_its_own_hosts_with_headers_that_keep_browsers_safe() {
    let env = Env::start().await;
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let _dashboard = WorkerProcess::dashboard_with(
        &env.url(),
        &addr,
        Some(TOKEN),
        &["--allowed-host", "jobs.example.test"],
    );
    // A name rebound to this address by a page elsewhere is refused, before any read.
    let rebound = get_with_host(&addr, &format!("evil.example:{port}"), "/api/v1/overview");
    assert_eq!(status_of(&rebound), 421, "{rebound}");
    assert!(!rebound.contains("queues"), "{rebound}");
    for host in [
        addr.clone(),
        format!("localhost:{port}"),
        "jobs.example.test".to_owned(),
    ] {
        let page = get_with_host(&addr, &host, "/");
        assert_eq!(status_of(&page), 200, "{host}: {page}");
        let head = page
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_lowercase();
        for header in [
            "content-security-policy: default-src 'none';",
            "frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: same-origin",
            "cache-control: no-store",
        ] {
            assert!(head.contains(header), "{host}: no {header} in\n{head}");
        }
    }
    // A banner's text never comes from the URL.
    let page = get_with_host(
        &addr,
        &addr,
        "/?flash=Your%20token%20expired%2C%20paste%20it%20at%20evil.example",
    );
    assert_eq!(status_of(&page), 200);
    assert!(!page.contains("evil.example"), "{page}");
}

#[tokio::test]
async fn beyond_loopback_reads_need_the_token() {
    let env = Env::start().await;
    let port = free_local_addr()
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let everywhere = format!("0.0.0.0:{port}");
    let local = format!("127.0.0.1:{port}");

    // Without a token there is nothing to read with: it will not start.
    let output = std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(["dashboard", "--listen", &everywhere])
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_DASHBOARD_TOKEN")
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    assert!(stderr.contains("reads need a token"), "{stderr}");

    let _dashboard = WorkerProcess::dashboard_with(&env.url(), &everywhere, Some(TOKEN), &[]);
    let get = |path: &str, headers: &[(&str, &str)]| {
        http_request(&local, "GET", path, headers, "").expect("answers")
    };
    let refused = get("/api/v1/overview", &[]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("Bearer"), "{}", refused.body);
    assert_eq!(get("/api/v1/jobs/default/x", &[]).status, 401);
    let page = get("/jobs?status=dead", &[]);
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/login"));
    assert_eq!(get("/healthz", &[]).status, 200);
    assert_eq!(get("/login", &[]).status, 200);
    let bearer = format!("Bearer {TOKEN}");
    let read = get("/api/v1/overview", &[("Authorization", bearer.as_str())]);
    assert_eq!(read.status, 200, "{}", read.body);
}

#[tokio::test]
async fn wrong_tokens_are_logged_and_an_address_that_keeps_guessing_is_refused() {
    let env = Env::start().await;
    let addr = free_local_addr();
    let dashboard = WorkerProcess::dashboard(&env.url(), &addr, Some(TOKEN));
    let wrong = http_request(
        &addr,
        "POST",
        "/api/v1/queues/default/pause",
        &[("Authorization", "Bearer guess")],
        "",
    )
    .expect("answers");
    assert_eq!(wrong.status, 401);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for _ in 1..10 {
        let attempt =
            http_request(&addr, "POST", "/login", &form, "name=eve&token=guess").expect("answers");
        assert_eq!(attempt.status, 401, "{}", attempt.body);
    }
    // Ten wrong tokens in a minute: even the right one is refused from this address now.
    let limited = http_request(
        &addr,
        "POST",
        "/login",
        &form,
        &format!("name=eve&token={TOKEN}"),
    )
    .expect("answers");
    assert_eq!(limited.status, 429, "{}", limited.body);
    let log = dashboard.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dashboard change refused"))
        .collect();
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("POST /api/v1/queues/default/pause") && l.contains("401")),
        "{log}"
    );
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("POST /login") && l.contains("429")),
        "{log}"
    );
    assert!(!log.contains("guess"), "a guessed token was logged: {log}");
}

#[tokio::test]
async fn slow_and_idle_clients_and_floods_cannot_hold_it() {
    const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
    let env = Env::start().await;
    let addr = free_local_addr();
    let header_timeout = format!("{}s", HEADER_TIMEOUT.as_secs());
    let _dashboard = WorkerProcess::dashboard_with(
        &env.url(),
        &addr,
        None,
        &[
            "--max-connections",
            "3",
            "--header-read-timeout",
            header_timeout.as_str(),
        ],
    );
    // Half a request, then nothing: closed once the headers are late.
    let began = Instant::now();
    let slow = raw(&addr, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    assert!(!slow.contains("200 OK"), "{slow}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "a slow client was held {:?}",
        began.elapsed()
    );
    // Three idle connections take every slot: a fourth is closed at once, unanswered.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&addr).expect("connects"))
        .collect();
    // The server takes them in, which shows nowhere on this side (a connect completes in
    // the kernel's backlog): a fifth of the header timeout, well before it closes them.
    std::thread::sleep(HEADER_TIMEOUT / 5);
    let refused = raw(&addr, "GET /healthz HTTP/1.0\r\n\r\n");
    assert!(refused.is_empty(), "answered over the limit: {refused}");
    // The idle ones are closed after the header timeout (each reads to its end then; one
    // held open ends the read at its timeout, and the request below says so), and the
    // slots are free again.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(HEADER_TIMEOUT * 10))
            .expect("timeout");
        let _ = stream.read_to_end(&mut Vec::new());
    }
    let answered = raw(&addr, "GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&answered), 200, "{answered}");
}

/// Commands Redis ran since the last `CONFIG RESETSTAT`, by name.
async fn commands_run(env: &Env) -> Vec<(String, u64)> {
    let info: String = env.cmd(redis::cmd("INFO").arg("commandstats")).await;
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test]
async fn a_job_is_found_by_its_id_in_a_few_calls_however_many_keys_redis_holds() {
    let env = Env::start_with(&["--enable-debug-command", "yes"]).await;
    env.cmd::<()>(
        redis::cmd("DEBUG")
            .arg("POPULATE")
            .arg(200_000)
            .arg("other:key"),
    )
    .await;
    env.enqueue("noop", serde_json::json!({})).await;
    let addr = free_local_addr();
    let _dashboard = WorkerProcess::dashboard(&env.url(), &addr, None);
    for id in ["no-such-job", "1700000000000-0"] {
        env.cmd::<()>(redis::cmd("CONFIG").arg("RESETSTAT")).await;
        let path = format!("/api/v1/jobs/default/{id}");
        let answer = http_request(&addr, "GET", &path, &[], "").expect("answers");
        assert_eq!(answer.status, 404, "{}", answer.body);
        let run = commands_run(&env).await;
        let calls: u64 = run
            .iter()
            .filter(|(name, _)| name != "config" && name != "info")
            .map(|(_, calls)| calls)
            .sum();
        assert!(
            !run.iter().any(|(name, _)| name == "scan" || name == "keys"),
            "{id}: the keyspace was scanned: {run:?}"
        );
        assert!(calls <= 15, "{id}: {calls} Redis calls: {run:?}");
    }
    // The command line's search by the first characters of an id stays in Flotilla's own
    // indexes too.
    env.cmd::<()>(redis::cmd("CONFIG").arg("RESETSTAT")).await;
    let output = std::process::Command::new(flotilla_tests::flotilla_bin())
        .args(["jobs", "show", "zz-nothing"])
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let run = commands_run(&env).await;
    assert!(
        !run.iter().any(|(name, _)| name == "scan" || name == "keys"),
        "jobs show scanned the keyspace: {run:?}"
    );
    // And a prefix that names one job still finds it.
    let id = env
        .enqueue_job(
            flotilla_producer::NewJob::new("noop", &serde_json::json!({}))
                .expect("job")
                .id("findable-7d1"),
        )
        .await;
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", "findable-7"]);
    assert!(shown.contains(&id), "{shown}");
}
