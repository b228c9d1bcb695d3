//! The check of jobs that wait for other jobs, and of batches: every end is told in the
//! script that ends a job, so a waiting job whose parent ended untold, or a finished batch
//! whose callback neither fired nor was cancelled, is what a loss of data left. With
//! repair, each is told now (`repair_deps.lua`), as its end would have told it.

use flotilla_proto::dependencies::waiting_before;
use flotilla_proto::millis;
use flotilla_proto::scripts::{self, RepairDeps, RepairTarget};

use super::{FindingKind, Reconciler, Report};
use crate::SchedulerError;

/// Waiting jobs looked at per queue per pass, oldest first.
const WAITING_PER_PASS: usize = 1000;

impl Reconciler {
    /// Looks at a queue's oldest waiting jobs (those older than the worker timeout, so
    /// that an end being told right now is not taken for one that never was) and at its
    /// batches.
    pub(super) async fn check_dependencies(
        &mut self,
        queue: &str,
        now: i64,
        repair: bool,
        full: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let before = now - millis(self.config.worker_timeout) as i64;
        let waiting =
            waiting_before(&mut self.conn, &self.keys, queue, before, WAITING_PER_PASS).await?;
        for id in waiting {
            self.look(queue, RepairTarget::Job, &id, repair, report)
                .await?;
        }
        let pattern = self.keys.batch(queue, "*");
        let prefix = self.keys.batch(queue, "");
        let mut sweep = self.begin_sweep(format!("{queue} batches"), pattern, full);
        while let Some(keys) = self.next_page(&mut sweep, report).await? {
            for key in keys {
                if let Some(id) = key.strip_prefix(&prefix) {
                    self.look(queue, RepairTarget::Batch, id, repair, report)
                        .await?;
                }
            }
        }
        self.end_sweep(sweep);
        Ok(())
    }

    async fn look(
        &mut self,
        queue: &str,
        target: RepairTarget,
        id: &str,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let call = RepairDeps {
            queue,
            target,
            id,
            repair,
            retention_ms: 86_400_000,
        };
        for found in scripts::run(&mut self.conn, &self.keys, &call).await? {
            let (kind, what) = match target {
                RepairTarget::Job => (FindingKind::WaitingUntold, "job"),
                RepairTarget::Batch => (FindingKind::BatchUndecided, "batch"),
            };
            report.add(
                kind,
                format!("{queue}/{id}"),
                format!("{what} {id} of {queue}: {}", explain(&found)),
                true,
                repair,
            );
        }
        Ok(())
    }
}

/// A finding of `repair_deps.lua` in words.
fn explain(found: &str) -> String {
    let mut words = found.splitn(2, ' ');
    let (kind, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    match kind {
        "untold" => format!("{rest} without telling it"),
        "gone" => format!("waits for {rest}, which is known no more (told as deleted)"),
        "unhooked" => format!("{rest} has lost its edge to it (written again)"),
        "undecided" => format!("finished, and its {rest} callback neither fired nor was cancelled"),
        _ => found.to_owned(),
    }
}
