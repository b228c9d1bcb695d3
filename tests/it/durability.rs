//! The start-up check of the Redis settings that decide what a crash can lose: each
//! unsafe one is named in a warning, and a safe server gets none.

use std::time::{Duration, Instant};

use flotilla_tests::{FlotillaProcess, RedisServer, WorkerProcess};

/// The log of `process` once it has said `started` and had a moment more for the check,
/// which runs beside its start.
fn log_after_start(process: &FlotillaProcess, started: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !process.log().contains(started) {
        assert!(
            Instant::now() < deadline,
            "no {started:?} in:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    process.log()
}

#[test]
fn workers_and_schedulers_warn_about_settings_that_can_lose_jobs() {
    let unsafe_redis = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let worker = WorkerProcess::start(&unsafe_redis.url(), &[], None);
    let scheduler = FlotillaProcess::scheduler(&unsafe_redis.url(), &[], None);
    for (log, who) in [
        (log_after_start(&worker, "worker starting"), "worker"),
        (
            log_after_start(&scheduler, "scheduler starting"),
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
    let log = log_after_start(&worker, "worker starting");
    assert!(
        !log.contains("appendonly") && !log.contains("maxmemory-policy"),
        "a safe Redis gets no warning:\n{log}"
    );
}
