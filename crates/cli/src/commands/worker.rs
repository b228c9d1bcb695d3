//! `flotilla worker`: serve jobs until SIGTERM or SIGINT.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use flotilla_worker::{QueueWeight, Registry, Shutdown, Worker};

use crate::http::HttpArgs;
use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>, args: WorkerArgs) -> anyhow::Result<()> {
    run_with(config_file, args, |_| {}).await
}

/// Runs a worker whose registry `extend` adds handlers to, after the settings' own.
pub async fn run_with(
    config_file: Option<&Path>,
    args: WorkerArgs,
    extend: impl FnOnce(&mut Registry),
) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let mut config = settings.worker_config();
    if let Some(queues) = &args.queues {
        config.queues = parse_queues(queues)?;
    }
    if let Some(concurrency) = args.concurrency {
        config.concurrency = concurrency;
    }
    config.strict_priority |= args.strict;
    let mut registry = settings.handler_registry()?;
    extend(&mut registry);
    let shutdown = Shutdown::on_signals();
    let target = settings.redis_target()?;
    let worker = Worker::connect(&target, config, registry)
        .await
        .with_context(|| format!("cannot start a worker for {}", target.shown()))?;
    if let Some(addr) = args.http.http_listen {
        let mut registry = crate::http::new_registry();
        worker.metrics().register(&mut registry);
        let readiness = worker.readiness();
        let ready = crate::http::ready_check(move || {
            let readiness = readiness.clone();
            async move { readiness.check().await }
        });
        crate::http::serve(addr, registry, ready).await?;
    }
    worker.run(shutdown).await?;
    Ok(())
}

/// `critical=6,default=3,low` → weights (a bare name weighs 1).
fn parse_queues(specs: &[String]) -> anyhow::Result<Vec<QueueWeight>> {
    specs
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|spec| {
            let (name, weight) = match spec.split_once('=') {
                Some((name, weight)) => (name.trim(), weight.trim()),
                None => (spec.trim(), "1"),
            };
            match weight.parse::<u32>() {
                Ok(w) if w >= 1 && !name.is_empty() => Ok(QueueWeight::new(name, w)),
                _ => bail!(
                    "--queues: {spec:?} is not QUEUE or QUEUE=WEIGHT with a weight of at least 1"
                ),
            }
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to serve, with optional weights: `critical=6,default=3,low=1` or `emails`.
    /// Overrides the settings file.
    #[arg(long, value_delimiter = ',', value_name = "QUEUE[=WEIGHT]")]
    pub queues: Option<Vec<String>>,

    /// Jobs run at once. Overrides the settings file.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Serve queues strictly by weight instead of by weighted lottery.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub http: HttpArgs,
}
