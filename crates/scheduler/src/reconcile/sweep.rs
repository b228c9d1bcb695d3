//! The job-record sweep: `running` jobs whose entry is no longer pending, `pending` jobs
//! whose entry is gone, and `scheduled` or retrying jobs missing from the delayed set are
//! stranded; with repair they go back on their stream, or into the delayed set.

use std::collections::HashSet;

use flotilla_proto::scripts::{self, Requeue, RequeueMode, RequeueReply};
use flotilla_proto::{RecordPlace, stranded_records};

use super::{FindingKind, Reconciler, Report};
use crate::SchedulerError;

/// A record that looks stranded, and how it would be requeued.
type Stranded = (String, RequeueMode<'static>);

impl Reconciler {
    /// Examines a queue's job records, resuming where the last periodic pass stopped
    /// unless `full`.
    pub(super) async fn sweep(
        &mut self,
        queue: &str,
        repair: bool,
        full: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let pattern = format!("{}*", self.keys.job_prefix(queue));
        let mut sweep = self.begin_sweep(queue.to_owned(), pattern, full);
        while let Some(keys) = self.next_page(&mut sweep, report).await? {
            for (key, mode) in self.stranded(queue, &keys).await? {
                self.handle_stranded(queue, &key, mode, repair, report)
                    .await?;
            }
        }
        report.jobs_examined += self.end_sweep(sweep);
        Ok(())
    }

    /// Reports one stranded job, requeueing it first with repair.
    pub(super) async fn handle_stranded(
        &mut self,
        queue: &str,
        key: &str,
        mode: RequeueMode<'static>,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        // The job id is what follows the queue's prefix: an id may hold `:job:` itself.
        let prefix = match mode {
            RequeueMode::OrphanWaiting => self.keys.id_key(queue, ""),
            _ => self.keys.job_prefix(queue),
        };
        let id = key.strip_prefix(&prefix).unwrap_or(key).to_owned();
        let (kind, detail) = match mode {
            RequeueMode::OrphanRunning => (
                FindingKind::OrphanRunning,
                "running, but its entry is no longer pending",
            ),
            RequeueMode::OrphanScheduled => (
                FindingKind::OrphanScheduled,
                "waiting for its time, but missing from the delayed set",
            ),
            RequeueMode::OrphanWaiting => (
                FindingKind::OrphanWaiting,
                "waiting for its time without a record, but missing from the later set",
            ),
            _ => (
                FindingKind::OrphanPending,
                "pending, but its entry is gone from the stream",
            ),
        };
        let mut repaired = false;
        if repair {
            let reason = format!("requeued by reconciliation: {detail}");
            let requeue = Requeue {
                queue,
                job_id: &id,
                reason: &reason,
                mode,
            };
            if scripts::run(&mut self.conn, &self.keys, &requeue).await? == RequeueReply::Unchanged
            {
                return Ok(()); // it moved on between the check and the repair
            }
            repaired = true;
        }
        let detail = format!("job in queue {queue} is {detail}");
        report.add(kind, id, detail, !repaired, repaired);
        Ok(())
    }

    /// The records among `keys` that look stranded, checked twice so a job that simply
    /// moved on between two reads is not reported.
    async fn stranded(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<Stranded>, SchedulerError> {
        let mut candidates = self.stranded_once(queue, keys).await?;
        if !candidates.is_empty() {
            let again: Vec<String> = candidates.iter().map(|(k, _)| k.clone()).collect();
            let confirmed: HashSet<String> = self
                .stranded_once(queue, &again)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            candidates.retain(|(k, _)| confirmed.contains(k));
        }
        Ok(candidates)
    }

    /// One read of the records' states, then one of their entries.
    async fn stranded_once(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<Stranded>, SchedulerError> {
        let found = stranded_records(&mut self.conn, &self.keys, queue, keys).await?;
        Ok(found
            .into_iter()
            .map(|(key, place)| {
                let mode = match place {
                    RecordPlace::Running => RequeueMode::OrphanRunning,
                    RecordPlace::Pending => RequeueMode::OrphanPending,
                    RecordPlace::Waiting => RequeueMode::OrphanScheduled,
                };
                (key, mode)
            })
            .collect())
    }
}
