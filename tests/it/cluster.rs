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

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
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
    // Records of `default` alone: the dead job, the scheduled ticks and the crashed one
    // (the job that failed once and the delayed one wait without records); a SCAN sent to
    // the wrong node finds none.
    let reconciled = flotilla(&["reconcile"]);
    let examined: usize = reconciled
        .lines()
        .find_map(|line| line.strip_prefix("examined "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(examined >= 3, "{reconciled}");
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

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_of_six_partitions_spreads_over_every_primary() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let keys = Keys::default();
    let conn = cluster_connection(&url).await;
    // The worker runs under its documented ACL rule, with what docs/SECURITY.md says to add
    // on a cluster; users are per node, so every node gets it.
    let mut rule = crate::acl::documented_rules()
        .into_iter()
        .find(|rule| rule[1] == "flotilla-worker")
        .expect("the worker's rule");
    rule.push("+cluster|slots".to_owned());
    let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
    cluster.on_every_node(&[&["ACL"], &rule[..]].concat());
    let worker_url = url.replacen(
        "://",
        &format!("://flotilla-worker:{}@", crate::acl::PASSWORD),
        1,
    );
    let worker = WorkerProcess::start(
        &worker_url,
        &[],
        Some("[queues]\nmail = 1\n\n[partitions]\nmail = 6\n"),
    );
    let partitions = flotilla_proto::partition_names("mail", 6);
    let stored = wait_partition_count(&conn, &keys, "mail", 6).await;
    assert_eq!(stored, 6, "the worker stored its count\n{}", worker.log());

    // Idle, the worker waits on every primary at once, with one blocking read on each.
    let primaries = cluster.primaries();
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen: Vec<usize> = primaries
            .iter()
            .map(|port| cluster.blocked_reads(port))
            .collect();
        assert!(
            seen.iter().all(|&reads| reads <= 1),
            "at most one blocking read per node: {seen:?}\n{}",
            worker.log()
        );
        if seen.iter().all(|&reads| reads == 1) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        seen,
        vec![1; primaries.len()],
        "an idle worker waits on every primary\n{}",
        worker.log()
    );

    // Jobs of every kind: to run now (in turn over the partitions), with ids and with
    // unique keys (placed by hashing them), in one bulk call.
    let producer = Producer::connect(&url).await.expect("a cluster producer");
    let mut jobs: Vec<NewJob> = Vec::new();
    for i in 0..120 {
        jobs.push(
            NewJob::new("noop", &json!({ "i": i }))
                .expect("job")
                .queue("mail"),
        );
    }
    for i in 0..60 {
        let job = NewJob::new("noop", &json!({})).expect("job");
        jobs.push(job.queue("mail").id(&format!("order-{i}")));
    }
    for i in 0..30 {
        let job = NewJob::new("noop", &json!({})).expect("job").queue("mail");
        jobs.push(job.unique_until_expiry(&format!("user-{i}"), Duration::from_secs(600)));
    }
    let enqueued: Vec<(String, String)> = producer
        .enqueue_bulk(jobs)
        .await
        .expect("bulk enqueue")
        .into_iter()
        .map(|result| {
            let enqueued = result.expect("each job enqueued");
            (enqueued.queue, enqueued.id)
        })
        .collect();
    let used: HashSet<&str> = enqueued.iter().map(|(queue, _)| queue.as_str()).collect();
    assert_eq!(used.len(), 6, "jobs went to every partition: {used:?}");
    for (queue, id) in &enqueued {
        wait_status(&conn, &keys, queue, id, Status::Completed, LONG).await;
    }

    // Each unique key or id meets its own earlier job, whichever partition that is in.
    for i in [0, 17, 29] {
        let again = NewJob::new("noop", &json!({})).expect("job").queue("mail");
        let again = again.unique_until_expiry(&format!("user-{i}"), Duration::from_secs(600));
        let outcome = producer.enqueue(again).await.expect("enqueue").outcome;
        assert_eq!(outcome, flotilla_producer::Outcome::Duplicate, "user-{i}");
        let again = NewJob::new("noop", &json!({})).expect("job").queue("mail");
        let outcome = producer
            .enqueue(again.id(&format!("order-{i}")))
            .await
            .expect("enqueue")
            .outcome;
        assert_eq!(outcome, flotilla_producer::Outcome::Exists, "order-{i}");
    }

    // A debounce key meets its waiting job whichever partition holds it: one job made,
    // every later enqueue folded into it.
    let mut folded = Vec::new();
    for i in 0..10 {
        let job = NewJob::new("noop", &json!({ "i": i }))
            .expect("job")
            .queue("mail")
            .debounce("digest", Duration::from_secs(600));
        let enqueued = producer.enqueue(job).await.expect("enqueue");
        folded.push((enqueued.outcome, enqueued.queue, enqueued.id));
    }
    let first = folded[0].clone();
    assert_eq!(first.0, flotilla_producer::Outcome::Created);
    for (outcome, queue, id) in &folded[1..] {
        assert_eq!(
            (outcome, queue, id),
            (&flotilla_producer::Outcome::Debounced, &first.1, &first.2)
        );
    }

    // The partitions' keys live on all three primaries, and each holds completions.
    let owners: HashSet<String> = partitions
        .iter()
        .map(|partition| cluster.primary_for(&keys.done(partition)))
        .collect();
    assert_eq!(
        owners.len(),
        3,
        "the six partitions of mail cover every primary"
    );
    for partition in &partitions {
        let completed: usize = redis::cmd("XLEN")
            .arg(keys.done(partition))
            .query_async(&mut conn.clone())
            .await
            .expect("XLEN");
        assert!(completed > 0, "{partition} ran jobs");
    }

    // Operators see one queue: its counts add up over the partitions, and a job is found
    // by its id alone or with the queue's name.
    let flotilla = |args: &[&str]| run_flotilla(&url, &[], args);
    let stats: serde_json::Value =
        serde_json::from_str(&flotilla(&["queues", "stats", "--json"])).expect("stats JSON");
    let mail = stats
        .as_array()
        .and_then(|all| all.iter().find(|q| q["queue"] == "mail"))
        .expect("mail is listed once");
    assert_eq!(mail["partitions"], 6, "{mail}");
    assert_eq!(mail["completed_last_hour"], 210, "{mail}");
    assert_eq!(stats.as_array().map(Vec::len), Some(1), "{stats}");
    let shown = flotilla(&["jobs", "show", "order-7"]);
    assert!(shown.contains("completed"), "{shown}");
    // By the first characters of an id, too: records on every node are searched.
    let mut probes = Vec::new();
    for i in 0..6 {
        let job = NewJob::new("noop", &json!({})).expect("job").queue("mail");
        probes.push(
            producer
                .enqueue(job.id(&format!("probe{i}-x")))
                .await
                .expect("enqueue"),
        );
    }
    let probe_nodes: HashSet<String> = probes
        .iter()
        .map(|probe| cluster.primary_for(&keys.job(&probe.queue, &probe.id)))
        .collect();
    assert!(probe_nodes.len() > 1, "the probes are on several primaries");
    for probe in &probes {
        wait_status(
            &conn,
            &keys,
            &probe.queue,
            &probe.id,
            Status::Completed,
            LONG,
        )
        .await;
        let prefix = probe.id.trim_end_matches("-x");
        let shown = flotilla(&["jobs", "show", prefix]);
        assert!(
            shown.contains(&probe.id),
            "{prefix} on {}: {shown}",
            probe.queue
        );
    }
    let delayed = NewJob::new("noop", &json!({})).expect("job").queue("mail");
    let delayed = delayed.id("later-1").delay(Duration::from_secs(3600));
    producer.enqueue(delayed).await.expect("enqueue");
    let cancelled = producer.cancel("mail", "later-1").await.expect("cancel");
    assert!(
        matches!(cancelled, flotilla_producer::Cancelled::Cancelled { .. }),
        "{cancelled:?}"
    );

    // A partition past the count is refused: no worker would read it.
    let beyond = NewJob::new("noop", &json!({}))
        .expect("job")
        .queue("mail#7");
    let refused = producer.enqueue(beyond).await;
    assert!(
        matches!(&refused, Err(flotilla_producer::ProducerError::Invalid(why)) if why.contains("which has 6")),
        "{refused:?}"
    );
    let mixed = vec![
        NewJob::new("noop", &json!({}))
            .expect("job")
            .queue("mail#7"),
        NewJob::new("noop", &json!({}))
            .expect("job")
            .queue("mail#5"),
    ];
    let mixed = producer.enqueue_bulk(mixed).await.expect("bulk enqueue");
    assert!(mixed[0].is_err(), "{mixed:?}");
    let fine = mixed[1]
        .as_ref()
        .expect("the job for an existing partition");
    wait_status(&conn, &keys, &fine.queue, &fine.id, Status::Completed, LONG).await;

    // A count only grows; a raised one is served by the running worker.
    let lowered = Command::new(flotilla_tests::flotilla_bin())
        .args(["queues", "partition", "mail", "3"])
        .env("FLOTILLA_REDIS_URL", &url)
        .env_remove("FLOTILLA_CONFIG")
        .output()
        .expect("flotilla runs");
    assert!(!lowered.status.success());
    let said = String::from_utf8_lossy(&lowered.stderr);
    assert!(said.contains("can only grow"), "{said}");
    let raised = flotilla(&["queues", "partition", "mail", "8"]);
    // The operator is told where the partitions live: the six covered every primary.
    assert!(
        raised.contains("partitions per primary: 127.0.0.1:")
            && raised.contains("(3 of 3 primaries)"),
        "{raised}"
    );
    let fresh = Producer::connect(&url).await.expect("a cluster producer");
    let mut later = Vec::new();
    for i in 0..16 {
        let job = NewJob::new("noop", &json!({ "i": i }))
            .expect("job")
            .queue("mail");
        later.push(fresh.enqueue(job).await.expect("enqueue"));
    }
    assert!(later.iter().any(|e| e.queue == "mail#7"), "{later:?}");
    for enqueued in &later {
        wait_status(
            &conn,
            &keys,
            &enqueued.queue,
            &enqueued.id,
            Status::Completed,
            LONG,
        )
        .await;
    }
    assert!(!worker.log().contains("CROSSSLOT"), "{}", worker.log());
    let refused: Vec<redis::Value> = cluster
        .on_every_node(&["ACL", "LOG"])
        .into_iter()
        .filter(|log| !matches!(log, redis::Value::Array(entries) if entries.is_empty()))
        .collect();
    assert!(
        refused.is_empty(),
        "Redis refused the worker under its documented rule: {refused:?}"
    );
}

/// Waits until `queue`'s stored partition count is `count`; answers the count last read.
async fn wait_partition_count(
    conn: &SharedConnection,
    keys: &Keys,
    queue: &str,
    count: u16,
) -> u16 {
    let deadline = Instant::now() + LONG;
    loop {
        let stored =
            flotilla_proto::partition::read_partition_count(&mut conn.clone(), keys, queue)
                .await
                .unwrap_or(0);
        if stored == count || Instant::now() > deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
