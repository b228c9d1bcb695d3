//! The start-up check of the Redis settings that decide what a crash can lose: each
//! unsafe one is named in a warning, and a safe server gets none.

use std::time::{Duration, Instant};

use flotilla_tests::{FlotillaProcess, RedisServer, WorkerProcess};

/// How long a safe server's silence is waited out after the start line: the check runs
/// beside the start, one INFO and one CONFIG GET (retried once a second, in
/// `warn_if_unsafe`, only while Redis does not answer), so by then it has said all it
/// would.
const CHECK_DONE: Duration = Duration::from_secs(1);

/// What a process says about the unsafe server: a line for each setting.
const UNSAFE_SAID: [&str; 2] = ["set appendonly yes", "set maxmemory-policy noeviction"];

/// The log of `process` once it has said `started` and then each of `expected` (the check
/// runs beside its start), or, with nothing expected, once the check has had its time.
/// Should something expected not come within the deadline, the log is returned as it is,
/// for the caller's assertions to say what is missing.
fn log_after_start(process: &FlotillaProcess, started: &str, expected: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !process.log().contains(started) {
        assert!(
            Instant::now() < deadline,
            "no {started:?} in:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if expected.is_empty() {
        // Proves something is not said: see CHECK_DONE.
        std::thread::sleep(CHECK_DONE);
    }
    loop {
        let log = process.log();
        if expected.iter().all(|said| log.contains(*said)) || Instant::now() >= deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn workers_and_schedulers_warn_about_settings_that_can_lose_jobs() {
    let unsafe_redis = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let worker = WorkerProcess::start(&unsafe_redis.url(), &[], None);
    let scheduler = FlotillaProcess::scheduler(&unsafe_redis.url(), &[], None);
    for (log, who) in [
        (
            log_after_start(&worker, "worker starting", &UNSAFE_SAID),
            "worker",
        ),
        (
            log_after_start(&scheduler, "scheduler starting", &UNSAFE_SAID),
            "scheduler",
        ),
    ] {
        assert!(
            log.contains("Redis appendonly is \"no\"") && log.contains("set appendonly yes"),
            "the {who} names appendonly:\n{log}"
        );
        assert!(
            log.contains("Redis maxmemory-policy is \"allkeys-lru\"")
                && log.contains("set maxmemory-policy noeviction"),
            "the {who} names the eviction policy:\n{log}"
        );
    }

    let safe_redis = RedisServer::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let worker = WorkerProcess::start(&safe_redis.url(), &[], None);
    let log = log_after_start(&worker, "worker starting", &[]);
    assert!(
        !log.contains("appendonly") && !log.contains("maxmemory-policy"),
        "a safe Redis gets no warning:\n{log}"
    );
}
