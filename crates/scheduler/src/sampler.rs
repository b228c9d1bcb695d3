//! The leader's sampler: a few cheap reads per queue every few seconds (stream length,
//! the consumer group's summary, the oldest unread entry, the delayed and dead-letter
//! sizes), so that queue gauges cost Redis the same however many workers there are.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use flotilla_proto::{CONSUMER_GROUP, Keys};
use redis::aio::ConnectionManager;
use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};

use crate::SchedulerError;
use crate::metrics::{QueueSample, SchedulerMetrics};
use crate::scheduler::server_time_ms;

/// How often the leader samples the fleet.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples every known queue, the live workers and the active alerts into `metrics`.
pub(crate) async fn sample(
    conn: &mut ConnectionManager,
    keys: &Keys,
    metrics: &SchedulerMetrics,
    worker_timeout: Duration,
) -> Result<(), SchedulerError> {
    let now = server_time_ms(conn).await?;
    let queues: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.queues())
        .query_async(conn)
        .await?;
    let paused: HashSet<String> = redis::cmd("SMEMBERS")
        .arg(keys.paused())
        .query_async(conn)
        .await?;
    let mut samples = Vec::with_capacity(queues.len());
    for queue in queues {
        let mut sample = queue_sample(conn, keys, &queue, now).await?;
        sample.paused = paused.contains(&queue);
        samples.push((queue, sample));
    }
    metrics.queues(&samples);
    let cutoff = now - i64::try_from(worker_timeout.as_millis()).unwrap_or(i64::MAX);
    let alive: i64 = redis::cmd("ZCOUNT")
        .arg(keys.workers())
        .arg(cutoff)
        .arg("+inf")
        .query_async(conn)
        .await?;
    metrics.workers_alive(alive);
    let active: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.active_alerts())
        .query_async(conn)
        .await?;
    // Fields are `kind:subject`; the kind alone keeps the label bounded.
    let kinds: Vec<String> = active
        .keys()
        .map(|field| {
            field
                .split_once(':')
                .map_or(field.as_str(), |(kind, _)| kind)
        })
        .map(str::to_owned)
        .collect();
    metrics.alerts(&kinds);
    Ok(())
}

async fn queue_sample(
    conn: &mut ConnectionManager,
    keys: &Keys,
    queue: &str,
    now_ms: i64,
) -> Result<QueueSample, SchedulerError> {
    let stream = keys.stream(queue);
    let (length, scheduled, dead): (i64, i64, i64) = redis::pipe()
        .cmd("XLEN")
        .arg(&stream)
        .cmd("ZCARD")
        .arg(keys.delayed(queue))
        .cmd("XLEN")
        .arg(keys.dead(queue))
        .query_async(conn)
        .await?;
    // No stream or group yet: nothing has been read, so every entry is waiting.
    let group = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&stream)
        .query_async::<StreamInfoGroupsReply>(conn)
        .await
        .ok()
        .and_then(|reply| reply.groups.into_iter().find(|g| g.name == CONSUMER_GROUP));
    let (running, last_read, redis_lag) = match &group {
        Some(group) => (
            i64::try_from(group.pending).unwrap_or(i64::MAX),
            format!("({}", group.last_delivered_id),
            group.lag.and_then(|lag| i64::try_from(lag).ok()),
        ),
        None => (0, "-".to_owned(), None),
    };
    let oldest: StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg(&last_read)
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    let oldest_pending_age = oldest
        .ids
        .first()
        .and_then(|entry| entry.id.split_once('-'))
        .and_then(|(ms, _)| ms.parse::<i64>().ok())
        .map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0);
    let pending = (length - running).max(0);
    Ok(QueueSample {
        pending,
        lag: redis_lag.unwrap_or(pending),
        running,
        scheduled,
        dead,
        oldest_pending_age,
        paused: false,
    })
}
