//! Debounce: jobs enqueued with one key within the delay of each other run once, with the
//! newest payload, at most the bound after the first; from Rust, the CLI and the
//! published script.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_producer::{NewJob, Outcome};
use flotilla_tests::{InProcessWorker, fast_config};
use flotilla_worker::{HandlerError, JobContext, Registry};
use serde_json::json;

use crate::util::{Env, published_enqueue_of, run_flotilla};

/// What each run of the `index` handler saw: the payload's `n`.
type Seen = Arc<Mutex<Vec<u64>>>;

fn indexing(seen: &Seen) -> Registry {
    let mut registry = Registry::with_builtins();
    let seen = Arc::clone(seen);
    registry.register_fn("index", move |args: serde_json::Value, _ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock()
                .expect("lock")
                .push(args["n"].as_u64().unwrap_or(u64::MAX));
            Ok::<_, HandlerError>(None::<serde_json::Value>)
        }
    });
    registry
}

/// Enqueues of one key every 3 ms for 3 s (at most 1 000), with a delay of 1 s and a
/// bound of 2 s: the first job runs at the bound, 2 s after the first enqueue, with the
/// last payload folded into it; the enqueues after it make a second job, which runs 1 s
/// after the last enqueue with the last payload. Two runs, never a third.
#[tokio::test]
async fn a_burst_of_one_key_runs_twice_each_with_the_newest_payload() {
    let env = Env::start().await;
    let seen = Seen::default();
    let worker = InProcessWorker::start(&env.url(), fast_config(), indexing(&seen)).await;
    let started = Instant::now();
    let mut outcomes: Vec<(u64, Outcome, String)> = Vec::new();
    for n in 0..1000u64 {
        if started.elapsed() >= Duration::from_secs(3) {
            break;
        }
        let job = NewJob::new("index", &json!({"n": n}))
            .expect("job")
            .debounce("doc-7", Duration::from_secs(1))
            .debounce_max(Duration::from_secs(2));
        let enqueued = env.producer.enqueue(job).await.expect("enqueued");
        outcomes.push((n, enqueued.outcome, enqueued.id));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let last = outcomes.last().map(|(n, _, _)| *n).expect("enqueued some");
    assert!(last > 100, "the burst enqueued {last} jobs");
    // Every run is due by 1 s after the last enqueue; wait past it, then a little more to
    // see that no third run comes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    worker.stop().await;
    let runs = seen.lock().expect("lock").clone();

    let created: Vec<&(u64, Outcome, String)> = outcomes
        .iter()
        .filter(|(_, outcome, _)| *outcome == Outcome::Created)
        .collect();
    assert_eq!(created.len(), 2, "two jobs made: {created:?}");
    let second = created[1];
    // Every other enqueue folded into the job made before it.
    for (n, outcome, id) in &outcomes {
        let owner = if *n < second.0 {
            &created[0].2
        } else {
            &second.2
        };
        assert!(
            *outcome == Outcome::Created || (*outcome == Outcome::Debounced && id == owner),
            "enqueue {n}: {outcome:?} into {id}"
        );
    }
    // Each run saw the last payload folded into its job.
    assert_eq!(runs, vec![second.0 - 1, last], "runs saw {runs:?}");
}

#[tokio::test]
async fn the_cli_and_the_published_script_debounce_too() {
    let env = Env::start().await;
    let url = env.url();
    let enqueue = |payload: &str| {
        let args = [
            "enqueue",
            "--type",
            "index",
            "--payload",
            payload,
            "--debounce",
            "k",
        ];
        run_flotilla(
            &url,
            &[],
            &[&args[..], &["--debounce-delay", "1h"]].concat(),
        )
    };
    let first = enqueue(r#"{"n": 1}"#);
    let again = enqueue(r#"{"n": 2}"#);
    assert_eq!(first.trim(), again.trim(), "folded into the first");

    // From another language: the published script with ARGV[16] and ARGV[17].
    let call = |id: &'static str, n: u32| {
        let env = &env;
        async move {
            let reply = published_enqueue_of(
                env,
                id,
                "index",
                &format!(r#"{{"n": {n}}}"#),
                "0",
                Some(env.keys.debounce("default", "from-go")),
                &[3_600_000, 7_200_000],
            )
            .await
            .expect("the script answers");
            redis::from_redis_value::<Vec<String>>(reply).expect("two words")
        }
    };
    assert_eq!(call("go-1", 1).await, ["go-1", "created"]);
    assert_eq!(call("go-2", 2).await, ["go-1", "debounced"]);
    let waiting = env.record("default", "go-1").await.expect("waits");
    assert_eq!(waiting.payload, json!({"n": 2}), "the last payload won");
    assert_eq!(
        env.record("default", "go-2").await,
        None,
        "nothing else made"
    );
}
