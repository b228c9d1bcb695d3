//! The sweep of jobs that wait without a record: an id key holding the entry its job
//! becomes (`scheduled …` or `failed …`) while the job is missing from its queue's `later`
//! set would never be promoted; with repair it goes back there.

use std::collections::HashSet;

use flotilla_proto::scripts::RequeueMode;
use flotilla_proto::{missing_from_later, waiting_states};

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
        let mut sweep = self.begin_sweep(format!("{queue} later"), pattern, full);
        while let Some(keys) = self.next_page(&mut sweep, report).await? {
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
        }
        self.end_sweep(sweep);
        Ok(())
    }

    /// The id keys among `keys` that hold a waiting job missing from `later`.
    async fn waiting_orphans(
        &mut self,
        queue: &str,
        keys: &[String],
    ) -> Result<Vec<String>, SchedulerError> {
        let prefix = self.keys.id_key(queue, "");
        let (keys, ids): (Vec<&String>, Vec<String>) = keys
            .iter()
            .filter_map(|key| Some((key, key.strip_prefix(&prefix)?.to_owned())))
            .unzip();
        let states = waiting_states(&mut self.conn, &self.keys, queue, &ids).await?;
        let (keys, ids): (Vec<&String>, Vec<String>) = keys
            .into_iter()
            .zip(ids)
            .zip(states)
            .filter(|(_, state)| state.is_some())
            .map(|(pair, _)| pair)
            .unzip();
        let missing = missing_from_later(&mut self.conn, &self.keys, queue, &ids).await?;
        Ok(keys
            .into_iter()
            .zip(missing)
            .filter(|(_, missing)| *missing)
            .map(|(key, _)| key.clone())
            .collect())
    }
}
