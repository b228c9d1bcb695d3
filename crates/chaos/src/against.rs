//! `flotilla chaos --against URL`: the drill's producers and verdict against a fleet that
//! is already running. It enqueues `sleep` jobs (every `flotilla worker` serves them),
//! waits for each to finish, and reports what was lost or completed twice while the
//! operator does the killing; it starts and stops nothing.

use std::time::{Duration, Instant};

use flotilla_proto::Keys;

use super::produce::{self, Plan};
use super::verdict::{self, Evidence};
use super::{gather, print_verdict};
use crate::args::ChaosArgs;

/// The built-in handler the jobs run.
const JOB_TYPE: &str = "sleep";

pub async fn run(url: &str, args: &ChaosArgs) -> anyhow::Result<()> {
    let keys = Keys::new(args.namespace.clone());
    let mut conn = super::connect(url).await?;
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "chaos against {} (namespace {}): {} `{JOB_TYPE}` jobs over {}; kill what you like",
        flotilla_proto::redact_url(url),
        args.namespace,
        args.jobs,
        humantime::format_duration(args.duration),
    );
    let produced = produce::run(
        conn.clone(),
        keys.clone(),
        Plan {
            jobs: args.jobs,
            over: args.duration.mul_f64(0.8),
            job_ms: args.job_ms,
            job_type: JOB_TYPE,
            seed,
            groups: None,
        },
    )
    .await;
    println!("chaos: every job is enqueued; waiting for the fleet to finish them");
    let deadline = Instant::now() + args.settle;
    let (completions, dead) = loop {
        let completions = gather::completions(&mut conn, &keys).await?;
        let dead = gather::dead_letters(&mut conn, &keys).await?;
        let unfinished = produced
            .jobs
            .iter()
            .map(|job| super::ledger::job_key(job.queue, &job.id))
            .filter(|key| !completions.contains_key(key) && !dead.contains_key(key))
            .count();
        if unfinished == 0 || Instant::now() >= deadline {
            break (completions, dead);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let evidence = Evidence {
        enqueued: produced.jobs,
        enqueue_retries: produced.retries,
        abandoned: produced.abandoned,
        executions: None,
        events: Vec::new(),
        failures: Vec::new(),
        completions,
        dead,
        expected_ticks: Vec::new(),
        // Other work may be on this fleet's streams: what is left is not the drill's.
        leftovers: verdict::Leftovers::default(),
        cap: None,
        group_cap: None,
        workflows: None,
    };
    let verdict = verdict::judge(&evidence);
    if !print_verdict(&verdict, args)? {
        anyhow::bail!("the drill failed");
    }
    Ok(())
}
