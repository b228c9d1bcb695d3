//! Schedule ticks: every tick in the look-back window must have been fired, started and
//! finished within its deadlines.

use std::time::Duration;

use flotilla_proto::partition::read_partition_count;
use flotilla_proto::{browse, field, partition_names};

use super::{FindingKind, ReconcileConfig, Reconciler, Report};
use crate::firing::scheduled_job_id;
use crate::{Schedule, SchedulerError};

/// What the record of one tick's job says, as read for the check.
struct TickJob {
    status: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

/// A problem with one tick: its kind, what happened, and whether it is still open.
type TickFinding = (FindingKind, String, bool);

impl Reconciler {
    pub(super) async fn check_schedules(
        &mut self,
        now: i64,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        // A paused schedule is checked too: a tick missed before it was paused stays a
        // finding (and keeps its alert) until it leaves the window.
        for schedule in self.store.list().await? {
            self.check_schedule(&schedule, now, report).await?;
        }
        Ok(())
    }

    /// Judges every tick of one schedule that the leader has handled within the window.
    async fn check_schedule(
        &mut self,
        schedule: &Schedule,
        now: i64,
        report: &mut Report,
    ) -> Result<(), SchedulerError> {
        let Ok(timing) = schedule.timing() else {
            return Ok(());
        };
        let state = self.store.state(&schedule.name).await?;
        let Some(since) = state.since else {
            return Ok(());
        };
        let from = since.max(now - ms(self.config.lookback));
        // Only ticks the leader has handled: later ones may simply not be due yet. While
        // paused, those up to the pause: the leader handles none after it.
        let handled = state.last_tick.unwrap_or(since);
        let until = match state.paused_at {
            Some(paused_at) if schedule.paused => handled.max(paused_at),
            _ => handled,
        }
        .min(now - 1000);
        let mut ticks = timing.ticks_between(from, until, self.config.max_ticks);
        // Ticks that fell in a pause were neither to be fired nor are they expected.
        ticks.retain(|tick| !state.in_pause(*tick));
        if ticks.is_empty() {
            return Ok(());
        }
        // A tick's job is in one partition of its queue, which depends on the count when
        // it fired; counts only grow, so every partition there is now is asked.
        let count = read_partition_count(&mut self.conn, &self.keys, &schedule.queue).await?;
        let partitions = partition_names(&schedule.queue, count);
        let ids: Vec<String> = ticks
            .iter()
            .map(|tick| scheduled_job_id(&schedule.name, *tick))
            .collect();
        let fields = [field::STATUS, field::STARTED_AT, field::FINISHED_AT];
        // For each tick, the first partition that holds its job's record.
        let mut found: Vec<(Option<String>, Option<i64>, Option<i64>)> =
            vec![Default::default(); ids.len()];
        for partition in &partitions {
            let records =
                browse::record_fields(&mut self.conn, &self.keys, partition, &ids, &fields).await?;
            for (slot, values) in found.iter_mut().zip(records) {
                let mut values = values.into_iter();
                let status = values.next().flatten();
                if slot.0.is_some() || status.is_none() {
                    continue;
                }
                let mut number = || values.next().flatten().and_then(|v| v.parse().ok());
                *slot = (status, number(), number());
            }
        }
        let per_tick = found.into_iter();
        for (tick, (status, started_at, finished_at)) in ticks.iter().zip(per_tick) {
            let job = TickJob {
                status,
                started_at,
                finished_at,
            };
            if let Some((kind, detail, open)) = judge_tick(&self.config, schedule, *tick, &job, now)
            {
                report.add(kind, &schedule.name, detail, open, false);
            }
        }
        Ok(())
    }
}

/// Whether one tick went wrong, and how; `None` when it is fine or simply not due yet.
fn judge_tick(
    config: &ReconcileConfig,
    schedule: &Schedule,
    tick: i64,
    job: &TickJob,
    now: i64,
) -> Option<TickFinding> {
    let at = tick_text(tick);
    let age = now - tick;
    let start_deadline = ms(config.start_deadline);
    let finish_deadline = ms(config.finish_deadline);
    let late = |detail: String, open: bool| Some((FindingKind::TickLate, detail, open));
    match job.status.as_deref() {
        None => Some((
            FindingKind::TickMissed,
            format!("tick {at} was never enqueued"),
            age <= ms(config.missed_window),
        )),
        Some("dead") => Some((
            FindingKind::TickDead,
            format!("tick {at} ended dead"),
            false,
        )),
        Some("completed") => {
            let started_late = job.started_at.is_some_and(|s| s - tick > start_deadline);
            let finished_late = job.finished_at.is_some_and(|f| f - tick > finish_deadline);
            let what = if finished_late { "finished" } else { "started" };
            (started_late || finished_late).then(|| {
                (
                    FindingKind::TickLate,
                    format!("tick {at} {what} after its deadline"),
                    false,
                )
            })
        }
        Some("cancelled") => None,
        Some("running") if age > finish_deadline => late(
            format!("tick {at} still running {}s after its tick", age / 1000),
            true,
        ),
        Some("running") => None,
        Some(_) if job.started_at.is_none() && age > start_deadline => late(
            format!(
                "tick {at} not started {}s after its tick (is a worker serving {}?)",
                age / 1000,
                schedule.queue
            ),
            true,
        ),
        Some(_) if age > finish_deadline => late(
            format!("tick {at} not finished {}s after its tick", age / 1000),
            true,
        ),
        Some(_) => None,
    }
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn tick_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: i64 = 1_700_000_000_000;

    fn job(status: Option<&str>, started: Option<i64>, finished: Option<i64>) -> TickJob {
        TickJob {
            status: status.map(str::to_owned),
            started_at: started,
            finished_at: finished,
        }
    }

    fn judge(job: &TickJob, age_s: i64) -> Option<(FindingKind, bool)> {
        let schedule = Schedule::new("nightly", "report");
        judge_tick(
            &ReconcileConfig::default(),
            &schedule,
            TICK,
            job,
            TICK + age_s * 1000,
        )
        .map(|(kind, _, open)| (kind, open))
    }

    #[test]
    fn a_tick_never_enqueued_is_missed_and_open_only_while_recent() {
        assert_eq!(
            judge(&job(None, None, None), 60),
            Some((FindingKind::TickMissed, true))
        );
        assert_eq!(
            judge(&job(None, None, None), 3600),
            Some((FindingKind::TickMissed, false))
        );
    }

    #[test]
    fn deadlines_apply_to_starting_and_finishing() {
        let on_time = job(Some("completed"), Some(TICK + 1000), Some(TICK + 2000));
        assert_eq!(judge(&on_time, 600), None);
        let started_late = job(
            Some("completed"),
            Some(TICK + 120_000),
            Some(TICK + 121_000),
        );
        assert_eq!(
            judge(&started_late, 600),
            Some((FindingKind::TickLate, false))
        );
        let waiting = job(Some("pending"), None, None);
        assert_eq!(judge(&waiting, 30), None);
        assert_eq!(judge(&waiting, 120), Some((FindingKind::TickLate, true)));
        assert_eq!(judge(&job(Some("running"), Some(TICK), None), 120), None);
        assert_eq!(
            judge(&job(Some("running"), Some(TICK), None), 3600),
            Some((FindingKind::TickLate, true))
        );
        assert_eq!(
            judge(&job(Some("dead"), None, None), 60),
            Some((FindingKind::TickDead, false))
        );
        assert_eq!(judge(&job(Some("cancelled"), None, None), 60), None);
    }
}
