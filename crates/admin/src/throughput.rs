//! Completions and dead-letterings per minute over the last hour, for the dashboard's
//! chart: read from the `done` streams (entry ids are completion times) and the dead
//! indexes (scored by time of death).

use flotilla_proto::{Status, browse, entry_id_ms, server_time_ms};
use serde::Serialize;

use crate::{Admin, AdminError};

const MINUTE_MS: i64 = 60_000;
/// Completions read per queue at most: past this the chart's oldest minutes undercount
/// (at 100 000 jobs a minute; the stats say the exact hour's total).
const MAX_READ: usize = 200_000;
const PAGE: usize = 10_000;

/// One minute's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// The minute's start, ms since the Unix epoch.
    pub at_ms: i64,
    /// Jobs completed in the minute, over every queue.
    pub completed: u64,
    /// Jobs dead-lettered in the minute, over every queue.
    pub dead: u64,
}

impl Admin {
    /// The last `minutes` whole minutes and the current one, oldest first, summed over
    /// every queue.
    pub async fn throughput(&mut self, minutes: usize) -> Result<Vec<Minute>, AdminError> {
        let now = server_time_ms(&mut self.conn).await?;
        let current = now - now.rem_euclid(MINUTE_MS);
        let first = current - MINUTE_MS * minutes as i64;
        let mut chart: Vec<Minute> = (0..=minutes)
            .map(|i| Minute {
                at_ms: first + MINUTE_MS * i as i64,
                ..Minute::default()
            })
            .collect();
        let slot = |ms: i64| usize::try_from((ms - first) / MINUTE_MS).ok();
        for queue in self.streams(None).await? {
            for ms in self.completion_times(&queue, first, MAX_READ).await? {
                if let Some(minute) = slot(ms).and_then(|i| chart.get_mut(i)) {
                    minute.completed += 1;
                }
            }
            let deaths = browse::scored_range(
                &mut self.conn,
                &self.keys.index(&queue, Status::Dead),
                &first.to_string(),
                "+inf",
                false,
                0,
                MAX_READ,
            )
            .await?;
            for (_, score) in deaths {
                if let Some(minute) = slot(score as i64).and_then(|i| chart.get_mut(i)) {
                    minute.dead += 1;
                }
            }
        }
        Ok(chart)
    }

    /// The times of the queue's completions since `since_ms`, newest first, at most
    /// about `max` of them: the `done` stream read newest first (its entry ids are
    /// completion times).
    pub(crate) async fn completion_times(
        &mut self,
        queue: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<i64>, AdminError> {
        let done = self.keys.done(queue);
        let mut times = Vec::new();
        let mut end = "+".to_owned();
        loop {
            let since = since_ms.to_string();
            // One time per completion: an entry may hold a worker's batch of them.
            let (completions, entries) =
                browse::completions_range(&mut self.conn, &done, &end, &since, PAGE, true).await?;
            let ids: Vec<String> = completions
                .into_iter()
                .map(|entry| entry.entry_id)
                .collect();
            times.extend(ids.iter().filter_map(|id| entry_id_ms(id)));
            match ids.last() {
                Some(last) if entries == PAGE && times.len() < max => {
                    end = format!("({last}");
                }
                _ => return Ok(times),
            }
        }
    }
}
