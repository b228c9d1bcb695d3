//! The sweep of jobs that wait without a record: an id key holding the entry its job
//! becomes (`scheduled …` or `failed …`) while the job is missing from its queue's `later`
//! set would never be promoted; with repair it goes back there.

use std::collections::HashSet;

use flotilla_proto::scripts::RequeueMode;

use super::{Reconciler, Report};
use crate::SchedulerError;

impl Reconciler {
    /// Examines a queue's id keys, resuming where the last periodic pass stopped unless
    /// `full`.
    pub(super) async fn sweep_waiting(
        &mut self,
        queue: &str,
        repair: bool,
        full: bool,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let pattern = self.keys.id_key(queue, "*");
        // A queue name holds no space: this cursor's name is no queue's.
        let cursor_name = format!("{queue} later");
        let mut cursor = if full {
            0
        } else {
            self.cursors.get(&cursor_name).copied().unwrap_or(0)
        };
        let mut examined = 0;
        loop {
            let (next, keys) = self.scan_page(cursor, &pattern).await?;
            examined += keys.len();
            // Read twice, so that a job promoted between two reads is not reported.
            let mut orphans = self.waiting_orphans(queue, &keys).await?;
            if !orphans.is_empty() {
                let confirmed: HashSet<String> = self
                    .waiting_orphans(queue, &orphans)
                    .await?
                    .into_iter()
                    .collect();
                orphans.retain(|key| confirmed.contains(key));
            }
            for key in orphans {
                self.handle_stranded(queue, &key, RequeueMode::OrphanWaiting, repair, report)
                    .await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
            if !full && examined >= self.config.sweep_budget {
                report.complete_sweep = false;
                break;
            }
        }
        self.cursors.insert(cursor_name, cursor);
        Ok(())
    }

    /// The id keys among `keys` that hold a waiting job missing from `later`.
    async fn waiting_orphans(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<String>, SchedulerError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.keys.id_key(queue, "");
        let mut pipe = redis::pipe();
        for key in keys {
            // The state word and its space, not the entry that follows.
            pipe.cmd("GETRANGE").arg(key).arg(0).arg("scheduled".len());
        }
        let heads: Vec<Vec<u8>> = pipe.query_async(&mut self.conn).await?;
        let waiting: Vec<(&String, &str)> = keys
            .iter()
            .zip(heads)
            .filter(|(_, head)| head.starts_with(b"scheduled ") || head.starts_with(b"failed "))
            .filter_map(|(key, _)| Some((key, key.strip_prefix(&prefix)?)))
            .collect();
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let later = self.keys.later(queue);
        let mut pipe = redis::pipe();
        for (_, id) in &waiting {
            pipe.cmd("ZSCORE").arg(&later).arg(*id);
        }
        let scores: Vec<Option<f64>> = pipe.query_async(&mut self.conn).await?;
        Ok(waiting
            .into_iter()
            .zip(scores)
            .filter(|(_, score)| score.is_none())
            .map(|((key, _), _)| key.clone())
            .collect())
    }
}
