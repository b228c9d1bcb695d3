//! `flotilla`: the one binary of the fleet — worker, enqueue, job inspection and a demo.
//!
//! The binary is a thin `main` over this library, so the integration tests can build the
//! very same program as a binary of their own package.

#![warn(missing_docs)]

mod cli;
mod commands;
mod http;
mod settings;
mod telemetry;

use clap::Parser;

use crate::cli::{Cli, Command, JobsCommand};

/// Parses the command line, runs the subcommand and maps failure to exit status 1.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The command runs as a task of the runtime rather than on this thread: a worker's
    // fetch loop then shares the runtime's threads with the jobs it starts and the
    // connections it reads, instead of waking them across threads for every batch.
    let result = runtime.block_on(async { tokio::spawn(run(cli)).await });
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Worker(args) => commands::worker::run(config_file, args).await,
        Command::Enqueue(args) => commands::enqueue::run(config_file, args).await,
        Command::Jobs {
            command: JobsCommand::List(args),
        } => commands::list::run(config_file, args).await,
        Command::Jobs {
            command: JobsCommand::Show(args),
        } => commands::jobs::show(config_file, args).await,
        Command::Jobs {
            command: JobsCommand::Delete { id, queue, yes },
        } => commands::jobs::delete(config_file, &id, queue.as_deref(), yes).await,
        Command::Jobs {
            command: JobsCommand::Retry(args),
        } => commands::retry::run(config_file, args).await,
        Command::Jobs {
            command: JobsCommand::Purge(args),
        } => commands::purge::run(config_file, args).await,
        Command::Jobs {
            command: JobsCommand::Cancel { id, queue },
        } => commands::jobs::cancel(config_file, &id, queue.as_deref()).await,
        Command::Dead { command } => commands::dead::run(config_file, command).await,
        Command::Scheduler(args) => commands::scheduler::run(config_file, args).await,
        Command::Schedules { command } => commands::schedules::run(config_file, command).await,
        Command::Reconcile { repair, json } => {
            commands::reconcile::run(config_file, repair, json).await
        }
        Command::Queues { command } => commands::queues::run(config_file, command).await,
        Command::Workers { command } => commands::workers::run(config_file, command).await,
        Command::Flows { command } => commands::workflows::flows(config_file, command).await,
        Command::Batches { command } => commands::workflows::batches(config_file, command).await,
        Command::Alerts { recent, json } => {
            commands::reconcile::alerts(config_file, recent, json).await
        }
        Command::Dashboard(args) => commands::dashboard::run(config_file, args).await,
        Command::Demo(args) => flotilla_demo::run(args).await,
        #[cfg(feature = "harness")]
        Command::Bench(args) => flotilla_bench::run(args, this_binary()?).await,
        #[cfg(feature = "harness")]
        Command::BenchPickupWorker(args) => commands::roles::serve_pickups(config_file, args).await,
        #[cfg(feature = "harness")]
        Command::Chaos(args) => flotilla_chaos::run(args, this_binary()?).await,
        #[cfg(feature = "harness")]
        Command::ChaosWorker(args) => commands::roles::serve_chaos(config_file, args).await,
    }
}

/// This program's own file: the bench and the drill start their worker, scheduler and
/// helper processes from it.
#[cfg(feature = "harness")]
fn this_binary() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    std::env::current_exe().context("cannot find the flotilla binary to start its roles")
}
