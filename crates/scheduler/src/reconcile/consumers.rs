//! Consumers of gone workers: entries they own go back on the stream for live workers,
//! and the consumers are forgotten.

use std::collections::HashSet;

use flotilla_proto::consume::{GroupConsumer, group_consumers, pending_of, read_entry};
use flotilla_proto::scripts::{self, ForgetConsumer, Requeue, RequeueMode, RequeueReply};

use super::{FindingKind, Reconciler, Report};
use crate::SchedulerError;

/// Pending entries read per XPENDING step while requeueing a gone consumer's entries.
const REQUEUE_BATCH: usize = 500;

impl Reconciler {
    pub(super) async fn check_consumers(
        &mut self,
        queues: &[String],
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        // Alive by the one rule every process uses (`flotilla_proto::is_live`): a heartbeat
        // within the worker's own lease.
        let (_, workers) = flotilla_proto::worker_beats(&mut self.conn, &self.keys).await?;
        let live: HashSet<String> = workers
            .into_iter()
            .filter(|w| w.live)
            .map(|w| w.id)
            .collect();
        for queue in queues {
            let Some(consumers) = group_consumers(&mut self.conn, &self.keys, queue).await else {
                continue; // no stream or group yet
            };
            for consumer in consumers {
                if live.contains(&consumer.name) {
                    continue;
                }
                self.check_gone_consumer(queue, &consumer, repair, report)
                    .await?;
            }
        }
        Ok(())
    }

    /// A consumer whose worker is gone: holding entries, it is a worker that died with
    /// jobs; idle and empty, it is only clutter. Either way only once the consumer itself
    /// has been idle `worker_timeout`: a worker that woke from a freeze after its
    /// heartbeat lapsed reads at once, before its next beat, and the entries it has just
    /// taken are its own to run, not a dead worker's to hand on.
    async fn check_gone_consumer(
        &mut self,
        queue: &str,
        consumer: &GroupConsumer,
        repair: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let name = &consumer.name;
        if u128::from(consumer.idle_ms) <= self.config.worker_timeout.as_millis() {
            return Ok(());
        }
        if consumer.pending > 0 {
            let mut repaired = false;
            if repair {
                self.requeue_entries_of(queue, name).await?;
                repaired = self.forget(queue, name).await?;
            }
            // Open even when repaired: a worker died holding jobs, which operators should
            // hear about; the alert resolves once the consumer is gone.
            let detail = format!(
                "owns {} entries of queue {queue} but its heartbeat is stale",
                consumer.pending
            );
            report.add(
                FindingKind::WorkerNotResponding,
                name,
                detail,
                true,
                repaired,
            );
        } else {
            let repaired = repair && self.forget(queue, name).await?;
            let detail =
                format!("consumer of queue {queue} with nothing pending and no live worker");
            report.add(FindingKind::StaleConsumer, name, detail, false, repaired);
        }
        Ok(())
    }

    /// Puts every entry a gone consumer owns back on the stream for live workers.
    async fn requeue_entries_of(
        &mut self,
        queue: &str,
        consumer: &str,
    ) -> Result<(), SchedulerError> {
        loop {
            let entries =
                pending_of(&mut self.conn, &self.keys, queue, consumer, REQUEUE_BATCH).await?;
            if entries.is_empty() {
                return Ok(());
            }
            self.requeue_batch(queue, consumer, &entries).await?;
        }
    }

    /// Requeues one batch of a gone consumer's entries; entries whose stream entry was
    /// deleted while pending are recorded as lost.
    async fn requeue_batch(
        &mut self,
        queue: &str,
        consumer: &str,
        entries: &[String],
    ) -> Result<(), SchedulerError> {
        let mut job_ids = Vec::with_capacity(entries.len());
        for entry in entries {
            // The job an entry stands for (its own id, a retry's `retry_of`, else the entry
            // id); an entry already gone is named by its id.
            let found = read_entry(&mut self.conn, &self.keys, queue, entry).await?;
            job_ids.push(found.map_or_else(|| entry.clone(), |e| e.job_id()));
        }
        let reason = format!("requeued: worker {consumer} stopped responding");
        let calls: Vec<Requeue> = entries
            .iter()
            .zip(&job_ids)
            .map(|(entry, job_id)| Requeue {
                queue,
                job_id,
                reason: &reason,
                mode: RequeueMode::DeadConsumer {
                    consumer,
                    entry_id: entry,
                },
            })
            .collect();
        let mut lost = Vec::new();
        for (entry, reply) in entries
            .iter()
            .zip(scripts::run_all(&mut self.conn, &self.keys, &calls).await?)
        {
            if reply? == RequeueReply::Lost {
                lost.push(entry.clone());
            }
        }
        if !lost.is_empty() {
            tracing::error!(queue = %queue, lost = ?lost, "jobs lost: entries were deleted from the stream while pending");
            let _: String = flotilla_proto::record_lost(&self.keys, queue, &lost)
                .query_async(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    async fn forget(&mut self, queue: &str, consumer: &str) -> Result<bool, SchedulerError> {
        let forget = ForgetConsumer { queue, consumer };
        Ok(scripts::run(&mut self.conn, &self.keys, &forget).await?)
    }
}
