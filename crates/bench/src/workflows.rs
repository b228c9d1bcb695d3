//! The `workflows` scenario: what jobs that wait for jobs cost. A fan-in of `--jobs`
//! parents into one child (each parent's completion tells the child, O(1) whatever the
//! number of siblings), a batch of `--jobs` jobs with a `complete` callback, and, in the
//! same run, plain jobs of the same count as the baseline, each drained by one worker
//! process of concurrency 50.

use flotilla_producer::{Batch, Flow, NewJob, Parent};

use super::Bench;
use super::drain::{Backlog, DrainRun, Memory, SINGLE_WORKER_CONCURRENCY};

/// A flow holds at most this many jobs: the fan-in's parents are capped one below it.
const MOST_PARENTS: usize = 19_999;

pub(super) async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let n = bench.args.jobs;
    let payload = bench.payload();
    let run = |variant: String| DrainRun {
        scenario: "workflows",
        variant,
        queues: &["default"],
        processes: 1,
        concurrency: SINGLE_WORKER_CONCURRENCY,
    };

    let plain = bench.noop_jobs(n)?;
    let outcome = run(format!("plain{n}"))
        .measure_backlog(bench, Backlog::Jobs(plain))
        .await?;
    bench.record(outcome.row_with(Memory::Retained));

    let parents = n.min(MOST_PARENTS);
    let mut flow = Flow::with_id("fan-in");
    let mut child = NewJob::new("noop", &payload)?.id("fan-in-child");
    for i in 0..parents {
        let id = format!("fan-in-{i}");
        flow.add(NewJob::new("noop", &payload)?.id(&id))?;
        child = child.after(Parent::new("default", &id));
    }
    flow.add(child)?;
    let outcome = run(format!("fanin{parents}"))
        .measure_backlog(bench, Backlog::Flow(flow, parents + 1))
        .await?;
    bench.record(outcome.row_with(Memory::Retained));

    let mut batch =
        Batch::new("batch").on_complete(NewJob::new("noop", &payload)?.id("batch-done"));
    for i in 0..n {
        batch.add(NewJob::new("noop", &payload)?.id(&format!("batch-{i}")))?;
    }
    let outcome = run(format!("batch{n}"))
        .measure_backlog(bench, Backlog::Batch(batch, n + 1))
        .await?;
    bench.record(outcome.row_with(Memory::Retained));
    Ok(())
}
