//! What to do with a fetch's entries (run on the fast path, start through `start`, or
//! bury), the script calls that carry it out, and dead-lettering what cannot run.

use std::sync::Arc;

use flotilla_proto::scripts::{
    self, Bury, BuryReply, RawJob, ScriptCall, ScriptError, Start, StartEntry,
};
use flotilla_proto::{EntryFields, millis, new_lease_token};
use tokio::sync::OwnedSemaphorePermit;

use crate::fetch::reads::{Fetched, IdClaim};
use crate::metrics::{Outcome as MetricOutcome, UNKNOWN_TYPE};
use crate::run::heartbeat::now_ms;
use crate::shared::Shared;

use super::begin::begin;
use super::entry_plan::{BuryPlan, FastPlan, StartPlan};

/// What to do with one fetch's entries: fast-path runs, start calls grouped by queue, and
/// buries.
#[derive(Default)]
pub(super) struct Plans {
    pub(super) fast: Vec<FastPlan>,
    pub(super) batches: Vec<(String, Vec<StartPlan>)>,
    pub(super) buries: Vec<BuryPlan>,
}

impl Plans {
    /// Decodes each entry: a valid one joins its queue's start call, a malformed one is
    /// buried with the reason.
    pub(super) fn new(shared: &Shared, fetched: Vec<Fetched>) -> Self {
        let mut plans = Self::default();
        let max_payload_bytes = shared.config.jobs.limits.max_payload_bytes;
        let now = now_ms();
        for fetched in fetched {
            if flotilla_proto::entry_id_ahead(&fetched.entry.entry_id, now) {
                let reason = format!(
                    "malformed entry: its id {} is more than a day ahead of the clock: only \
                     Redis chooses entry ids (XADD with *), and an id chosen ahead keeps the \
                     stream from taking new jobs until reconciliation sets its last id back",
                    fetched.entry.entry_id
                );
                plans.buries.push(BuryPlan { fetched, reason });
                continue;
            }
            let fields = match fetched.entry.decode(max_payload_bytes) {
                Ok(fields) => fields,
                Err(e) => {
                    plans.buries.push(BuryPlan {
                        fetched,
                        reason: format!("malformed entry: {e}"),
                    });
                    continue;
                }
            };
            // An entry with an id of its own runs on the fast path once it holds the id.
            let fast = fields.is_fast(now)
                && match fetched.id_claim {
                    IdClaim::Run => true,
                    IdClaim::WithRecord => false,
                    IdClaim::None => fields.job_id.is_none(),
                };
            if fast {
                plans.fast.push(FastPlan { fetched, fields });
            } else {
                plans.add_start(fetched, fields);
            }
        }
        plans
    }

    /// Adds an entry to its queue's start call.
    pub(super) fn add_start(&mut self, fetched: Fetched, fields: EntryFields) {
        let job_id = fields
            .job_id
            .clone()
            .unwrap_or_else(|| fetched.entry.entry_id.clone());
        let plan = StartPlan {
            fetched,
            fields,
            job_id,
            lease: new_lease_token(),
        };
        match self
            .batches
            .iter_mut()
            .find(|(q, _)| *q == plan.fetched.queue)
        {
            Some((_, batch)) => batch.push(plan),
            None => self.batches.push((plan.fetched.queue.clone(), vec![plan])),
        }
    }

    /// Sends the start calls and the buries in one pipeline; `None` when it failed, and
    /// the entries stay pending under this worker for its reclaim pass to retry.
    pub(super) async fn send(
        &self,
        shared: &Shared,
    ) -> Option<std::vec::IntoIter<redis::RedisResult<redis::Value>>> {
        let keys = &shared.keys;
        let starts: Vec<Start> = self
            .batches
            .iter()
            .map(|(q, batch)| shared.start_call(q, batch))
            .collect();
        let buries: Vec<Bury> = self.buries.iter().map(|b| shared.bury_call(b)).collect();
        let commands: Vec<redis::Cmd> = starts
            .iter()
            .map(|s| s.call(keys).cmd())
            .chain(buries.iter().map(|b| b.call(keys).cmd()))
            .collect();
        let mut conn = shared.conn.clone();
        match scripts::exec_pipeline(&mut conn, &commands).await {
            Ok(replies) => Some(replies.into_iter()),
            Err(e) => {
                tracing::warn!(
                    entries = commands.len(),
                    "could not start fetched entries: {e}"
                );
                None
            }
        }
    }

    /// Acts on the replies, in the order [`Plans::send`] sent the calls: spawns each
    /// started attempt and logs each burial. Returns entries naming a job that has no
    /// record, to be buried next.
    pub(super) fn begin_all(
        self,
        shared: &Arc<Shared>,
        mut replies: impl Iterator<Item = redis::RedisResult<redis::Value>>,
        mut permits: impl Iterator<Item = OwnedSemaphorePermit>,
    ) -> Vec<BuryPlan> {
        let mut orphans = Vec::new();
        for (_, batch) in self.batches {
            let reply = replies.next().unwrap_or(Ok(redis::Value::Nil));
            let per_entry = match Start::parse_result(reply) {
                Ok(per_entry) => per_entry,
                Err(e) => {
                    tracing::warn!(
                        entries = batch.len(),
                        "could not start entries (they will be retried): {e}"
                    );
                    continue;
                }
            };
            for (plan, reply) in batch.into_iter().zip(per_entry) {
                let Some(permit) = permits.next() else { break };
                orphans.extend(begin(shared, plan, reply, permit));
            }
        }
        log_buried(shared, &self.buries, replies.map(Bury::parse_result));
        orphans
    }
}

/// Dead-letters entries whose job has no record and that carry no type to rebuild it.
pub(super) async fn bury_orphans(shared: &Shared, orphans: Vec<BuryPlan>) {
    if orphans.is_empty() {
        return;
    }
    let calls: Vec<Bury> = orphans.iter().map(|b| shared.bury_call(b)).collect();
    let mut conn = shared.conn.clone();
    match scripts::run_all(&mut conn, &shared.keys, &calls).await {
        Ok(replies) => log_buried(shared, &orphans, replies),
        Err(e) => tracing::warn!("could not dead-letter orphan entries (will retry): {e}"),
    }
}

/// One WARN line per entry sent to the dead-letter queue, whichever way it got there.
pub(super) fn log_buried(
    shared: &Shared,
    buries: &[BuryPlan],
    replies: impl IntoIterator<Item = Result<BuryReply, ScriptError>>,
) {
    for (bury, reply) in buries.iter().zip(replies) {
        match reply {
            Ok(BuryReply::Skipped) => tracing::debug!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                "removed a duplicate entry of a job that moved on"
            ),
            Ok(BuryReply::Buried) => {
                shared
                    .series(&bury.fetched.queue, UNKNOWN_TYPE)
                    .count(MetricOutcome::Malformed);
                tracing::warn!(
                    queue = %bury.fetched.queue,
                    entry = %bury.fetched.entry.entry_id,
                    reason = %bury.reason,
                    "dead-lettered a malformed entry"
                )
            }
            Err(e) => tracing::warn!(
                queue = %bury.fetched.queue,
                entry = %bury.fetched.entry.entry_id,
                "could not dead-letter an entry (will retry): {e}"
            ),
        }
    }
}

impl Shared {
    pub(super) fn bury_call<'a>(&self, plan: &'a BuryPlan) -> Bury<'a> {
        Bury {
            queue: &plan.fetched.queue,
            entry: &plan.fetched.entry,
            reason: &plan.reason,
            dead_retention_ms: millis(self.config.jobs.retention.dead),
            dead_max_len: self.config.jobs.retention.dead_max_len,
        }
    }

    /// One `start` call for a queue's entries.
    pub(super) fn start_call<'a>(&'a self, queue: &'a str, plans: &'a [StartPlan]) -> Start<'a> {
        let config = &self.config;
        Start {
            queue,
            consumer: &self.worker_id,
            dead_retention_ms: millis(config.jobs.retention.dead),
            dead_max_len: config.jobs.retention.dead_max_len,
            expired_retention_ms: millis(config.jobs.retention.completed),
            expired_max_len: config.jobs.retention.completed_max_len,
            entries: plans
                .iter()
                .map(|plan| StartEntry {
                    entry_id: &plan.fetched.entry.entry_id,
                    job_id: &plan.job_id,
                    lease: &plan.lease,
                    raw: plan.fields.job_type.is_some().then_some(RawJob {
                        fields: &plan.fields,
                        default_max_attempts: config.jobs.defaults.max_attempts,
                        default_timeout_ms: millis(config.jobs.defaults.timeout),
                        default_backoff: &config.jobs.defaults.backoff,
                    }),
                })
                .collect(),
        }
    }
}
