//! The worker registry, as an operator reads it.

use std::collections::HashMap;

use flotilla_proto::{server_time_ms, worker_field};
use serde::Serialize;

use crate::{Admin, AdminError};

/// Whether a worker is beating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Its last heartbeat is within its lease.
    Alive,
    /// Its heartbeat is older than its lease: its jobs are being reclaimed.
    Silent,
}

/// One registered worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: Option<u32>,
    pub version: String,
    pub queues: Vec<String>,
    pub concurrency: Option<u32>,
    pub in_flight: Option<u32>,
    pub started_at_ms: Option<i64>,
    pub last_heartbeat_ms: i64,
    pub state: WorkerState,
}

impl Admin {
    /// Every worker in the registry, most recently beating first.
    pub async fn workers(&mut self) -> Result<Vec<WorkerRow>, AdminError> {
        let now = server_time_ms(&mut self.conn).await?;
        let beats: Vec<(String, i64)> = redis::cmd("ZREVRANGE")
            .arg(self.keys.workers())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn)
            .await?;
        let mut pipe = redis::pipe();
        for (id, _) in &beats {
            pipe.cmd("HGETALL").arg(self.keys.worker(id));
        }
        let details: Vec<HashMap<String, String>> = if beats.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.conn).await?
        };
        Ok(beats
            .into_iter()
            .zip(details)
            .map(|((id, beat), info)| row(id, beat, &info, now))
            .collect())
    }
}

fn row(id: String, last_heartbeat_ms: i64, info: &HashMap<String, String>, now: i64) -> WorkerRow {
    let number = |field: &str| info.get(field).and_then(|v| v.parse::<i64>().ok());
    let small = |field: &str| number(field).and_then(|v| u32::try_from(v).ok());
    let text = |field: &str| info.get(field).cloned().unwrap_or_default();
    // A worker's hash outlives two of its leases; without it, the beat is long stale.
    let lease_ms = number(worker_field::LEASE_MS).unwrap_or(0);
    let state = if now - last_heartbeat_ms <= lease_ms {
        WorkerState::Alive
    } else {
        WorkerState::Silent
    };
    WorkerRow {
        host: text("host"),
        pid: small("pid"),
        version: text("version"),
        queues: info
            .get(worker_field::QUEUES)
            .map(|q| {
                q.split(',')
                    .filter(|q| !q.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        concurrency: small("concurrency"),
        in_flight: small("in_flight"),
        started_at_ms: number("started_at"),
        last_heartbeat_ms,
        state,
        id,
    }
}
