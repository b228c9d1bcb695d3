//! Every time and duration a job names is bounded (run times up to the year 3000,
//! durations up to ten years), so no absurd number parks a job for ever, is stored as a
//! float, or bricks the tools that read it; a record that holds one anyway (written by an
//! older version, or by hand) can still be shown, cancelled and deleted.

use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::{Backoff, Status};
use flotilla_tests::{
    InProcessWorker, WorkerProcess, eventually, fast_config, free_local_addr, http_server,
};
use flotilla_worker::Registry;
use serde_json::json;

use crate::handlers::http;
use crate::util::{Env, Fields, LONG, run_flotilla};

#[tokio::test]
async fn absurd_times_on_raw_entries_are_dead_lettered_with_their_bounds() {
    let env = Env::start().await;
    let worker = InProcessWorker::start(&env.url(), fast_config(), Registry::with_builtins()).await;
    let cases: [(Fields, &str); 5] = [
        (&[("run_at", b"18446744073709551615")], "the year 3000"),
        (&[("run_at", b"253402300799999")], "the year 3000"),
        (&[("delay", b"18446744073709551615")], "ten years"),
        (&[("backoff", b"fixed:18446744073709551615")], "ten years"),
        (&[("timeout", b"99999999999999")], "ten years"),
    ];
    for (fields, _) in &cases {
        let mut entry: Vec<(&str, &[u8])> = vec![("type", b"noop")];
        entry.extend_from_slice(fields);
        env.xadd("default", &entry).await;
    }
    let dead = eventually(LONG, "every absurd entry to be dead-lettered", || async {
        let dead = env.dead_entries("default").await;
        (dead.len() == cases.len()).then_some(dead)
    })
    .await;
    for (fields, needle) in &cases {
        assert!(
            dead.iter()
                .any(|d| d.get("error").is_some_and(|e| e.contains(needle))),
            "no dead entry says {needle} for {:?}: {dead:?}",
            fields[0].0
        );
    }
    let delayed: usize = env
        .cmd(redis::cmd("ZCARD").arg(env.keys.delayed("default")))
        .await;
    assert_eq!(delayed, 0, "nothing was parked for ever");
    worker.stop().await;
}

#[tokio::test]
async fn producers_refuse_absurd_times_and_durations() {
    let env = Env::start().await;
    let far = std::time::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    let jobs = [
        NewJob::new("noop", &json!({})).expect("job").at(far),
        NewJob::new("noop", &json!({}))
            .expect("job")
            .delay(Duration::from_secs(u64::MAX / 2)),
        NewJob::new("noop", &json!({}))
            .expect("job")
            .backoff(Backoff::Fixed(Duration::from_secs(400 * 365 * 86_400))),
        NewJob::new("noop", &json!({}))
            .expect("job")
            .timeout(Duration::from_secs(u64::MAX / 2)),
        NewJob::new("noop", &json!({}))
            .expect("job")
            .unique("k", Duration::from_secs(u64::MAX / 2)),
    ];
    for job in jobs {
        let error = env.producer.enqueue(job).await.expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains("ten years") || text.contains("the year 3000"),
            "{text}"
        );
    }
    // The published script refuses them too, for producers in other languages.
    let refused = crate::util::published_enqueue(&env, "far-1", "18446744073709551615").await;
    let error = refused.expect_err("BAD_ARG");
    assert_eq!(error.code(), Some("BAD_ARG"), "{error}");
}

#[tokio::test]
async fn an_endless_retry_after_waits_ten_years_at_most_and_stays_readable() {
    let env = Env::start().await;
    let (url, _) = http_server(vec![
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 99999999999\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ]);
    let mut registry = Registry::new();
    registry.register("partner", http(&url));
    let worker = InProcessWorker::start(&env.url(), fast_config(), registry).await;
    let id = env
        .enqueue_job(
            NewJob::new("partner", &json!({}))
                .expect("job")
                .id("partner-1"),
        )
        .await;
    let record = env.wait_status("default", &id, Status::Failed, LONG).await;
    let (secs, _): (u64, u64) = env.cmd(&mut redis::cmd("TIME")).await;
    let next = record.next_run_at.expect("a retry time");
    assert!(
        next <= secs * 1000 + flotilla_proto::MAX_DURATION_MS + 1000,
        "retry at {next}"
    );
    worker.stop().await;
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", &id]);
    assert!(shown.contains("failed"), "{shown}");
}

#[tokio::test]
async fn a_record_holding_an_absurd_number_can_still_be_shown_cancelled_and_deleted() {
    let env = Env::start().await;
    let ids: Vec<String> = ["absurd-1", "absurd-2"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for id in &ids {
        env.enqueue_job(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .id(id)
                .delay(Duration::from_secs(3600))
                // A unique job waits with its record, where the old value was stored.
                .unique(id, Duration::from_secs(7200)),
        )
        .await;
        // What an older version stored for `run_at 18446744073709551615`.
        env.cmd::<()>(
            redis::cmd("HSET")
                .arg(env.keys.job("default", id))
                .arg("run_at")
                .arg("1.8446744073709552e+19"),
        )
        .await;
    }
    let shown = run_flotilla(&env.url(), &[], &["jobs", "show", &ids[0]]);
    assert!(
        shown.contains("1.8446744073709552e+19"),
        "the stored value is shown: {shown}"
    );
    let addr = free_local_addr();
    let _dashboard = WorkerProcess::dashboard(&env.url(), &addr, None);
    let page =
        flotilla_tests::http_request(&addr, "GET", &format!("/jobs/default/{}", ids[0]), &[], "")
            .expect("answers");
    assert_eq!(page.status, 200, "{}", page.body);
    run_flotilla(&env.url(), &[], &["jobs", "cancel", &ids[0]]);
    env.wait_status("default", &ids[0], Status::Cancelled, LONG)
        .await;
    run_flotilla(&env.url(), &[], &["jobs", "delete", &ids[1], "--yes"]);
    assert!(env.record("default", &ids[1]).await.is_none());
}
