//! The leader's sampler: every few seconds, each queue's state (proto's few cheap reads),
//! the live workers and the active alerts, so that queue gauges cost Redis the same
//! however many workers there are.

use std::time::Duration;

use flotilla_proto::SharedConnection;
use flotilla_proto::{Keys, QueueState, group_by_queue, read_queue_state};

use crate::SchedulerError;
use crate::metrics::{QueueSample, SchedulerMetrics};
use flotilla_proto::server_time_ms;

/// How often the leader samples the fleet.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples every known queue, the live workers (by the one liveness rule,
/// `flotilla_proto::is_live`) and the active alerts into `metrics`.
pub(crate) async fn sample(
    conn: &mut SharedConnection,
    keys: &Keys,
    metrics: &SchedulerMetrics,
) -> Result<(), SchedulerError> {
    let now = server_time_ms(conn).await?;
    let queues = flotilla_proto::known_queues(conn, keys).await?;
    let paused = flotilla_proto::consume::paused_queues(conn, keys).await?;
    // A partitioned queue is one series: the sums over its partitions.
    let mut samples = Vec::with_capacity(queues.len());
    for (queue, partitions) in group_by_queue(queues) {
        let mut state = QueueState::default();
        for partition in &partitions {
            state.absorb(&read_queue_state(conn, keys, partition, now).await?);
        }
        let paused = paused.contains(&queue);
        samples.push((queue, QueueSample { state, paused }));
    }
    metrics.queues(&samples);
    let (_, workers) = flotilla_proto::worker_beats(conn, keys).await?;
    let alive = workers.iter().filter(|w| w.live).count();
    metrics.workers_alive(i64::try_from(alive).unwrap_or(i64::MAX));
    let active = flotilla_proto::active_alerts(conn, keys).await?;
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
