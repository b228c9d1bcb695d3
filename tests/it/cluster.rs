//! Redis Cluster: three primaries with a replica each, made by the test. The core
//! scenarios pass on it, jobs spread over the primaries, and a primary killed mid-run
//! fails over to its replica while the fleet keeps going.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_producer::{NewJob, Producer};
use flotilla_proto::{Keys, SharedConnection, Status};
use flotilla_tests::{FlotillaProcess, RedisCluster, WorkerProcess, job_record, venv_tool};
use serde_json::json;

use crate::util::{CoreJobs, LONG, crash_mid_job, run_flotilla, wait_schedule_ran, wait_status};

const QUEUES: [&str; 3] = ["critical", "default", "low"];

async fn cluster_connection(url: &str) -> SharedConnection {
    let target = flotilla_proto::RedisTarget::parse(url).expect("a cluster URL");
    SharedConnection::connect(&target, redis::aio::ConnectionManagerConfig::new())
        .await
        .expect("the cluster answers")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_core_scenarios_pass_on_a_cluster_of_three_primaries_and_three_replicas() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let keys = Keys::default();
    let conn = cluster_connection(&url).await;
    let worker = WorkerProcess::start(&url, &[], None);
    let scheduler = FlotillaProcess::scheduler(
        &url,
        &[],
        Some("[schedules.tick]\nevery = \"1s\"\ntype = \"noop\"\n"),
    );
    let producer = Producer::connect(&url).await.expect("a cluster producer");

    let jobs = CoreJobs::enqueue(&producer).await;
    jobs.wait_done(&conn, &keys).await;
    wait_schedule_ran(&conn, &keys, "tick").await;

    // One bulk call over three queues: one pipeline, split by slot on its way.
    let bulk: Vec<NewJob> = (0..30)
        .map(|i| {
            NewJob::new("noop", &json!({ "i": i }))
                .expect("job")
                .queue(QUEUES[i % 3])
        })
        .collect();
    let enqueued = producer.enqueue_bulk(bulk).await.expect("bulk enqueue");
    for (i, result) in enqueued.into_iter().enumerate() {
        let id = result.expect("each job enqueued").id;
        wait_status(&conn, &keys, QUEUES[i % 3], &id, Status::Completed, LONG).await;
    }
    let owners: HashSet<String> = QUEUES
        .iter()
        .map(|queue| cluster.primary_for(&keys.stream(queue)))
        .collect();
    println!("the three queues live on {} primaries", owners.len());

    // A raw XADD from Python through a cluster client, as another language would.
    let seed = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .expect("a seed")
        .to_owned();
    let (host, port) = seed.split_once(':').expect("host:port");
    let script = format!(
        "from redis.cluster import RedisCluster\n\
         r = RedisCluster(host='{host}', port={port})\n\
         print(r.xadd('{stream}', {{'type': 'noop', 'payload': '{{}}'}}).decode())\n",
        stream = keys.stream("low")
    );
    let output = Command::new(venv_tool("python"))
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let raw_id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    wait_status(&conn, &keys, "low", &raw_id, Status::Completed, LONG).await;

    // Crash recovery: a worker killed mid-job, its job reclaimed by the next one.
    let next_worker = crash_mid_job(&conn, &keys, &producer, worker, || {
        WorkerProcess::start(&url, &[], None)
    })
    .await;

    // The ops CLI reads the whole cluster; reconciliation sweeps each queue's node.
    let flotilla = |args: &[&str]| run_flotilla(&url, &[], args);
    let stats = flotilla(&["queues", "stats"]);
    assert!(QUEUES.iter().all(|q| stats.contains(q)), "{stats}");
    let shown = flotilla(&["jobs", "show", &jobs.retried]);
    assert!(shown.contains("completed"), "{shown}");
    // Records of `default` alone: fails-once, its dead neighbour, the delayed job, the
    // scheduled ticks and the crashed one; a SCAN sent to the wrong node finds none.
    let reconciled = flotilla(&["reconcile"]);
    let examined: usize = reconciled
        .lines()
        .find_map(|line| line.strip_prefix("examined "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(examined >= 5, "{reconciled}");
    for process in [&next_worker, &scheduler] {
        assert!(!process.log().contains("CROSSSLOT"), "{}", process.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_killed_mid_run_fails_over_and_the_fleet_keeps_going() {
    let mut cluster = RedisCluster::start();
    let url = cluster.url();
    let keys = Keys::default();
    let worker = WorkerProcess::start(&url, &[], None);
    let producer = Producer::connect(&url).await.expect("a cluster producer");

    let victim = cluster.primary_for(&keys.stream("default"));
    let mut acknowledged: Vec<(&str, String)> = Vec::new();
    let started = Instant::now();
    let mut killed_at = None;
    let mut failed_calls = 0;
    while started.elapsed() < Duration::from_secs(12) {
        if killed_at.is_none() && started.elapsed() > Duration::from_secs(2) {
            cluster.kill(&victim);
            killed_at = Some(acknowledged.len());
        }
        for queue in QUEUES {
            let job = NewJob::new("noop", &json!({})).expect("job").queue(queue);
            // A call to the dead primary's slots waits until the failover; a caller that
            // gives up after a second counts it as failed (it may still be written).
            match tokio::time::timeout(Duration::from_secs(1), producer.enqueue(job)).await {
                Ok(Ok(enqueued)) => acknowledged.push((queue, enqueued.id)),
                Ok(Err(_)) | Err(_) => failed_calls += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.wait_until_ok();
    let killed_at = killed_at.expect("the primary was killed");

    let conn = cluster_connection(&url).await;
    // Every acknowledged job, until it completes or the deadline passes: those left are lost.
    let mut waiting: Vec<&(&str, String)> = acknowledged.iter().collect();
    let mut twice = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiting.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for job in waiting {
            let (queue, id) = job;
            match job_record(&mut conn.clone(), &keys, queue, id).await {
                Some(record) if record.status == Some(Status::Completed) => {
                    twice += usize::from(record.attempts > 1);
                }
                _ => still.push(job),
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lost: Vec<String> = waiting
        .iter()
        .map(|(queue, id)| format!("{queue}/{id}"))
        .collect();
    println!(
        "failover: {} jobs acknowledged ({killed_at} before the kill), {failed_calls} enqueue calls \
         failed during it, {} lost, {twice} run more than once",
        acknowledged.len(),
        lost.len()
    );
    // Only jobs on the killed primary, acknowledged before its replica had them, may be
    // lost: asynchronous replication allows that much, and no more.
    assert!(
        lost.iter().all(|job| job.starts_with("default/")),
        "lost jobs on queues whose primary lived: {lost:?}\n{}",
        worker.log()
    );
    let after: Vec<&(&str, String)> = acknowledged[killed_at..]
        .iter()
        .filter(|(queue, _)| *queue == "default")
        .collect();
    assert!(
        !after.is_empty(),
        "jobs were enqueued on the failed-over queue"
    );
    assert!(
        after
            .iter()
            .rev()
            .take(10)
            .all(|(queue, id)| !lost.contains(&format!("{queue}/{id}"))),
        "the last jobs enqueued after the failover completed: {lost:?}"
    );
}
