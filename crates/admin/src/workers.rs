//! The worker registry, as an operator reads it.

use flotilla_proto::{WorkerBeat, worker_beats};
use serde::Serialize;

use crate::{Admin, AdminError};

/// Whether a worker is beating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Its last heartbeat is within its lease.
    Alive,
    /// Its heartbeat is older than its lease (or its registry hash is gone): its jobs are
    /// being reclaimed.
    Silent,
}

/// One registered worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRow {
    /// The worker's id.
    pub id: String,
    /// The host it runs on; empty when its registry hash does not say.
    pub host: String,
    /// Its process id; `None` when its registry hash does not say.
    pub pid: Option<u32>,
    /// The version it announces; empty when its registry hash does not say.
    pub version: String,
    /// The queues it serves, as its registry hash lists them.
    pub queues: Vec<String>,
    /// How many jobs it runs at once at most; `None` when its registry hash does not say.
    pub concurrency: Option<u32>,
    /// How many jobs it was running at its last heartbeat; `None` when its registry hash
    /// does not say.
    pub in_flight: Option<u32>,
    /// When it started, ms since the Unix epoch; `None` when its registry hash does not
    /// say.
    pub started_at_ms: Option<i64>,
    /// Its last heartbeat, ms since the Unix epoch on the server's clock.
    pub last_heartbeat_ms: i64,
    /// Whether it is beating.
    pub state: WorkerState,
}

impl Admin {
    /// Every worker in the registry, most recently beating first, judged alive by the one
    /// rule every process uses (`flotilla_proto::is_live`).
    pub async fn workers(&mut self) -> Result<Vec<WorkerRow>, AdminError> {
        let (_, mut beats) = worker_beats(&mut self.conn, &self.keys).await?;
        beats.sort_by(|a, b| b.beat_ms.cmp(&a.beat_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(beats.into_iter().map(row).collect())
    }

    /// Waits until at least `count` workers have registered (alive or not), checking every
    /// 20 ms, so what follows runs against workers that are up: a rollout's or a drill's
    /// check. Fails after `within`.
    pub async fn wait_for_workers(
        &mut self,
        count: usize,
        within: std::time::Duration,
    ) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, beats) = worker_beats(&mut self.conn, &self.keys).await?;
            if beats.len() >= count {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError::TooFewWorkers {
                    up: beats.len(),
                    wanted: count,
                    within,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn row(beat: WorkerBeat) -> WorkerRow {
    let info = &beat.info;
    let number = |field: &str| info.get(field).and_then(|v| v.parse::<i64>().ok());
    let small = |field: &str| number(field).and_then(|v| u32::try_from(v).ok());
    let text = |field: &str| info.get(field).cloned().unwrap_or_default();
    WorkerRow {
        host: text("host"),
        pid: small("pid"),
        version: text("version"),
        queues: beat.queues().map(str::to_owned).collect(),
        concurrency: small("concurrency"),
        in_flight: small("in_flight"),
        started_at_ms: number("started_at"),
        last_heartbeat_ms: beat.beat_ms,
        state: if beat.live {
            WorkerState::Alive
        } else {
            WorkerState::Silent
        },
        id: beat.id,
    }
}
