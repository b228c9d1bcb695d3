//! A queue's flow limits, set and cleared at runtime (workers take them up within a
//! promote interval), and read back with what they hold now.

use flotilla_proto::flow::{self, GroupUse, QueueLimit, SetLimitError};
use flotilla_proto::queue_of_partition;
use serde::Serialize;

use crate::{Admin, AdminError};

/// A queue's limit, and its use now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitUse {
    /// The queue.
    pub queue: String,
    /// Jobs started per interval, written as `100/s`; `None`: no rate.
    pub rate: Option<String>,
    /// The burst in force with the rate.
    pub burst: Option<u32>,
    /// Jobs running at once, fleet-wide; `None`: no cap.
    pub concurrency: Option<u32>,
    /// Slots of the cap held now by live workers (0 without a cap).
    pub slots_held: u64,
    /// Jobs of one group let through to run at once; `None`: no window per group.
    pub group_concurrency: Option<u32>,
    /// Jobs of one group let through per interval, written as `10/s`; `None`: no rate
    /// per group.
    pub group_rate: Option<String>,
    /// The burst in force with the group rate.
    pub group_burst: Option<u32>,
    /// Groups with jobs waiting their turn now, over every partition.
    pub groups_waiting: u64,
    /// The groups with the most jobs waiting their turn, most first: at most
    /// [`BUSIEST_GROUPS_SHOWN`], among the 100 of each partition due for a look soonest.
    pub busiest_groups: Vec<GroupUse>,
}

/// How many of a queue's busiest groups its limit's use shows.
pub const BUSIEST_GROUPS_SHOWN: usize = 10;

impl LimitUse {
    fn of(
        queue: &str,
        limit: &QueueLimit,
        slots_held: u64,
        groups_waiting: u64,
        busiest_groups: Vec<GroupUse>,
    ) -> Self {
        Self {
            queue: queue.to_owned(),
            rate: limit.rate.map(|rate| rate.to_string()),
            burst: limit.rate.map(|_| limit.burst_in_force()),
            concurrency: limit.concurrency,
            slots_held,
            group_concurrency: limit.group_concurrency,
            group_rate: limit.group_rate.map(|rate| rate.to_string()),
            group_burst: limit.group_rate.map(|_| limit.group_burst_in_force()),
            groups_waiting,
            busiest_groups,
        }
    }
}

impl Admin {
    /// Sets `queue`'s limit, replacing any (a partition's name sets its queue's: limits
    /// hold for the whole queue). The queue need not exist yet, so a limit can be in
    /// place before the first job.
    pub async fn set_limit(&mut self, queue: &str, limit: &QueueLimit) -> Result<(), AdminError> {
        let queue = queue_of_partition(queue);
        flotilla_proto::check_name("queue", queue)?;
        flow::set_limit(&mut self.conn, &self.keys, queue, limit, false)
            .await
            .map_err(|e| match e {
                SetLimitError::Flow(e) => AdminError::Flow(e),
                SetLimitError::Redis(e) => AdminError::Redis(e),
            })?;
        Ok(())
    }

    /// Removes `queue`'s limit; whether it had one.
    pub async fn clear_limit(&mut self, queue: &str) -> Result<bool, AdminError> {
        let queue = queue_of_partition(queue);
        Ok(flow::clear_limit(&mut self.conn, &self.keys, queue).await?)
    }

    /// Every queue's limit and its use, by queue name; a stored limit this version cannot
    /// read is an error naming it (workers do not serve that queue).
    pub async fn limits(&mut self) -> Result<Vec<LimitUse>, AdminError> {
        self.limit_uses(true).await
    }

    /// Every readable limit and its use; with `strict`, a stored limit this version cannot
    /// read is an error, else it is left out (the queue stats show the others).
    pub(crate) async fn limit_uses(&mut self, strict: bool) -> Result<Vec<LimitUse>, AdminError> {
        let (limits, unreadable) = flow::read_limits(&mut self.conn, &self.keys).await?;
        if let Some((queue, why)) = unreadable.into_iter().next().filter(|_| strict) {
            return Err(AdminError::UnreadableLimit { queue, why });
        }
        let mut uses = Vec::with_capacity(limits.len());
        for (queue, limit) in &limits {
            let held = self.slots_held(queue, limit).await?;
            let (waiting, busiest) = match limit.limits_groups() {
                true => (
                    flow::groups_waiting(&mut self.conn, &self.keys, queue).await?,
                    flow::busiest_groups(&mut self.conn, &self.keys, queue, BUSIEST_GROUPS_SHOWN)
                        .await?,
                ),
                false => (0, Vec::new()),
            };
            uses.push(LimitUse::of(queue, limit, held, waiting, busiest));
        }
        uses.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(uses)
    }

    /// `queue`'s limit and its use, if it has one.
    pub async fn limit(&mut self, queue: &str) -> Result<Option<LimitUse>, AdminError> {
        let queue = queue_of_partition(queue);
        let uses = self.limit_uses(false).await?;
        Ok(uses.into_iter().find(|l| l.queue == queue))
    }

    async fn slots_held(&mut self, queue: &str, limit: &QueueLimit) -> Result<u64, AdminError> {
        if limit.concurrency.is_none() {
            return Ok(0);
        }
        Ok(flow::slots_held(&mut self.conn, &self.keys, queue).await?)
    }
}
