//! Completions several to a `done` entry (protocol 2.10: what a worker's completion batch
//! becomes): every reader finds each one, pages through them one at a time, a wait is
//! woken by each, and a delete removes only its own.

use flotilla_producer::NewJob;
use serde_json::{Value, json};

use crate::ops::{flotilla, run};
use crate::util::Env;

/// The completions a `done` entry holds, as (id, finished_at) in entry order.
async fn held(env: &Env) -> Vec<(String, Option<String>)> {
    let reply: redis::Value = env
        .cmd(
            redis::cmd("XRANGE")
                .arg(env.keys.done("default"))
                .arg("-")
                .arg("+"),
        )
        .await;
    flotilla_proto::range_completions(reply)
        .0
        .iter()
        .map(|c| {
            let text = |name: &str| {
                c.fields
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            (text("id").unwrap_or_default(), text("finished_at"))
        })
        .collect()
}

/// How many entries `done_sizes` names, the completions it says they hold, and the
/// completions `done_count` says are kept.
async fn sizes_and_counts(env: &Env) -> (usize, usize, usize) {
    let sizes: Vec<String> = env
        .cmd(
            redis::cmd("LRANGE")
                .arg(env.keys.done_sizes("default"))
                .arg(0)
                .arg(-1),
        )
        .await;
    let held = sizes
        .iter()
        .filter_map(|s| s.split_once(' ')?.1.parse::<usize>().ok())
        .sum();
    let kept: usize = env
        .cmd(
            redis::cmd("HGET")
                .arg(env.keys.done_count("default"))
                .arg("kept"),
        )
        .await;
    (sizes.len(), held, kept)
}

#[tokio::test]
async fn every_reader_finds_each_completion_of_an_entry_that_holds_several() {
    let env = Env::start().await;
    // The queue exists (readers look through the queues the namespace knows): one job
    // waits in it, with no worker to run it.
    env.enqueue_job(NewJob::new("noop", &json!({})).expect("job"))
        .await;
    let mut conn = env.conn.clone();
    let now = flotilla_proto::server_time_ms(&mut conn)
        .await
        .expect("time");
    // A job without an id of its own is named by the entry it was enqueued as.
    let plain = format!("{}-0", now - 1_000);
    let plain_full = format!("default:{plain}");
    let before = flotilla_proto::last_endings(&mut conn, &env.keys, "default")
        .await
        .expect("reads");
    let mut add = redis::cmd("XADD");
    add.arg(env.keys.done("default")).arg("*");
    for (id, n) in [("batch-a", 1), ("batch-b", 2), (plain.as_str(), 3)] {
        add.arg(&["id", id, "type", "noop", "attempts", "1", "worker", "w-1"][..])
            .arg(&["run_ms", "4", "result"][..])
            .arg(json!({ "n": n }).to_string());
    }
    let entry: String = env.cmd(&mut add).await;
    let entry_ms = flotilla_proto::entry_id_ms(&entry).expect("an entry id");
    let _: i64 = env
        .cmd(
            redis::cmd("ZADD")
                .arg(env.keys.done_ids("default"))
                .arg(&[entry_ms.to_string(), "batch-a".to_owned()][..])
                .arg(&[entry_ms.to_string(), "batch-b".to_owned()][..]),
        )
        .await;

    // A wait is woken by each completion of the entry.
    let (_, ended) = flotilla_proto::read_endings(&mut conn, &env.keys, "default", &before, 100)
        .await
        .expect("reads");
    assert_eq!(ended, ["batch-a", "batch-b", plain.as_str()]);

    // `jobs show` finds each, with its own result and the entry's time.
    for (id, n) in [("batch-a", 1), ("batch-b", 2), (plain_full.as_str(), 3)] {
        let shown: Value =
            serde_json::from_str(&flotilla(&env, &["jobs", "show", id, "--json"])).expect("JSON");
        assert_eq!(shown["status"], "completed", "{id}: {shown}");
        assert_eq!(shown["result"], json!({ "n": n }), "{id}: {shown}");
        assert_eq!(shown["finished_at"], json!(entry_ms), "{id}: {shown}");
    }

    // `jobs list` pages through them one at a time, none repeated or skipped.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec![
            "jobs",
            "list",
            "--status",
            "completed",
            "--json",
            "--limit",
            "1",
        ];
        if let Some(cursor) = &cursor {
            args.extend_from_slice(&["--cursor", cursor]);
        }
        let page: Value = serde_json::from_str(&flotilla(&env, &args)).expect("a JSON page");
        let jobs = page["jobs"].as_array().expect("jobs").clone();
        assert!(jobs.len() <= 1, "{page}");
        listed.extend(
            jobs.iter()
                .map(|j| j["id"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, ["batch-a", "batch-b", plain.as_str()]);

    // A delete removes only its own completion: the others are kept, each still saying
    // when it finished, and the deleted id is free again.
    flotilla(&env, &["jobs", "delete", "batch-b", "--yes"]);
    assert_eq!(
        held(&env).await,
        [
            ("batch-a".to_owned(), Some(entry_ms.to_string())),
            (plain.clone(), Some(entry_ms.to_string())),
        ]
    );
    assert!(!run(&env, &["jobs", "show", "batch-b"]).status.success());
    for id in ["batch-a", plain_full.as_str()] {
        let shown: Value =
            serde_json::from_str(&flotilla(&env, &["jobs", "show", id, "--json"])).expect("JSON");
        assert_eq!(shown["status"], "completed", "{id}: {shown}");
        assert_eq!(shown["finished_at"], json!(entry_ms), "{id}: {shown}");
    }
    let remembered: Vec<String> = env
        .cmd(
            redis::cmd("ZRANGE")
                .arg(env.keys.done_ids("default"))
                .arg(0)
                .arg(-1),
        )
        .await;
    assert_eq!(remembered, ["batch-a"]);
}

#[tokio::test]
async fn a_worker_writes_its_completion_batches_as_entries_and_counts_every_completion() {
    let env = Env::start().await;
    let jobs = 300;
    let mut ids = Vec::new();
    for _ in 0..jobs {
        ids.push(env.enqueue("noop", json!(null)).await);
    }
    let mut config = flotilla_tests::fast_config();
    config.concurrency = 50;
    let worker = flotilla_tests::InProcessWorker::start(
        &env.url(),
        config,
        flotilla_worker::Registry::with_builtins(),
    )
    .await;
    let mut conn = env.conn.clone();
    flotilla_tests::eventually(crate::util::LONG, "every job completed", || {
        let mut conn = conn.clone();
        let keys = env.keys.clone();
        async move {
            let ever = flotilla_proto::completions_ever(&mut conn, &keys, "default")
                .await
                .ok()?;
            (ever == jobs as u64).then_some(())
        }
    })
    .await;
    worker.stop().await;

    // Fewer entries than completions: batches share one.
    let entries = env.xlen(&env.keys.done("default")).await;
    assert!(entries < jobs, "{entries} entries for {jobs} completions");
    let mut completed: Vec<String> = env
        .completions("default")
        .await
        .iter()
        .filter_map(|c| c.fields.get("id"))
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect();
    completed.sort();
    ids.sort();
    assert_eq!(completed, ids, "each job's completion once");

    // `done_sizes` names every entry with what it holds; `done_count` keeps the total.
    assert_eq!(sizes_and_counts(&env).await, (entries, jobs, jobs));
    let ever = flotilla_proto::completions_ever(&mut conn, &env.keys, "default")
        .await
        .expect("reads");
    assert_eq!(ever, jobs as u64);

    // Deleting one completed job rewrites its entry without it; the sizes follow.
    let deleted = format!("default:{}", ids[0]);
    flotilla(&env, &["jobs", "delete", &deleted, "--yes"]);
    assert_eq!(env.completions("default").await.len(), jobs - 1);
    let entries = env.xlen(&env.keys.done("default")).await;
    assert_eq!(sizes_and_counts(&env).await, (entries, jobs - 1, jobs - 1));
    // Writing the others again adds an entry, not completions: the count ever stays.
    let ever = flotilla_proto::completions_ever(&mut conn, &env.keys, "default")
        .await
        .expect("reads");
    assert_eq!(ever, jobs as u64);
}
