//! What the overview shows, gathered once for the page and the API alike.

use flotilla_admin::{Alert, AlertEvent};
use flotilla_admin::{Minute, QueueStats, WorkerRow};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// Minutes of throughput the overview charts.
const CHART_MINUTES: usize = 60;
/// Alert history lines the alerts page shows.
pub const RECENT_ALERTS: usize = 50;

/// The leading scheduler, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Leader {
    pub holder: Option<String>,
    pub epoch: u64,
    pub lease_remaining_ms: Option<i64>,
}

/// The fleet at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub queues: Vec<QueueStats>,
    /// Completions and deaths per minute over the last hour, oldest first.
    pub throughput: Vec<Minute>,
    pub workers: Vec<WorkerRow>,
    pub leader: Leader,
    pub alerts: Vec<Alert>,
    /// Changes are refused (no token was configured).
    pub read_only: bool,
}

pub async fn overview(state: &AppState) -> Result<Overview, ApiError> {
    let mut admin = state.admin();
    let queues = admin.queue_stats().await?;
    let throughput = admin.throughput(CHART_MINUTES).await?;
    let workers = admin.workers().await?;
    Ok(Overview {
        queues,
        throughput,
        workers,
        leader: leader(state).await?,
        alerts: alerts(state, 0).await?.0,
        read_only: state.auth.read_only(),
    })
}

pub async fn leader(state: &AppState) -> Result<Leader, ApiError> {
    let status = state.admin().leader().await?;
    Ok(Leader {
        holder: status.holder,
        epoch: status.epoch,
        lease_remaining_ms: status.lease_remaining_ms,
    })
}

/// Active alerts, and the `recent` last lines of their history.
pub async fn alerts(
    state: &AppState,
    recent: usize,
) -> Result<(Vec<Alert>, Vec<AlertEvent>), ApiError> {
    Ok(state.admin().alerts(recent).await?)
}
