//! Jobs that may no longer start: a fetched entry whose `expires_at` has come ends as
//! `expired`, unrun, before it asks its queue's flow limit for a start or takes a slot.

use std::sync::Arc;

use flotilla_proto::millis;
use flotilla_proto::scripts::{self, Expire, ExpireReply};

use crate::fetch::reads::{Fetched, IdClaim};
use crate::metrics::Outcome as MetricOutcome;
use crate::run::heartbeat::now_ms;
use crate::shared::Shared;

/// Splits off the entries whose job expired by this worker's clock (`expire.lua` checks
/// again on the server's). Left in place: an entry whose job has a record by its own id
/// (`start` judges the record's expiry), and one that is malformed, which goes to the
/// dead-letter queue as bad input does, expired or not.
pub(super) fn split_expired(
    shared: &Shared,
    fetched: Vec<Fetched>,
) -> (Vec<Fetched>, Vec<Fetched>) {
    let now = now_ms();
    let limit = shared.config.jobs.limits.max_payload_bytes;
    fetched.into_iter().partition(|f| {
        let expired = f.id_claim != IdClaim::WithRecord
            && f.entry.has_expired(now)
            && !flotilla_proto::entry_id_ahead(&f.entry.entry_id, now)
            && f.entry.decode(limit).is_ok();
        !expired
    })
}

/// Ends each expired entry's job as `expired` (one `expire` call each, in one pipeline),
/// counts it and says so once per queue. Returns the entries the server's clock says may
/// still start, to run as usual. An entry a call could not end stays pending under this
/// worker, and its reclaim tries again.
pub(super) async fn end_expired(shared: &Arc<Shared>, expired: Vec<Fetched>) -> Vec<Fetched> {
    if expired.is_empty() {
        return expired;
    }
    let retention = &shared.config.jobs.retention;
    let calls: Vec<Expire> = expired
        .iter()
        .map(|f| Expire {
            queue: &f.queue,
            consumer: &shared.worker_id,
            entry: &f.entry,
            delivery: f.delivery,
            retention_ms: millis(retention.completed),
            max_len: retention.completed_max_len,
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = match scripts::run_all(&mut conn, &shared.keys, &calls).await {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!(
                entries = calls.len(),
                "could not end expired jobs (they stay pending for reclaim): {e}"
            );
            return Vec::new();
        }
    };
    drop(calls);
    let mut ended: Vec<(String, usize)> = Vec::new();
    let mut not_yet = Vec::new();
    for (fetched, reply) in expired.into_iter().zip(replies) {
        match reply {
            Ok(ExpireReply::Expired) => {
                let job_type = fetched
                    .entry
                    .fields
                    .get(flotilla_proto::field::TYPE)
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default();
                shared
                    .series(&fetched.queue, &job_type)
                    .count(MetricOutcome::Expired);
                match ended.iter_mut().find(|(q, _)| *q == fetched.queue) {
                    Some((_, n)) => *n += 1,
                    None => ended.push((fetched.queue, 1)),
                }
            }
            Ok(ExpireReply::NotYet) => not_yet.push(fetched),
            Ok(ExpireReply::Skipped) => tracing::debug!(
                queue = %fetched.queue,
                entry = %fetched.entry.entry_id,
                "expired entry left alone: no longer ours, or its job moved on"
            ),
            Err(e) => tracing::warn!(
                queue = %fetched.queue,
                entry = %fetched.entry.entry_id,
                "could not end an expired job (it stays pending for reclaim): {e}"
            ),
        }
    }
    for (queue, jobs) in ended {
        tracing::info!(%queue, jobs, "jobs expired before they could start: not run");
    }
    not_yet
}
