//! The record of lost jobs: stream entries deleted while still pending, written by whoever
//! finds them (a worker's reclaim, the reconciler's repair) and read by alerting.

use crate::Keys;

/// Lost-job reports kept (approximately, oldest dropped first).
const KEPT: u64 = 10_000;

/// The command that records `entry_ids` of `queue` as lost.
pub fn record_lost(keys: &Keys, queue: &str, entry_ids: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.lost())
        .arg("MAXLEN")
        .arg("~")
        .arg(KEPT)
        .arg("*")
        .arg("queue")
        .arg(queue)
        .arg("entries")
        .arg(entry_ids.join(","));
    cmd
}
