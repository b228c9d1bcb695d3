//! Queue statistics (with each queue's flow limit), pausing and resuming a queue, and raising its partition count (and,
//! on a cluster, telling where the partitions live). A partitioned queue's counts are the
//! sums over its partitions.

use std::collections::BTreeMap;

use flotilla_proto::partition::{raise_partition_count, read_partition_count};
use flotilla_proto::tally::{self, Tally};
use flotilla_proto::{
    QueueState, Status, browse, dead_since, ended_since, group_by_queue, queue_of_partition,
    read_queue_state, server_time_ms, waiting_states,
};
use serde::Serialize;

use crate::{Admin, AdminError, LimitUse};

/// One hour and one day, in ms.
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Completions read back at most to count a day's: the `done` stream is trimmed to its
/// retention count (100 000 by default), so this only bounds an unusual setting.
const MAX_COUNTED: usize = 1_000_000;
/// Delayed jobs whose status is read to tell retries from scheduled jobs; past this the
/// split is extrapolated from the part read (and `retrying_estimated` says so).
const MAX_DELAYED_READ: usize = 50_000;

/// One queue's counts, for `queues stats` and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    /// The queue's name, or the partition's when one partition was asked for.
    pub queue: String,
    /// The partitions the counts add up (1 for a queue that is not partitioned).
    pub partitions: usize,
    /// `state.scheduled` counts only jobs waiting for their first run time here; failed
    /// jobs waiting for a retry are `retrying`.
    #[serde(flatten)]
    pub state: QueueState,
    /// Failed jobs waiting for their retry to be due.
    pub retrying: i64,
    /// `retrying` was extrapolated: the queue had more delayed jobs than are read.
    pub retrying_estimated: bool,
    /// Workers do not fetch from it while it is paused.
    pub paused: bool,
    /// Jobs completed in the last hour, as the `done` stream still holds them (it keeps
    /// `retention.completed_max_len` completions at most).
    pub completed_last_hour: u64,
    /// Jobs completed in the last 24 hours, as the `done` stream still holds them.
    pub completed_last_day: u64,
    /// Jobs dead-lettered in the last hour.
    pub dead_last_hour: u64,
    /// Jobs dead-lettered in the last 24 hours.
    pub dead_last_day: u64,
    /// Jobs that expired unrun in the last hour (their `expires_at` came first).
    pub expired_last_hour: u64,
    /// Jobs that expired unrun in the last 24 hours, as their index still holds them
    /// (`retention.completed`, at most `retention.completed_max_len`).
    pub expired_last_day: u64,
    /// Starts its flow limit held back in the last hour (once per fetch of a job).
    pub throttled_last_hour: u64,
    /// Starts its flow limit held back in the last 24 hours.
    pub throttled_last_day: u64,
    /// Snoozes its handlers asked for in the last hour.
    pub snoozed_last_hour: u64,
    /// Snoozes its handlers asked for in the last 24 hours.
    pub snoozed_last_day: u64,
    /// Its flow limit and the slots of its cap held now, if it has one.
    pub limit: Option<LimitUse>,
}

impl Admin {
    /// Every known queue's counts, by queue name, with the known names, the paused set
    /// and the server's clock read once for all of them.
    pub async fn queue_stats(&mut self) -> Result<Vec<QueueStats>, AdminError> {
        let queues = group_by_queue(self.streams(None).await?);
        let paused = self.paused().await?;
        let limits = self.limit_uses(false).await?;
        let now = server_time_ms(&mut self.conn).await?;
        let mut stats = Vec::with_capacity(queues.len());
        for (queue, partitions) in queues {
            let is_paused = paused.contains(&queue);
            let mut queue_stats = self
                .summed_stats(&queue, &partitions, is_paused, now)
                .await?;
            queue_stats.limit = limits.iter().find(|l| l.queue == queue).cloned();
            stats.push(queue_stats);
        }
        Ok(stats)
    }

    /// One queue's counts (one partition's, given a partition's name); an error naming
    /// the known queues when nobody used this one.
    pub async fn queue_stat(&mut self, queue: &str) -> Result<QueueStats, AdminError> {
        let partitions = self.streams(Some(queue)).await?;
        let paused = self
            .paused()
            .await?
            .iter()
            .any(|q| q == queue_of_partition(queue));
        let now = server_time_ms(&mut self.conn).await?;
        let mut stats = self.summed_stats(queue, &partitions, paused, now).await?;
        if flotilla_proto::split_partition(queue).1 == 0 {
            stats.limit = self.limit(queue).await?;
        }
        Ok(stats)
    }

    /// The counts of `partitions` added up, named `queue`.
    async fn summed_stats(
        &mut self,
        queue: &str,
        partitions: &[String],
        paused: bool,
        now: i64,
    ) -> Result<QueueStats, AdminError> {
        let mut total: Option<QueueStats> = None;
        for partition in partitions {
            let stats = self.stats_of(partition.clone(), paused, now).await?;
            total = Some(match total {
                None => stats,
                Some(mut total) => {
                    total.add(&stats);
                    total
                }
            });
        }
        let mut total = total.ok_or_else(|| AdminError::UnknownQueue {
            queue: queue.to_owned(),
            known: "none yet".to_owned(),
        })?;
        total.queue = queue.to_owned();
        total.partitions = partitions.len();
        Ok(total)
    }

    async fn paused(&mut self) -> Result<Vec<String>, AdminError> {
        let paused = flotilla_proto::consume::paused_queues(&mut self.conn, &self.keys).await?;
        Ok(paused.into_iter().collect())
    }

    async fn stats_of(
        &mut self,
        queue: String,
        paused: bool,
        now: i64,
    ) -> Result<QueueStats, AdminError> {
        let mut state = read_queue_state(&mut self.conn, &self.keys, &queue, now).await?;
        let (retrying, retrying_estimated) = self.count_retrying(&queue, state.scheduled).await?;
        state.scheduled -= retrying;
        let (completed_last_hour, completed_last_day) = self.completed_since(&queue, now).await?;
        let dead_last_hour = dead_since(&mut self.conn, &self.keys, &queue, now - HOUR_MS).await?;
        let dead_last_day = dead_since(&mut self.conn, &self.keys, &queue, now - DAY_MS).await?;
        let (conn, keys) = (&mut self.conn, &self.keys);
        let expired_last_hour =
            ended_since(conn, keys, &queue, Status::Expired, now - HOUR_MS).await?;
        let expired_last_day =
            ended_since(conn, keys, &queue, Status::Expired, now - DAY_MS).await?;
        let at = u64::try_from(now).unwrap_or(0);
        let throttled = tally::recent(conn, keys, &queue, Tally::Throttled, at).await?;
        let snoozed = tally::recent(conn, keys, &queue, Tally::Snoozed, at).await?;
        Ok(QueueStats {
            queue,
            partitions: 1,
            state,
            retrying,
            retrying_estimated,
            paused,
            completed_last_hour,
            completed_last_day,
            dead_last_hour,
            dead_last_day,
            expired_last_hour,
            expired_last_day,
            throttled_last_hour: throttled.last_hour,
            throttled_last_day: throttled.last_day,
            snoozed_last_hour: snoozed.last_hour,
            snoozed_last_day: snoozed.last_day,
            limit: None,
        })
    }

    /// Completions in the last hour and day, as the `done` stream still holds them.
    async fn completed_since(&mut self, queue: &str, now: i64) -> Result<(u64, u64), AdminError> {
        let times = self
            .completion_times(queue, now - DAY_MS, MAX_COUNTED)
            .await?;
        let hour = times.iter().filter(|&&ms| ms >= now - HOUR_MS).count();
        Ok((hour as u64, times.len() as u64))
    }

    /// How many of the queue's waiting jobs (`scheduled`, the sum of its `delayed` and
    /// `later` sets) are failed ones waiting to retry: read from their records, or from the
    /// state their id keys begin with, in pipelined pages; extrapolated past
    /// [`MAX_DELAYED_READ`].
    async fn count_retrying(
        &mut self,
        queue: &str,
        scheduled: i64,
    ) -> Result<(i64, bool), AdminError> {
        const PAGE: usize = 1000;
        let (mut read, mut failed) = (0usize, 0i64);
        for with_record in [true, false] {
            let key = if with_record {
                self.keys.delayed(queue)
            } else {
                self.keys.later(queue)
            };
            let mut at = 0;
            while read < MAX_DELAYED_READ {
                let ids = browse::ranked_members(&mut self.conn, &key, at, at + PAGE - 1).await?;
                if ids.is_empty() {
                    break;
                }
                let states: Vec<Option<Status>> = if with_record {
                    let fields = [flotilla_proto::field::STATUS];
                    browse::record_fields(&mut self.conn, &self.keys, queue, &ids, &fields)
                        .await?
                        .into_iter()
                        .map(|s| s.into_iter().flatten().next().and_then(|s| s.parse().ok()))
                        .collect()
                } else {
                    waiting_states(&mut self.conn, &self.keys, queue, &ids).await?
                };
                failed += states
                    .iter()
                    .filter(|s| **s == Some(Status::Failed))
                    .count() as i64;
                read += ids.len();
                at += ids.len();
                if ids.len() < PAGE {
                    break;
                }
            }
        }
        let read = read as i64;
        if read == 0 || read >= scheduled {
            return Ok((failed.min(scheduled), false));
        }
        Ok((failed * scheduled / read, true))
    }

    /// Stops workers fetching from `queue`, every partition of it (within their
    /// `promote_interval`); what runs finishes, what waits stays on the stream.
    pub async fn pause(&mut self, queue: &str) -> Result<(), AdminError> {
        self.streams(Some(queue)).await?;
        let queue = queue_of_partition(queue);
        flotilla_proto::consume::set_paused(&mut self.conn, &self.keys, queue, true).await?;
        Ok(())
    }

    /// Lets workers fetch from `queue` again.
    pub async fn resume(&mut self, queue: &str) -> Result<(), AdminError> {
        self.streams(Some(queue)).await?;
        let queue = queue_of_partition(queue);
        flotilla_proto::consume::set_paused(&mut self.conn, &self.keys, queue, false).await?;
        Ok(())
    }

    /// Splits `queue` into `count` partitions from now on, and answers the count now
    /// stored. Producers place jobs over them within ten seconds, and workers serve them
    /// as soon. A count can only grow: jobs in a partition past a lower count would wait
    /// where no worker reads.
    pub async fn partition(&mut self, queue: &str, count: u16) -> Result<u16, AdminError> {
        flotilla_proto::check_partitions(u64::from(count))?;
        if flotilla_proto::split_partition(queue).1 != 0 {
            return Err(AdminError::NotAQueue(queue.to_owned()));
        }
        let now = read_partition_count(&mut self.conn, &self.keys, queue).await?;
        if count < now {
            return Err(AdminError::FewerPartitions {
                queue: queue.to_owned(),
                now,
                wanted: count,
            });
        }
        // Listed, so operators' tools and the scheduler's checks see the new partitions
        // before any job reaches them.
        let names = flotilla_proto::partition_names(queue, count);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        flotilla_proto::list_queues(&mut self.conn, &self.keys, &names).await?;
        let raised = raise_partition_count(&mut self.conn, &self.keys, queue, count).await?;
        // The new partitions keep the queue's group window (their scripts read their own).
        flotilla_proto::flow::sync_group_limit(&mut self.conn, &self.keys, queue).await?;
        Ok(raised)
    }

    /// On a Redis Cluster, where `queue`'s partitions live: how many on each primary,
    /// with every primary listed (none on it: 0). `None` on one server.
    pub async fn partition_spread(
        &mut self,
        queue: &str,
    ) -> Result<Option<BTreeMap<String, usize>>, AdminError> {
        if !self.conn.is_cluster() {
            return Ok(None);
        }
        let count = read_partition_count(&mut self.conn, &self.keys, queue).await?;
        let owners = flotilla_proto::SlotOwners::load(&mut self.conn).await?;
        let mut spread: BTreeMap<String, usize> = owners
            .primaries()
            .into_iter()
            .map(|primary| (primary.to_owned(), 0))
            .collect();
        for partition in flotilla_proto::partition_names(queue, count) {
            if let Some(owner) = owners.owner_of(&self.keys.stream(&partition)) {
                *spread.entry(owner.to_owned()).or_default() += 1;
            }
        }
        Ok(Some(spread))
    }

    /// An error naming the known queues, for a `queue` nobody used.
    pub(crate) async fn unknown_queue(&mut self, queue: &str) -> AdminError {
        let queues = match self.queues().await {
            Ok(queues) => queues,
            Err(e) => return e,
        };
        AdminError::UnknownQueue {
            queue: queue.to_owned(),
            known: if queues.is_empty() {
                "none yet".to_owned()
            } else {
                queues.join(", ")
            },
        }
    }
}

impl QueueStats {
    /// Adds another partition's counts to these.
    fn add(&mut self, other: &QueueStats) {
        self.state.absorb(&other.state);
        self.retrying += other.retrying;
        self.retrying_estimated |= other.retrying_estimated;
        self.completed_last_hour += other.completed_last_hour;
        self.completed_last_day += other.completed_last_day;
        self.dead_last_hour += other.dead_last_hour;
        self.dead_last_day += other.dead_last_day;
        self.expired_last_hour += other.expired_last_hour;
        self.expired_last_day += other.expired_last_day;
        self.throttled_last_hour += other.throttled_last_hour;
        self.throttled_last_day += other.throttled_last_day;
        self.snoozed_last_hour += other.snoozed_last_hour;
        self.snoozed_last_day += other.snoozed_last_day;
    }
}
