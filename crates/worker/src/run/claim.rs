//! Claiming the entries of a fetch that carry a whole job with an id of its own, before
//! any of them runs: one `claim` call per queue keeps each id to one entry (the first),
//! drops duplicates and entries another worker took meanwhile, and marks an entry whose
//! id has a record for the record path. An entry a script wrote with its id key (`held`)
//! needs no claim at its first delivery.

use std::time::Instant;

use flotilla_proto::millis;
use flotilla_proto::scripts::{self, Claim, ClaimEntry, ClaimReply};

use crate::fetch::reads::{self as fetch, Fetched, IdClaim};
use crate::shared::Shared;

/// The fetched entries that may go on: those without an id to claim, and those claimed
/// (marked [`IdClaim::Run`] or [`IdClaim::WithRecord`]), in fetch order. On a Redis error
/// the entries to claim are left out: they stay pending under this worker and come back
/// through its reclaim pass. The read went out at `sent`: an entry idle for half a lease
/// or more has its idle time reset, so no reclaimer takes it before the next heartbeat.
pub(crate) async fn claim_ids(
    shared: &Shared,
    fetched: Vec<Fetched>,
    sent: Instant,
) -> Vec<Fetched> {
    let mut decided = vec![IdClaim::None; fetched.len()];
    // Positions in the fetch, each with its queue's name. An entry a script wrote with the
    // key naming it runs at its first delivery unclaimed; a later delivery (its worker
    // died) is claimed, as a record may lead by then.
    let mut to_claim = Vec::new();
    for (at, f) in fetched.iter().enumerate() {
        if f.entry.own_id_to_claim().is_none() {
            continue;
        }
        if f.delivery == 1 && f.entry.holds_its_id() {
            decided[at] = IdClaim::Run;
        } else {
            to_claim.push((at, f.queue.as_str()));
        }
    }
    let by_queue: Vec<(String, Vec<usize>)> = fetch::by_queue(to_claim, |&(_, queue)| queue)
        .into_iter()
        .map(|(queue, group)| (queue, group.into_iter().map(|(at, _)| at).collect()))
        .collect();
    if by_queue.is_empty() {
        return with_claims(fetched, decided, Vec::new());
    }
    let half_lease = shared.config.lease_ttl / 2;
    let refresh_idle_ms = if sent.elapsed() >= half_lease {
        0
    } else {
        millis(half_lease)
    };
    let calls: Vec<Claim> = by_queue
        .iter()
        .map(|(queue, group)| Claim {
            queue,
            consumer: &shared.worker_id,
            refresh_idle_ms,
            entries: group
                .iter()
                .map(|&at| ClaimEntry {
                    entry_id: &fetched[at].entry.entry_id,
                    job_id: fetched[at].entry.own_id_to_claim().unwrap_or_default(),
                    delivery: fetched[at].delivery,
                })
                .collect(),
        })
        .collect();
    let mut conn = shared.conn.clone();
    let replies = scripts::run_all(&mut conn, &shared.keys, &calls).await;
    drop(calls);
    let mut dropped = vec![false; fetched.len()];
    match replies {
        Err(e) => {
            tracing::warn!("could not claim fetched entries (they stay pending for reclaim): {e}");
            for (_, group) in &by_queue {
                group.iter().for_each(|&at| dropped[at] = true);
            }
        }
        Ok(replies) => {
            for ((queue, group), reply) in by_queue.iter().zip(replies) {
                let words = match reply {
                    Ok(words) => words,
                    Err(e) => {
                        tracing::warn!(%queue, "could not claim fetched entries (they stay pending for reclaim): {e}");
                        group.iter().for_each(|&at| dropped[at] = true);
                        continue;
                    }
                };
                for (&at, word) in group.iter().zip(words) {
                    let entry = &fetched[at].entry;
                    match word {
                        ClaimReply::Ok => decided[at] = IdClaim::Run,
                        ClaimReply::Record => decided[at] = IdClaim::WithRecord,
                        ClaimReply::Duplicate => {
                            dropped[at] = true;
                            tracing::info!(
                                %queue,
                                job = %entry.own_id_to_claim().unwrap_or_default(),
                                entry = %entry.entry_id,
                                "dropped an entry whose job id another entry carries: the job runs once"
                            );
                        }
                        ClaimReply::Lost => {
                            dropped[at] = true;
                            tracing::debug!(entry = %entry.entry_id, "entry not started: another worker took it meanwhile");
                        }
                    }
                }
            }
        }
    }
    with_claims(fetched, decided, dropped)
}

/// The fetch with each entry's claim set, without the entries `dropped` marks (none when
/// it is empty).
fn with_claims(fetched: Vec<Fetched>, decided: Vec<IdClaim>, dropped: Vec<bool>) -> Vec<Fetched> {
    let dropped = dropped.into_iter().chain(std::iter::repeat(false));
    fetched
        .into_iter()
        .zip(decided.into_iter().zip(dropped))
        .filter_map(|(mut entry, (claim, dropped))| {
            entry.id_claim = claim;
            (!dropped).then_some(entry)
        })
        .collect()
}
