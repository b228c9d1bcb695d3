//! The ACL rules of docs/SECURITY.md, taken from the document itself: every role serves
//! its part of the core scenarios under only its rule, and Redis refuses nothing.

use std::time::Duration;

use flotilla_producer::{NewJob, Producer};
use flotilla_proto::Status;
use flotilla_tests::{
    FlotillaProcess, WorkerProcess, free_local_addr, http_get, http_request, repo_root,
};
use serde_json::json;

use crate::util::{CoreJobs, Env, LONG, crash_mid_job, run_flotilla, wait_schedule_ran};

pub(crate) const PASSWORD: &str = "s3cret-pw";

/// The `ACL SETUSER` lines of docs/SECURITY.md, one per role, as arguments.
pub(crate) fn documented_rules() -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(repo_root().join("docs/SECURITY.md")).expect("SECURITY.md");
    let rules: Vec<Vec<String>> = doc
        .lines()
        .filter(|line| line.starts_with("ACL SETUSER flotilla-"))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .map(|word| match word {
                    ">CHANGE-ME" => format!(">{PASSWORD}"),
                    other => other.to_owned(),
                })
                .collect()
        })
        .collect();
    let users: Vec<&str> = rules.iter().map(|rule| rule[1].as_str()).collect();
    assert_eq!(
        users,
        [
            "flotilla-worker",
            "flotilla-producer",
            "flotilla-scheduler",
            "flotilla-operator"
        ],
        "SECURITY.md lists one rule per role"
    );
    rules
}

/// What Redis refused since the log was last reset, one line per entry.
async fn refusals(env: &Env) -> Vec<String> {
    let log: Vec<Vec<redis::Value>> = env.cmd(redis::cmd("ACL").arg("LOG").arg(100)).await;
    log.into_iter()
        .map(|entry| {
            let fields: Vec<String> = entry
                .into_iter()
                .map(|v| redis::from_redis_value::<String>(v).unwrap_or_else(|_| "?".into()))
                .collect();
            fields.join(" ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_serves_its_part_under_only_its_documented_rule() {
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    // Durable, as SECURITY.md recommends, so the start-up check has nothing to warn about.
    let env = Env::start_with(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--appendonly",
        "yes",
    ])
    .await;
    for rule in documented_rules() {
        let mut cmd = redis::cmd("ACL");
        cmd.arg(&rule);
        env.cmd::<()>(&mut cmd).await;
    }
    env.cmd::<()>(redis::cmd("ACL").arg("LOG").arg("RESET"))
        .await;
    let url = |user: &str| format!("redis://{user}:{PASSWORD}@{addr}");

    // The worker raises `low` to two partitions; the operator raises it once more below.
    let worker = WorkerProcess::start(
        &url("flotilla-worker"),
        &[],
        Some("[partitions]\nlow = 2\n"),
    );
    let scheduler = FlotillaProcess::scheduler(
        &url("flotilla-scheduler"),
        &[],
        Some("[schedules.tick]\nevery = \"1s\"\ntype = \"noop\"\n"),
    );
    let producer = Producer::connect(&url("flotilla-producer"))
        .await
        .expect("the producer connects under its rule");

    let jobs = CoreJobs::enqueue(&producer).await;
    let unique = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .unique("report-42", Duration::from_secs(60)),
        )
        .await
        .expect("unique enqueue")
        .id;
    let far = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .delay(Duration::from_secs(3600)),
        )
        .await
        .expect("a job for later")
        .id;

    jobs.wait_done(&env.conn, &env.keys).await;
    env.wait_status("default", &unique, Status::Completed, LONG)
        .await;
    wait_schedule_ran(&env.conn, &env.keys, "tick").await;
    let partitioned = NewJob::new("noop", &json!({})).expect("job").queue("low");
    let partitioned = producer
        .enqueue(partitioned.id("acl-partitioned"))
        .await
        .expect("an enqueue on a partitioned queue");
    env.wait_status(&partitioned.queue, &partitioned.id, Status::Completed, LONG)
        .await;

    let operator_url = url("flotilla-operator");
    for args in [
        &["queues", "stats"][..],
        &["jobs", "list", "--status", "dead"],
        &["jobs", "show", &jobs.retried],
        &["dead", "list"],
        &["dead", "show", &jobs.dies],
        &["workers", "list"],
        &["schedules", "list"],
        &["schedules", "status"],
        &["alerts"],
        &["reconcile"],
        &["queues", "pause", "default"],
        &["queues", "resume", "default"],
        &["queues", "partition", "low", "3"],
        &["jobs", "cancel", &far],
        &["jobs", "delete", &far, "--yes"],
        &["jobs", "retry", &jobs.dies],
        &[
            "jobs",
            "purge",
            "--completed",
            "--older-than",
            "0s",
            "--yes",
        ],
    ] {
        run_flotilla(&operator_url, &[], args);
    }
    env.wait_status("default", &jobs.dies, Status::Dead, LONG)
        .await;
    // The running worker takes up the raised count (within ten seconds) under its rule.
    let fresh = Producer::connect(&url("flotilla-producer"))
        .await
        .expect("a second producer, which reads the raised count");
    let third = NewJob::new("noop", &json!({})).expect("job").queue("low#2");
    let third = fresh
        .enqueue(third.id("acl-third-partition"))
        .await
        .expect("an enqueue to the raised partition");
    env.wait_status("low#2", &third.id, Status::Completed, LONG)
        .await;

    let listen = free_local_addr();
    let dashboard = FlotillaProcess::dashboard(&operator_url, &listen, Some("token"));
    for path in [
        "/",
        "/api/v1/overview",
        "/api/v1/queues",
        "/api/v1/queues/default",
        "/api/v1/jobs?status=dead",
        "/api/v1/workers",
        "/api/v1/schedules",
        "/api/v1/alerts",
    ] {
        let (status, body) = http_get(&listen, path).expect("the dashboard answers");
        assert_eq!(status, 200, "GET {path} as flotilla-operator: {body}");
    }
    let bearer = [("Authorization", "Bearer token")];
    for path in [
        "/api/v1/queues/default/pause",
        "/api/v1/queues/default/resume",
    ] {
        let response = http_request(&listen, "POST", path, &bearer, "").expect("answers");
        assert_eq!(response.status, 200, "POST {path}: {}", response.body);
    }

    // Crash recovery: a worker killed mid-job, its job reclaimed by the next one.
    let mut next_worker = crash_mid_job(&env.conn, &env.keys, &producer, worker, || {
        WorkerProcess::start(&url("flotilla-worker"), &[], None)
    })
    .await;
    // Graceful shutdown: a running job handed back to its queue.
    let handed_back = producer
        .enqueue(
            NewJob::new("sleep", &json!({ "ms": 60_000 }))
                .expect("job")
                .id("handed-back"),
        )
        .await
        .expect("enqueue")
        .id;
    env.wait_status("default", &handed_back, Status::Running, LONG)
        .await;
    next_worker.signal("TERM");
    assert!(
        next_worker.wait_exit(LONG).is_some(),
        "the worker stops on SIGTERM"
    );
    env.wait_status("default", &handed_back, Status::Pending, LONG)
        .await;

    let refused = refusals(&env).await;
    assert!(
        refused.is_empty(),
        "Redis refused commands of the documented rules:\n{}\nworker log:\n{}\nscheduler log:\n{}\ndashboard log:\n{}",
        refused.join("\n"),
        next_worker.log(),
        scheduler.log(),
        dashboard.log()
    );
}
