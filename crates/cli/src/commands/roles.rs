//! The helper roles the bench and the chaos drill start as child processes of this binary
//! (built with the `harness` feature only): a worker from the settings plus the handler
//! the harness measures with.

use std::path::Path;

use flotilla_bench::{PickupRecorder, PickupWorkerArgs};
use flotilla_chaos::ChaosWorkerArgs;

use crate::commands::worker::{self, WorkerArgs};
use crate::http::HttpArgs;

/// `flotilla bench-pickup-worker`: serves one queue until SIGTERM, then prints the
/// pickup-time percentiles as one JSON line on stdout.
pub async fn serve_pickups(
    config_file: Option<&Path>,
    args: PickupWorkerArgs,
) -> anyhow::Result<()> {
    let recorder = PickupRecorder::new()?;
    let registering = recorder.clone();
    let worker_args = WorkerArgs {
        queues: Some(vec![args.queue]),
        concurrency: Some(args.concurrency),
        strict: false,
        http: HttpArgs { http_listen: None },
    };
    worker::run_with(config_file, worker_args, move |registry| {
        registering.register(registry);
    })
    .await?;
    println!("{}", recorder.summary_json()?);
    Ok(())
}

/// `flotilla chaos-worker`: a worker from the settings, plus the drill's `chaos` handler
/// writing to this process's ledger file.
pub async fn serve_chaos(config_file: Option<&Path>, args: ChaosWorkerArgs) -> anyhow::Result<()> {
    let ledger = flotilla_chaos::open_ledger(&args.ledger)?;
    let worker_args = WorkerArgs {
        queues: None,
        concurrency: None,
        strict: false,
        http: HttpArgs { http_listen: None },
    };
    worker::run_with(config_file, worker_args, move |registry| {
        flotilla_chaos::register_ledger(registry, ledger);
    })
    .await
}
