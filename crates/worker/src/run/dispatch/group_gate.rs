//! Jobs of a group that reached their stream by a raw XADD, past their group's gate (the
//! published script keeps the gate; a raw XADD cannot): each goes through `group_gate.lua`
//! before it asks its queue's flow limit, and one whose group has no room or turn leaves
//! the stream for its group's line.

use std::sync::Arc;

use flotilla_proto::field;
use flotilla_proto::scripts::{self, GateReply, GroupGate};

use crate::fetch::reads::{Fetched, IdClaim};
use crate::shared::Shared;

/// Whether an entry carries a job of a group that no gate let through: it names a group
/// and lacks the `held` mark every entry the scripts add carries. A job with a record is
/// left to its record.
fn ungated(f: &Fetched) -> bool {
    f.id_claim != IdClaim::WithRecord
        && f.entry
            .fields
            .get(field::GROUP)
            .is_some_and(|group| !group.is_empty())
        && !f.entry.fields.contains_key(field::HELD)
}

/// Puts the ungated entries through their groups' gates (one call each, in one
/// pipeline) and returns the entries to run: those the gates let through and all the
/// others. An entry whose call failed stays pending under this worker, and its reclaim
/// tries again.
pub(super) async fn pass_gates(shared: &Arc<Shared>, fetched: Vec<Fetched>) -> Vec<Fetched> {
    let (ungated, mut run): (Vec<Fetched>, Vec<Fetched>) = fetched.into_iter().partition(ungated);
    if ungated.is_empty() {
        return run;
    }
    let calls: Vec<GroupGate> = ungated
        .iter()
        .map(|f| GroupGate {
            queue: &f.queue,
            consumer: &shared.worker_id,
            entry_id: &f.entry.entry_id,
            delivery: f.delivery,
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = match scripts::run_all(&mut conn, &shared.keys, &calls).await {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!(
                entries = calls.len(),
                "could not put jobs through their groups' gates (they stay pending for reclaim): {e}"
            );
            return run;
        }
    };
    drop(calls);
    for (fetched, reply) in ungated.into_iter().zip(replies) {
        match reply {
            Ok(GateReply::Go) => run.push(fetched),
            Ok(GateReply::Waits) => {
                tracing::debug!(entry = %fetched.entry.entry_id, queue = %fetched.queue, "a job of a group added by a raw XADD waits its group's turn");
            }
            Ok(GateReply::Stale) => {}
            Err(e) => {
                tracing::warn!(entry = %fetched.entry.entry_id, queue = %fetched.queue, "could not put a job through its group's gate (its reclaim tries again): {e}");
            }
        }
    }
    run
}
