//! `jobs list` and `jobs delete` against a real fleet: every status listed from where it
//! is kept, paged across queues with nothing repeated or skipped, filters that narrow;
//! a delete that leaves no trace and refuses a running job.

use std::time::Duration;

use flotilla_producer::{NewJob, Outcome};
use flotilla_proto::{Backoff, Status};
use flotilla_tests::{WorkerProcess, eventually};
use serde_json::{Value, json};

use crate::ops::{flotilla, run, stats, unhandled};
use crate::util::{Env, LONG};

/// Every page of `jobs list --json` for these arguments, `limit` at a time.
fn all_pages(env: &Env, args: &[&str], limit: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let limit = limit.to_string();
        let mut full = vec!["jobs", "list", "--json", "--limit", &limit];
        full.extend_from_slice(args);
        if let Some(cursor) = &cursor {
            full.extend_from_slice(&["--cursor", cursor]);
        }
        let page: Value = serde_json::from_str(&flotilla(env, &full)).expect("a JSON page");
        let jobs = page["jobs"].as_array().expect("a jobs array").clone();
        assert!(jobs.len() <= limit.parse().unwrap_or(0), "{page}");
        rows.extend(jobs);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return rows,
        }
    }
    panic!("jobs list {args:?} never reached its last page");
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn times(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["at_ms"].as_i64().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn jobs_list_pages_every_status_across_queues() {
    let env = Env::start().await;
    // Only `critical` is served: what goes to `default` and `low` waits.
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let on = |job_type: &str, queue: &str| {
        NewJob::new(job_type, &json!({}))
            .expect("encodes")
            .queue(queue)
    };
    let mut completed = Vec::new();
    for _ in 0..3 {
        completed.push(env.enqueue_job(on("noop", "critical")).await);
    }
    for id in &completed {
        env.wait_status("critical", id, Status::Completed, LONG)
            .await;
    }
    let dead = env.enqueue_job(unhandled("ghost").queue("critical")).await;
    let failing = NewJob::new("fail", &json!({"times": -1}))
        .expect("encodes")
        .queue("critical")
        .max_attempts(3)
        .backoff(Backoff::Fixed(Duration::from_secs(600)));
    let failed = env.enqueue_job(failing).await;
    let sleeping = NewJob::new("sleep", &json!({"ms": 30_000}))
        .expect("encodes")
        .queue("critical");
    let running = env.enqueue_job(sleeping).await;
    // Waiting on two queues, interleaved in time, two of another type.
    let mut pending = Vec::new();
    for i in 0..7 {
        let queue = if i % 2 == 0 { "default" } else { "low" };
        pending.push(env.enqueue_job(on("noop", queue)).await);
    }
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(env.enqueue_job(on("other", "low")).await);
    }
    let scheduled = env
        .enqueue_job(on("noop", "default").delay(Duration::from_secs(600)))
        .await;
    // Index 3 went to `low`.
    let cancelled = pending.remove(3);
    flotilla(&env, &["jobs", "cancel", &cancelled, "--queue", "low"]);
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    env.wait_status("critical", &failed, Status::Failed, LONG)
        .await;
    env.wait_status("critical", &running, Status::Running, LONG)
        .await;

    // Pending, two at a time over both queues: each once, oldest first.
    let rows = all_pages(&env, &["--status", "pending"], 2);
    let mut expected: Vec<String> = pending.iter().chain(&others).cloned().collect();
    expected.sort();
    let mut listed = ids(&rows);
    listed.sort();
    assert_eq!(listed, expected, "{rows:?}");
    assert!(times(&rows).is_sorted(), "oldest first: {rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "pending"), "{rows:?}");

    let rows = all_pages(&env, &["--status", "pending", "--type", "other"], 1);
    assert_eq!(ids(&rows), others, "{rows:?}");
    let rows = all_pages(&env, &["--status", "pending", "--queue", "default"], 50);
    assert!(rows.iter().all(|r| r["queue"] == "default"), "{rows:?}");
    assert_eq!(rows.len(), 4, "{rows:?}");

    let rows = all_pages(&env, &["--status", "running"], 10);
    assert_eq!(ids(&rows), [running.as_str()], "{rows:?}");
    assert_eq!(rows[0]["attempts"], 1, "{rows:?}");
    assert!(rows[0]["worker"].is_string(), "{rows:?}");

    // Completed, newest first, two to a page: each once.
    let rows = all_pages(&env, &["--status", "completed"], 2);
    let mut listed = ids(&rows);
    listed.sort();
    let mut expected = completed.clone();
    expected.sort();
    assert_eq!(listed, expected, "{rows:?}");
    assert!(
        times(&rows).iter().rev().is_sorted(),
        "newest first: {rows:?}"
    );
    assert!(rows[0]["worker"].is_string(), "{rows:?}");

    let rows = all_pages(&env, &["--status", "failed"], 10);
    assert_eq!(ids(&rows), [failed.as_str()], "{rows:?}");
    assert!(rows[0]["error"].is_string(), "{rows:?}");
    let rows = all_pages(&env, &["--status", "scheduled"], 10);
    assert_eq!(ids(&rows), [scheduled.as_str()], "{rows:?}");
    let rows = all_pages(&env, &["--status", "dead"], 10);
    assert_eq!(ids(&rows), [dead.as_str()], "{rows:?}");
    assert!(rows[0]["error"].is_string(), "{rows:?}");
    let rows = all_pages(&env, &["--status", "cancelled"], 10);
    assert_eq!(ids(&rows), [cancelled.as_str()], "{rows:?}");

    // `--since` keeps only what is recent enough: completions an hour old or newer are
    // all three, and none ended in the future.
    let rows = all_pages(&env, &["--status", "completed", "--since", "1h"], 10);
    assert_eq!(rows.len(), 3, "{rows:?}");

    // The retry waiting is told apart from the job waiting for its time.
    let critical = &stats(&env)["critical"];
    assert_eq!(critical["retrying"], 1, "{critical}");
    assert_eq!(critical["scheduled"], 0, "{critical}");
    assert_eq!(stats(&env)["default"]["scheduled"], 1);

    // The table: a header, one line a job, the next page's cursor on stderr.
    let output = run(
        &env,
        &["jobs", "list", "--status", "pending", "--limit", "3"],
    );
    let table = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(table.starts_with("JOB "), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(stderr.contains("more: --cursor '{"), "{stderr}");
    assert!(!table.contains('\x1b'), "no colour when piped: {table}");

    for (args, says) in [
        (&["jobs", "list", "--queue", "nosuch"][..], "known queues"),
        (&["jobs", "list", "--cursor", "garbage"][..], "bad cursor"),
        (&["jobs", "list", "--status", "lost"][..], "expected one of"),
    ] {
        let output = run(&env, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn jobs_delete_leaves_no_trace_and_refuses_a_running_job() {
    let env = Env::start().await;
    let _worker = WorkerProcess::start(&env.url(), &[], Some("[queues]\ncritical = 1\n"));
    let on_critical = |job: NewJob| job.queue("critical");
    let done = env
        .enqueue_job(on_critical(
            NewJob::new("noop", &json!({})).expect("encodes"),
        ))
        .await;
    let dead = env.enqueue_job(on_critical(unhandled("ghost"))).await;
    let sleeping = NewJob::new("sleep", &json!({"ms": 30_000})).expect("encodes");
    let running = env.enqueue_job(on_critical(sleeping)).await;
    let waiting = env.enqueue("noop", json!({})).await;
    let unique = || {
        NewJob::new("noop", &json!({}))
            .expect("encodes")
            .unique("report-42", Duration::from_secs(600))
    };
    let held = env.producer.enqueue(unique()).await.expect("enqueues");
    env.wait_status("critical", &done, Status::Completed, LONG)
        .await;
    env.wait_status("critical", &dead, Status::Dead, LONG).await;
    env.wait_status("critical", &running, Status::Running, LONG)
        .await;

    for (queue, id) in [
        ("critical", &done),
        ("critical", &dead),
        ("default", &waiting),
        ("default", &held.id),
    ] {
        // Entry ids repeat across queues; a full id names the queue.
        let full = flotilla_proto::full_id(queue, id);
        let said = flotilla(&env, &["jobs", "delete", &full, "--yes"]);
        assert!(
            said.contains(&format!("deleted {full} from {queue}")),
            "{said}"
        );
        let show = run(&env, &["jobs", "show", id, "--queue", queue]);
        let stderr = String::from_utf8_lossy(&show.stderr);
        assert!(
            stderr.contains("no job with id"),
            "{id} is still shown: {stderr}{}",
            String::from_utf8_lossy(&show.stdout)
        );
    }
    for status in ["completed", "dead", "pending"] {
        let rows = all_pages(&env, &["--status", status], 50);
        assert!(rows.is_empty(), "{status}: {rows:?}");
    }
    let dead_list = flotilla(&env, &["dead", "list", "--json"]);
    assert_eq!(dead_list.trim(), "[]", "its dead-letter entry went too");
    // The unique key it held is free again.
    let again = env.producer.enqueue(unique()).await.expect("enqueues");
    assert_eq!(again.outcome, Outcome::Created);

    let refused = run(&env, &["jobs", "delete", &running, "--yes"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("cancel it first"),
        "{stderr}"
    );
    let still = eventually(LONG, "the running job to be listed", || async {
        let rows = all_pages(&env, &["--status", "running"], 10);
        (ids(&rows) == [running.clone()]).then_some(rows)
    })
    .await;
    assert_eq!(still.len(), 1);
    let output = run(&env, &["jobs", "delete", "nosuchjob", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no job with id"), "{stderr}");

    // One entry id in two queues: a bare id is refused, naming both; the queue decides.
    for queue in ["a", "b"] {
        env.cmd::<String>(
            redis::cmd("XADD")
                .arg(env.keys.stream(queue))
                .arg("5-1")
                .arg("type")
                .arg("noop"),
        )
        .await;
        env.cmd::<()>(redis::cmd("SADD").arg(env.keys.queues()).arg(queue))
            .await;
    }
    let output = run(&env, &["jobs", "delete", "5-1", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("several queues") && stderr.contains("a:5-1") && stderr.contains("b:5-1"),
        "{stderr}"
    );
    // A full id names its queue: no search, no ambiguity.
    for queue in ["a", "b"] {
        let shown = flotilla(&env, &["jobs", "show", &format!("{queue}:5-1")]);
        assert!(shown.contains(&format!("queue        {queue}")), "{shown}");
        assert!(
            shown.contains(&format!("id           {queue}:5-1")),
            "{shown}"
        );
    }
    for (missing, queue) in [("c:5-1", None), ("a:5-1", Some("b"))] {
        let mut args = vec!["jobs", "show", missing];
        args.extend(queue.iter().flat_map(|q| ["--queue", q]));
        let output = run(&env, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("no job with id"),
            "{stderr}"
        );
    }
    let said = flotilla(&env, &["jobs", "delete", "5-1", "--queue", "b", "--yes"]);
    assert!(said.contains("deleted b:5-1 from b"), "{said}");
    let shown = flotilla(&env, &["jobs", "show", "5-1"]);
    assert!(shown.contains("queue        a"), "{shown}");

    let once = NewJob::new("noop", &json!({}))
        .expect("encodes")
        .id("thumbnail-once")
        .queue("a");
    env.producer.enqueue(once).await.expect("enqueues");
    // An own id is unique within its queue: given to jobs of two queues, it names both,
    // and the queue decides.
    for queue in ["a", "b"] {
        let job = NewJob::new("noop", &json!({}))
            .expect("encodes")
            .id("twin")
            .queue(queue);
        env.producer.enqueue(job).await.expect("enqueues");
    }
    let output = run(&env, &["jobs", "show", "twin"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("several queues")
            && stderr.contains("twin --queue a")
            && stderr.contains("twin --queue b"),
        "{stderr}"
    );
    let shown = flotilla(&env, &["jobs", "show", "twin", "--queue", "b"]);
    assert!(shown.contains("queue        b"), "{shown}");
    // In one queue alone, it is found without naming the queue.
    let shown = flotilla(&env, &["jobs", "show", "thumbnail-once"]);
    assert!(shown.contains("queue        a"), "{shown}");
}
