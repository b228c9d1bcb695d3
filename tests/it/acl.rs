//! The ACL rules of docs/SECURITY.md, taken from the document itself: every role serves
//! its part of the core scenarios under only its rule, and Redis refuses nothing.

use std::time::Duration;

use flotilla_producer::{Batch, Flow, NewJob, OnParentEnd, Parent, Producer};
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
            let mut args: Vec<String> = Vec::new();
            // A selector, `(+cmd ~pattern …)`, is one argument however many words it has.
            let mut selector: Option<String> = None;
            for word in line.split_whitespace().skip(1) {
                let word = match word {
                    ">CHANGE-ME" => format!(">{PASSWORD}"),
                    other => other.to_owned(),
                };
                selector = match selector.take() {
                    Some(open) => Some(format!("{open} {word}")),
                    None if word.starts_with('(') => Some(word),
                    None => {
                        args.push(word);
                        None
                    }
                };
                if selector.as_deref().is_some_and(|s| s.ends_with(')')) {
                    args.extend(selector.take());
                }
            }
            assert!(selector.is_none(), "an unclosed selector in {line}");
            args
        })
        .collect();
    let users: Vec<&str> = rules.iter().map(|rule| rule[1].as_str()).collect();
    assert_eq!(
        users,
        [
            "flotilla-worker",
            "flotilla-appender",
            "flotilla-producer",
            "flotilla-scheduler",
            "flotilla-operator"
        ],
        "SECURITY.md lists one rule per role"
    );
    rules
}

/// A Redis on a TCP port of its own (with `extra` arguments) that has a user for every
/// role, created from SECURITY.md's rules; and its address.
async fn with_documented_users(extra: &[&str]) -> (Env, String) {
    let addr = free_local_addr();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let args = [&["--port", port.as_str(), "--bind", "127.0.0.1"][..], extra].concat();
    let env = Env::start_with(&args).await;
    for rule in documented_rules() {
        let mut cmd = redis::cmd("ACL");
        cmd.arg(&rule);
        env.cmd::<()>(&mut cmd).await;
    }
    (env, addr)
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
    // Durable, as SECURITY.md recommends, so the start-up check has nothing to warn about.
    let (env, addr) = with_documented_users(&["--appendonly", "yes"]).await;
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
        Some(
            "[schedules.tick]\nevery = \"1s\"\ntype = \"noop\"\n\n[flow.critical]\nconcurrency = 40\n",
        ),
    );
    // A flow limit far above the load: every job of `default` below is admitted, and
    // its slot given back and renewed, under the worker's rule.
    run_flotilla(
        &url("flotilla-operator"),
        &[],
        &[
            "queues",
            "limit",
            "default",
            "--rate",
            "1000/s",
            "--concurrency",
            "50",
            "--group-concurrency",
            "1",
            "--group-rate",
            "20/s",
            "--group-burst",
            "1",
        ],
    );
    let producer = Producer::connect(&url("flotilla-producer"))
        .await
        .expect("the producer connects under its rule");
    // The producer reads back and waits for what it enqueued.
    let waited = producer
        .enqueue(NewJob::new("noop", &json!({})).expect("job"))
        .await
        .expect("enqueues under the producer's rule");
    let record = producer
        .wait(&waited.full_id(), LONG)
        .await
        .expect("the producer waits under its rule");
    assert_eq!(record.status, Some(Status::Completed));

    // The appender: plain jobs from the Rust producer, and a raw XADD with an id and a
    // delay as another language writes one; both read back under the same rule.
    let appender = Producer::connect(&url("flotilla-appender"))
        .await
        .expect("the appender connects under its rule");
    let plain = appender
        .enqueue(NewJob::new("noop", &json!({})).expect("job"))
        .await
        .expect("a plain job under the appender's rule")
        .id;
    let mut appender_conn = redis::Client::open(url("flotilla-appender"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("the appender connects");
    let _: String = redis::cmd("XADD")
        .arg(env.keys.stream("default"))
        .arg("*")
        .arg("id")
        .arg("acl-raw")
        .arg("type")
        .arg("noop")
        .arg("delay")
        .arg("50ms")
        .query_async(&mut appender_conn)
        .await
        .expect("a raw XADD under the appender's rule");
    // Two jobs of one group by a raw XADD: the worker puts them through their group's
    // gate (one at a time per group), under its rule.
    let mut raw_grouped = Vec::new();
    for _ in 0..2 {
        let entry: String = redis::cmd("XADD")
            .arg(env.keys.stream("default"))
            .arg("*")
            .arg("type")
            .arg("sleep")
            .arg("payload")
            .arg(r#"{"ms": 100}"#)
            .arg("group")
            .arg("acl-raw-g")
            .query_async(&mut appender_conn)
            .await
            .expect("a raw XADD of a job of a group under the appender's rule");
        raw_grouped.push(entry);
    }

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
    // A flow (a → b), and jobs waiting for `far`: the operator's cancel of `far` below
    // cancels the first, and the second, which waits for the first under `run`, runs.
    let mut flow = Flow::new();
    let a = flow
        .add(NewJob::new("noop", &json!({})).expect("job"))
        .expect("a");
    let b = flow
        .add(NewJob::new("noop", &json!({})).expect("job").after(a))
        .expect("b");
    producer
        .enqueue_flow(flow)
        .await
        .expect("a flow under the producer's rule");
    // A batch: its members complete under the worker's rule, which fires its callback.
    let mut batch = Batch::new("acl-batch").on_complete(
        NewJob::new("noop", &json!({}))
            .expect("job")
            .id("acl-batch-done"),
    );
    for _ in 0..3 {
        batch
            .add(NewJob::new("noop", &json!({})).expect("job"))
            .expect("a member");
    }
    producer
        .enqueue_batch(batch)
        .await
        .expect("a batch under the producer's rule");
    let after_far = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .after(Parent::new("default", &far)),
        )
        .await
        .expect("a job waiting for another under the producer's rule");
    let runs_anyway = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .after(Parent::from(&after_far).on_end(OnParentEnd::Run)),
        )
        .await
        .expect("a job waiting under `run`")
        .id;

    jobs.wait_done(&env.conn, &env.keys).await;
    env.wait_status("default", b.id(), Status::Completed, LONG)
        .await;
    env.wait_status("default", "acl-batch-done", Status::Completed, LONG)
        .await;
    for id in &raw_grouped {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    for id in [plain.as_str(), "acl-raw"] {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
        let read = flotilla_proto::describe_job(
            &mut appender_conn,
            &env.keys,
            "default",
            id,
            &Default::default(),
        )
        .await
        .expect("the appender reads a job back")
        .expect("the job is found");
        assert_eq!(read.status, Some(Status::Completed), "{id}");
    }
    env.wait_status("default", &unique, Status::Completed, LONG)
        .await;
    // Jobs of one group: one let through, the others wait their turn (of the window and
    // of the group's rate) and follow as each completes and each turn comes, under the
    // producer's, worker's and scheduler's rules.
    let mut grouped = Vec::new();
    for _ in 0..3 {
        let job = NewJob::new("noop", &json!({})).expect("job").group("acl-g");
        grouped.push(producer.enqueue(job).await.expect("a grouped enqueue").id);
    }
    for id in &grouped {
        env.wait_status("default", id, Status::Completed, LONG)
            .await;
    }
    // A job waiting its group's turn is cancelled under the producer's rule.
    let slow = NewJob::new("sleep", &json!({"ms": 1000}))
        .expect("job")
        .group("acl-h");
    producer.enqueue(slow).await.expect("a grouped enqueue");
    let behind = NewJob::new("noop", &json!({})).expect("job").group("acl-h");
    let behind = producer.enqueue(behind).await.expect("a grouped enqueue");
    producer
        .cancel("default", &behind.id)
        .await
        .expect("cancels a job waiting its turn under the producer's rule");
    let cancelled = env.record("default", &behind.id).await.expect("a record");
    assert_eq!(cancelled.status, Some(Status::Cancelled));
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
        &["queues", "limits"],
        &["queues", "limit", "low", "--concurrency", "5"],
        &["queues", "limit", "low", "--clear"],
        &["jobs", "cancel", &far],
        &["jobs", "delete", &far, "--yes"],
        &["jobs", "retry", &jobs.dies],
        &["batches", "show", "acl-batch"],
        &["jobs", "list", "--status", "waiting"],
    ] {
        run_flotilla(&operator_url, &[], args);
    }
    env.wait_status("default", &after_far.id, Status::Cancelled, LONG)
        .await;
    env.wait_status("default", &runs_anyway, Status::Completed, LONG)
        .await;
    run_flotilla(
        &operator_url,
        &[],
        &[
            "jobs",
            "purge",
            "--completed",
            "--older-than",
            "0s",
            "--yes",
        ],
    );
    // A producer cancels the jobs it enqueued, from the command line too.
    let to_cancel = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .delay(Duration::from_secs(3600)),
        )
        .await
        .expect("a job to cancel")
        .id;
    // A job waiting for it is cancelled first, and deleted by the operator.
    let waiting = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .after(Parent::new("default", &to_cancel)),
        )
        .await
        .expect("a job waiting")
        .id;
    producer
        .cancel("default", &waiting)
        .await
        .expect("cancels a waiting job under the producer's rule");
    let deleted_waiting = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .after(Parent::new("default", &to_cancel)),
        )
        .await
        .expect("a job waiting")
        .id;
    run_flotilla(
        &operator_url,
        &[],
        &["jobs", "delete", &deleted_waiting, "--yes"],
    );
    run_flotilla(
        &url("flotilla-producer"),
        &[],
        &["jobs", "cancel", &to_cancel],
    );
    env.wait_status("default", &to_cancel, Status::Cancelled, LONG)
        .await;
    // A queue started by mistake, emptied, and removed by the operator.
    let typo = producer
        .enqueue(
            NewJob::new("noop", &json!({}))
                .expect("job")
                .queue("acl-typo")
                .delay(Duration::from_secs(3600)),
        )
        .await
        .expect("a job on a new queue")
        .id;
    run_flotilla(
        &url("flotilla-producer"),
        &[],
        &["jobs", "cancel", &typo, "--queue", "acl-typo"],
    );
    run_flotilla(
        &operator_url,
        &[],
        &["queues", "remove", "acl-typo", "--yes"],
    );
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

/// The error Redis gave `args` as `conn`'s user, or `None` when it ran.
async fn refusal(conn: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Option<String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async::<redis::Value>(conn)
        .await
        .err()
        .map(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_role_can_do_what_its_rule_leaves_out() {
    // A short busy threshold, so that a script that never ends blocks others at once.
    let (_redis, addr) = with_documented_users(&["--busy-reply-threshold", "100"]).await;
    let connect = |user: &'static str| {
        let url = format!("redis://{user}:{PASSWORD}@{addr}");
        async move {
            redis::Client::open(url)
                .expect("url")
                .get_multiplexed_async_connection()
                .await
                .expect("connects")
        }
    };
    // What SECURITY.md's table says each role cannot do, and what no role may do.
    let everyone: &[&[&str]] = &[
        &["CONFIG", "GET", "*"],
        &["KEYS", "*"],
        &["FLUSHALL"],
        &["SCRIPT", "FLUSH"],
        &["GET", "not-flotilla"],
    ];
    // The scheduler's lease and fencing epoch, which only the scheduler may move.
    let lease: &[&[&str]] = &[
        &["SET", "flotilla:{global}:fence", "999999"],
        &["INCR", "flotilla:{global}:fence"],
        &["DEL", "flotilla:{global}:leader"],
        &["SET", "flotilla:{global}:leader", "me"],
    ];
    let appender: &[&[&str]] = &[
        &["EVAL", "return 1", "0"],
        &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        &["SCRIPT", "LOAD", "return 1"],
        &["DEL", "flotilla:{default}:delayed"],
        &["ZREM", "flotilla:{default}:delayed", "x"],
        &["XTRIM", "flotilla:{default}:dead", "MAXLEN", "0"],
        &["XDEL", "flotilla:{default}:q", "1-1"],
        &["HSET", "flotilla:{default}:job:x", "status", "completed"],
        &["SET", "flotilla:{default}:unique:x", "y"],
        &["XADD", "flotilla:{default}:done", "*", "id", "x"],
        &["SADD", "flotilla:{global}:paused", "default"],
        &["HSET", "flotilla:{global}:partitions", "default", "9"],
        &[
            "HSET",
            "flotilla:{global}:limits",
            "default",
            "concurrency=1",
        ],
        &["SMEMBERS", "flotilla:{global}:queues"],
        // Groups' lines, places, windows and rates are the scripts' to move.
        &["INCRBY", "flotilla:{default}:grouped", "-5"],
        &["SET", "flotilla:{default}:group_rate:g", "0"],
        &[
            "HSET",
            "flotilla:{default}:group_limit",
            "concurrency",
            "99",
        ],
        &["SREM", "flotilla:{default}:group_flight:g", "x"],
    ];
    let producer: &[&[&str]] = &[
        &["DEL", "flotilla:{default}:delayed"],
        &["ZREMRANGEBYRANK", "flotilla:{default}:delayed", "0", "-1"],
        &["XTRIM", "flotilla:{default}:dead", "MAXLEN", "0"],
        &["XTRIM", "flotilla:{default}:q", "MAXLEN", "0"],
        &["DEL", "flotilla:{default}:q"],
        &["XADD", "flotilla:{default}:done", "*", "id", "x"],
        &["SET", "flotilla:{default}:job:x", "y"],
        &["DEL", "flotilla:{default}:idx:dead"],
        &["HSET", "flotilla:{global}:schedules", "x", "{}"],
        &["SADD", "flotilla:{global}:paused", "default"],
        &["HSET", "flotilla:{global}:partitions", "default", "9"],
        &["DEL", "flotilla:{global}:workers"],
        &[
            "HSET",
            "flotilla:{global}:limits",
            "default",
            "concurrency=1",
        ],
        &["DEL", "flotilla:{default}:holds"],
        // A group's window is the operators' to set, and its state the scripts' to keep.
        &[
            "HSET",
            "flotilla:{default}:group_limit",
            "concurrency",
            "99",
        ],
        &["DEL", "flotilla:{default}:group_rate:g"],
        &["DEL", "flotilla:{default}:grouped"],
        // A script runs with its caller's rights, not more.
        &[
            "EVAL",
            "return redis.call('SET', KEYS[1], '1')",
            "1",
            "flotilla:{global}:fence",
        ],
    ];
    let worker: &[&[&str]] = &[
        &["HSET", "flotilla:{global}:schedules", "x", "{}"],
        &["DEL", "flotilla:{global}:schedule:x"],
        &["XADD", "flotilla:{global}:alerts", "*", "a", "b"],
        &["SADD", "flotilla:{global}:paused", "default"],
        &[
            "HSET",
            "flotilla:{global}:limits",
            "default",
            "rate=1000000/ms",
        ],
        &["HDEL", "flotilla:{global}:limits", "default"],
        &[
            "HSET",
            "flotilla:{default}:group_limit",
            "concurrency",
            "99",
        ],
        &["EVAL", "return 1", "0"],
        &["SCRIPT", "KILL"],
    ];
    let scheduler: &[&[&str]] = &[
        &["SADD", "flotilla:{global}:paused", "default"],
        &["HSET", "flotilla:{global}:worker:w1", "a", "b"],
        &["DEL", "flotilla:{global}:workers"],
        &["HSET", "flotilla:{global}:partitions", "default", "9"],
        &[
            "HSET",
            "flotilla:{global}:limits",
            "default",
            "concurrency=1",
        ],
        &["HDEL", "flotilla:{global}:limits", "default"],
        &["EVAL", "return 1", "0"],
        &["SCRIPT", "KILL"],
    ];
    let operator: &[&[&str]] = &[
        &["XADD", "flotilla:{global}:alerts", "*", "a", "b"],
        &["DEL", "flotilla:{global}:lost"],
        &["EVAL", "return 1", "0"],
    ];
    for (user, denied) in [
        ("flotilla-appender", [appender, lease]),
        ("flotilla-producer", [producer, lease]),
        ("flotilla-worker", [worker, lease]),
        ("flotilla-scheduler", [scheduler, &[]]),
        ("flotilla-operator", [operator, lease]),
    ] {
        let mut conn = connect(user).await;
        for args in everyone.iter().chain(denied.concat().iter()) {
            let error = refusal(&mut conn, args).await;
            assert!(
                error.as_deref().is_some_and(|e| e.contains("NOPERM")
                    || e.contains("No permissions")
                    || e.contains("no permissions")),
                "{user} may run {args:?}: {error:?}"
            );
        }
    }

    // A role that may run scripts can stall Redis with one that never ends; the operator
    // can end it, as SECURITY.md says.
    let mut stalling = connect("flotilla-producer").await;
    let stall =
        tokio::spawn(
            async move { refusal(&mut stalling, &["EVAL", "while true do end", "0"]).await },
        );
    let mut operator = connect("flotilla-operator").await;
    let mut bystander = connect("flotilla-worker").await;
    flotilla_tests::eventually(LONG, "Redis to answer BUSY while the script runs", || {
        let mut conn = bystander.clone();
        async move {
            refusal(&mut conn, &["PING"])
                .await
                .filter(|e| e.contains("BUSY"))
        }
    })
    .await;
    assert_eq!(refusal(&mut operator, &["SCRIPT", "KILL"]).await, None);
    // The stalling call ends (killed, or timed out on the client's side).
    let _ = stall.await;
    assert_eq!(refusal(&mut bystander, &["PING"]).await, None);
}
