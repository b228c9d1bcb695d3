//! Noting in Redis what the metrics count but Redis would not otherwise show (starts held
//! back by a flow limit, snoozes), so the dashboard and `queues stats` can say how often,
//! lately. Written by a task of its own: a tally that cannot be written is not worth
//! holding a job for.

use flotilla_proto::tally::{self, Tally};
use flotilla_proto::{Keys, SharedConnection};

use crate::run::heartbeat::now_ms;

/// Adds `n` to `queue`'s tally of `kind`, in the background.
pub(crate) fn note(conn: &SharedConnection, keys: &Keys, queue: &str, kind: Tally, n: u64) {
    if n == 0 {
        return;
    }
    let (mut conn, keys, queue) = (conn.clone(), keys.clone(), queue.to_owned());
    tokio::spawn(async move {
        if let Err(e) = tally::add(&mut conn, &keys, &queue, kind, n, now_ms()).await {
            tracing::debug!(%queue, kind = kind.as_str(), "could not write a tally: {e}");
        }
    });
}
