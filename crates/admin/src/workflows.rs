//! Flows and batches as an operator reads them: which jobs wait on what, and why; a
//! batch's counts and callbacks.

use std::collections::BTreeMap;

use flotilla_proto::dependencies::{
    self, BatchState, Edge, ParentState, batch_state, edges_out, flow_jobs, queues_holding,
};

use crate::{Admin, AdminError};

/// How many jobs of a flow a view shows at most (a flow holds up to 20 000).
pub const FLOW_JOBS_SHOWN: usize = 500;

/// One job of a flow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowJob {
    /// Its queue (or partition).
    pub queue: String,
    /// Its id.
    pub id: String,
    /// Where it is (`None`: no longer found, forgotten after its retention).
    pub status: Option<String>,
    /// Its type, when known.
    pub job_type: Option<String>,
    /// The parents it was created with.
    pub waits_for: Vec<Edge>,
    /// Those of them that ended, and how, with their results.
    pub parents_ended: Vec<ParentState>,
    /// How many of its parents it still waits for, while it waits.
    pub left: Option<u64>,
    /// The jobs (and batches) waiting for it, while it has not ended.
    pub waited_on_by: Vec<Edge>,
}

/// A flow: its jobs, each with what it waits for, and counts by status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowView {
    /// The flow's id.
    pub id: String,
    /// The queue that lists it (its first job's).
    pub queue: String,
    /// How many jobs it holds.
    pub total: u64,
    /// The first [`FLOW_JOBS_SHOWN`] of them, in the order they were given.
    pub jobs: Vec<FlowJob>,
    /// How many of the jobs shown are in each status.
    pub counts: BTreeMap<String, u64>,
}

impl Admin {
    /// Flow `id`, found in whichever known queue lists it.
    pub async fn flow(&mut self, id: &str) -> Result<FlowView, AdminError> {
        let queue = self.holding(id, true).await?;
        let Some((members, total)) =
            flow_jobs(&mut self.conn, &self.keys, &queue, id, FLOW_JOBS_SHOWN).await?
        else {
            return Err(AdminError::NoSuch {
                kind: "flow",
                id: id.to_owned(),
            });
        };
        let mut jobs = Vec::with_capacity(members.len());
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (job_queue, job_id) in members {
            let record = self.describe(&job_queue, &job_id).await?;
            let deps = dependencies::dependencies(&mut self.conn, &self.keys, &job_queue, &job_id)
                .await?
                .unwrap_or_default();
            let waited_on_by = edges_out(&mut self.conn, &self.keys, &job_queue, &job_id).await?;
            let status = record
                .as_ref()
                .and_then(|r| r.status)
                .map(|s| s.as_str().to_owned());
            *counts
                .entry(status.clone().unwrap_or_else(|| "forgotten".to_owned()))
                .or_default() += 1;
            jobs.push(FlowJob {
                queue: job_queue,
                id: job_id,
                status,
                job_type: record.map(|r| r.job_type),
                waits_for: deps.edges_in,
                parents_ended: deps.parents,
                left: deps.left,
                waited_on_by,
            });
        }
        Ok(FlowView {
            id: id.to_owned(),
            queue,
            total,
            jobs,
            counts,
        })
    }

    /// What job `id` of `queue` waits (or waited) for, and the edges from it to the jobs
    /// and batches that wait for it.
    pub async fn job_edges(
        &mut self,
        queue: &str,
        id: &str,
    ) -> Result<(Option<dependencies::Dependencies>, Vec<Edge>), AdminError> {
        let deps = dependencies::dependencies(&mut self.conn, &self.keys, queue, id).await?;
        let out = edges_out(&mut self.conn, &self.keys, queue, id).await?;
        Ok((deps, out))
    }

    /// Batch `id` of `queue`, or of whichever known queue holds it.
    pub async fn batch(&mut self, id: &str, queue: Option<&str>) -> Result<BatchState, AdminError> {
        let queue = match queue {
            Some(queue) => queue.to_owned(),
            None => self.holding(id, false).await?,
        };
        batch_state(&mut self.conn, &self.keys, &queue, id)
            .await?
            .ok_or_else(|| AdminError::NoSuch {
                kind: "batch",
                id: id.to_owned(),
            })
    }

    /// The one known queue holding flow (or batch) `id`.
    async fn holding(&mut self, id: &str, flow: bool) -> Result<String, AdminError> {
        let kind = if flow { "flow" } else { "batch" };
        let queues = self.queues_and_partitions().await?;
        let mut found = queues_holding(&mut self.conn, &self.keys, &queues, id, flow).await?;
        match found.len() {
            0 => Err(AdminError::NoSuch {
                kind,
                id: id.to_owned(),
            }),
            1 => Ok(found.remove(0)),
            _ => Err(AdminError::SeveralQueues {
                kind,
                id: id.to_owned(),
                queues: found,
            }),
        }
    }

    /// Every known queue name, each partition by its own.
    async fn queues_and_partitions(&mut self) -> Result<Vec<String>, AdminError> {
        Ok(flotilla_proto::known_queues(&mut self.conn, &self.keys).await?)
    }
}
