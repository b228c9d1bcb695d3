//! `flotilla scheduler`: one replica of the leader-elected scheduler.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use flotilla_scheduler::{ScheduleStore, Scheduler, Shutdown};

use crate::http::HttpArgs;
use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>, args: SchedulerArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let shutdown = Shutdown::on_signals();
    let target = settings.redis_target()?;
    let scheduler = Scheduler::connect(&target, settings.scheduler_config())
        .await
        .with_context(|| format!("cannot start a scheduler for {}", target.shown()))?;
    if let Some(addr) = args.http.http_listen {
        // A replica is ready while it reaches Redis, leading or not: either way it is
        // doing its job.
        let target = target.clone();
        let ready = crate::http::ready_check(move || {
            let target = target.clone();
            async move { ping(&target).await }
        });
        let mut registry = crate::http::new_registry();
        scheduler.metrics().register(&mut registry);
        crate::http::serve(addr, registry, ready).await?;
    }
    sync_until_done(scheduler.store(), &settings, &shutdown).await?;
    seed_limits(&target, &settings).await;
    scheduler.run(shutdown).await?;
    Ok(())
}

/// Writes the settings file's flow limits to Redis for the queues that have none: one
/// an operator set (or cleared and set again) at runtime stays. A failure is said and
/// left: the queues stay as they are, and the next start tries again.
async fn seed_limits(target: &flotilla_proto::RedisTarget, settings: &Settings) {
    if settings.flow.is_empty() {
        return;
    }
    let keys = flotilla_proto::Keys::new(&settings.namespace);
    let mut conn = match super::connect_redis(target).await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!("flow limits from the settings file not written: {e:#}");
            return;
        }
    };
    for (queue, flow) in &settings.flow {
        // Checked when the settings were loaded.
        let Ok(limit) = flow.limit() else { continue };
        match flotilla_proto::flow::set_limit(&mut conn, &keys, queue, &limit, true).await {
            Ok(true) => {
                tracing::info!(queue = %queue, limit = %limit, "flow limit from the settings file written")
            }
            Ok(false) => {
                tracing::info!(queue = %queue, "flow limit in the settings file not written: the queue has one set at runtime (see `flotilla queues limit`)")
            }
            Err(e) => {
                tracing::warn!(queue = %queue, "flow limit from the settings file not written: {e}")
            }
        }
    }
}

/// Writes the settings file's schedules to Redis, retrying while Redis is unreachable.
async fn sync_until_done(
    store: &ScheduleStore,
    settings: &Settings,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let schedules = settings.schedule_definitions();
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match store.sync_config(&schedules).await {
            Ok(()) => {
                tracing::info!(
                    schedules = schedules.len(),
                    "schedules from the settings file synced"
                );
                return Ok(());
            }
            Err(flotilla_scheduler::SchedulerError::Redis(e)) if !shutdown.is_triggered() => {
                tracing::warn!("cannot sync schedules yet, retrying in {delay:?}: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A PING over a connection of its own, so a probe never waits behind the scheduler's
/// own calls.
async fn ping(target: &flotilla_proto::RedisTarget) -> Result<(), String> {
    flotilla_proto::redis_answers(async {
        let mut conn = target
            .client()
            .await?
            .get_multiplexed_async_connection()
            .await?;
        flotilla_proto::ping(&mut conn).await
    })
    .await
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub http: HttpArgs,
}
