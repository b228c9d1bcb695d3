//! `flotilla scheduler`: one replica of the leader-elected scheduler.

use std::path::Path;

use anyhow::Context;
use flotilla_scheduler::{ScheduleStore, Scheduler, Shutdown};

use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let shutdown = Shutdown::on_signals();
    let scheduler = Scheduler::connect(&settings.redis_url, settings.scheduler_config())
        .await
        .with_context(|| {
            format!(
                "cannot start a scheduler for {}",
                flotilla_proto::redact_url(&settings.redis_url)
            )
        })?;
    sync_until_done(scheduler.store(), &settings, &shutdown).await?;
    scheduler.run(shutdown).await?;
    Ok(())
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
