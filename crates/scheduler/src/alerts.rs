//! Alerts, evaluated by the leader after each reconciliation: DLQ growing, schedule missed
//! or late, worker not responding, backlog too old, jobs lost. Each alert is written to
//! the alerts stream when raised and when resolved, logged, and optionally POSTed to a
//! webhook (Slack-compatible `text` field).

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_proto::SharedConnection;
use flotilla_proto::{Keys, group_by_queue};
use serde::{Deserialize, Serialize};

use crate::SchedulerError;
use crate::reconcile::{FindingKind, Report};

/// Alert thresholds: the `[alerts]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// This many dead jobs in a queue within `dlq_window` raise `dlq_growing`.
    pub dlq_threshold: u64,
    /// How far back dead jobs are counted for `dlq_growing`.
    #[serde(with = "humantime_serde")]
    pub dlq_window: Duration,
    /// A queue whose oldest waiting job is older than this raises `backlog_too_old`.
    #[serde(with = "humantime_serde")]
    pub backlog_max_age: Duration,
    /// Lost jobs reported within this window keep `jobs_lost` raised.
    #[serde(with = "humantime_serde")]
    pub lost_window: Duration,
    /// Where to POST raised and resolved alerts (Slack-compatible `text`), if anywhere;
    /// an empty string means nowhere.
    #[serde(deserialize_with = "empty_is_none")]
    pub webhook_url: Option<String>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            dlq_threshold: 10,
            dlq_window: Duration::from_secs(600),
            backlog_max_age: Duration::from_secs(600),
            lost_window: Duration::from_secs(600),
            webhook_url: None,
        }
    }
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let url = Option::<String>::deserialize(deserializer)?;
    Ok(url.filter(|u| !u.trim().is_empty()))
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What is wrong: `schedule_missed`, `schedule_late`, `worker_not_responding`,
    /// `dlq_growing`, `backlog_too_old` or `jobs_lost`.
    pub kind: String,
    /// What it concerns: the schedule, the worker or the queue.
    pub subject: String,
    /// What is wrong, in words.
    pub message: String,
    /// When it was raised, ms since the epoch.
    pub since: i64,
}

/// One line of alert history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    /// When it happened, ms since the Unix epoch (the time of its history entry).
    pub at: i64,
    /// `raised` or `resolved`.
    pub event: String,
    /// The alert's kind, as in an [`Alert`].
    pub kind: String,
    /// What the alert concerns: the schedule, the worker or the queue.
    pub subject: String,
    /// The alert's message when it was raised.
    pub message: String,
}

// The kinds of alert the alerter raises, as alerts, history and metrics name them.
const SCHEDULE_MISSED: &str = "schedule_missed";
const SCHEDULE_LATE: &str = "schedule_late";
const WORKER_NOT_RESPONDING: &str = "worker_not_responding";
const DLQ_GROWING: &str = "dlq_growing";
const BACKLOG_TOO_OLD: &str = "backlog_too_old";
const JOBS_LOST: &str = "jobs_lost";

/// Every kind of alert the alerter raises.
pub(crate) const ALERT_KINDS: [&str; 6] = [
    SCHEDULE_MISSED,
    SCHEDULE_LATE,
    WORKER_NOT_RESPONDING,
    DLQ_GROWING,
    BACKLOG_TOO_OLD,
    JOBS_LOST,
];

/// Evaluates alert conditions and keeps the active set in Redis.
#[derive(Debug)]
pub struct Alerter {
    conn: SharedConnection,
    keys: Keys,
    config: AlertConfig,
    http: reqwest::Client,
}

impl Alerter {
    /// An alerter for the namespace of `keys`, with these thresholds. A webhook call
    /// gives up after 5 s.
    pub fn new(conn: SharedConnection, keys: Keys, config: AlertConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            conn,
            keys,
            config,
            http,
        }
    }

    /// Raises what holds now and resolves what no longer does.
    pub async fn evaluate(&mut self, report: &Report, now: i64) -> Result<(), SchedulerError> {
        let mut holding: BTreeMap<(String, String), String> = BTreeMap::new();
        for f in report.findings.iter().filter(|f| f.open) {
            let kind = match f.kind {
                FindingKind::TickMissed => SCHEDULE_MISSED,
                FindingKind::TickLate => SCHEDULE_LATE,
                FindingKind::WorkerNotResponding => WORKER_NOT_RESPONDING,
                _ => continue,
            };
            holding
                .entry((kind.to_owned(), f.subject.clone()))
                .or_insert_with(|| f.detail.clone());
        }
        let queues = flotilla_proto::known_queues(&mut self.conn, &self.keys).await?;
        for (queue, partitions) in group_by_queue(queues) {
            self.queue_conditions(&queue, &partitions, now, &mut holding)
                .await?;
        }
        self.lost_jobs(now, &mut holding).await?;

        let active = flotilla_proto::active_alerts(&mut self.conn, &self.keys).await?;
        for ((kind, subject), message) in &holding {
            if !active.contains_key(&field(kind, subject)) {
                let alert = Alert {
                    kind: kind.clone(),
                    subject: subject.clone(),
                    message: message.clone(),
                    since: now,
                };
                self.raise(&alert).await?;
            }
        }
        for (key, json) in &active {
            let Ok(alert) = serde_json::from_str::<Alert>(json) else {
                continue;
            };
            if !holding.contains_key(&(alert.kind.clone(), alert.subject.clone())) {
                self.resolve(key, &alert).await?;
            }
        }
        Ok(())
    }

    /// A queue's dead-letter and backlog conditions, over all its partitions.
    async fn queue_conditions(
        &mut self,
        queue: &str,
        partitions: &[String],
        now: i64,
        holding: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), SchedulerError> {
        let window_start = now - self.config.dlq_window.as_millis() as i64;
        let mut dead = 0u64;
        let mut oldest = None;
        for partition in partitions {
            dead += flotilla_proto::dead_since(&mut self.conn, &self.keys, partition, window_start)
                .await?;
            let unread =
                flotilla_proto::oldest_unread_ms(&mut self.conn, &self.keys, partition).await?;
            oldest = oldest.max(unread.map(|ms| now - ms));
        }
        if dead >= self.config.dlq_threshold {
            let message = format!(
                "{dead} jobs of queue {queue} went dead in the last {}",
                human(self.config.dlq_window)
            );
            holding.insert((DLQ_GROWING.to_owned(), queue.to_owned()), message);
        }
        if let Some(age) = oldest
            && age > self.config.backlog_max_age.as_millis() as i64
        {
            let message = format!(
                "the oldest waiting job of queue {queue} has waited {}s",
                age / 1000
            );
            holding.insert((BACKLOG_TOO_OLD.to_owned(), queue.to_owned()), message);
        }
        Ok(())
    }

    async fn lost_jobs(
        &mut self,
        now: i64,
        holding: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), SchedulerError> {
        let window_start = now - self.config.lost_window.as_millis() as i64;
        let by_queue = flotilla_proto::lost_since(&mut self.conn, &self.keys, window_start).await?;
        for (queue, ids) in by_queue {
            let message = format!(
                "{} jobs of queue {queue} were deleted from the stream while pending: {}",
                ids.len(),
                ids.join(", ")
            );
            holding.insert((JOBS_LOST.to_owned(), queue), message);
        }
        Ok(())
    }

    async fn raise(&mut self, alert: &Alert) -> Result<(), SchedulerError> {
        tracing::warn!(kind = %alert.kind, subject = %alert.subject, "alert raised: {}", alert.message);
        let json = serde_json::to_string(alert).unwrap_or_default();
        let field = field(&alert.kind, &alert.subject);
        let event = history_event("raised", alert);
        flotilla_proto::raise_alert(&mut self.conn, &self.keys, &field, &json, &event).await?;
        self.notify("raised", alert).await;
        Ok(())
    }

    async fn resolve(&mut self, key: &str, alert: &Alert) -> Result<(), SchedulerError> {
        tracing::info!(kind = %alert.kind, subject = %alert.subject, "alert resolved");
        let event = history_event("resolved", alert);
        flotilla_proto::resolve_alert(&mut self.conn, &self.keys, key, &event).await?;
        self.notify("resolved", alert).await;
        Ok(())
    }

    /// POSTs to the webhook; a failing webhook is logged, never fatal.
    async fn notify(&self, event: &str, alert: &Alert) {
        let Some(url) = &self.config.webhook_url else {
            return;
        };
        let body = serde_json::json!({
            "text": format!("[flotilla] {} {}: {} — {}", alert.kind, event, alert.subject, alert.message),
            "event": event,
            "kind": alert.kind,
            "subject": alert.subject,
            "message": alert.message,
        });
        if let Err(e) = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            tracing::warn!("alert webhook failed: {e}");
        }
    }
}

/// The history entry of `event` (`raised` or `resolved`) for `alert`; the stream stamps
/// its time.
fn history_event(event: &str, alert: &Alert) -> flotilla_proto::StoredAlertEvent {
    flotilla_proto::StoredAlertEvent {
        at: 0,
        event: event.to_owned(),
        kind: alert.kind.clone(),
        subject: alert.subject.clone(),
        message: alert.message.clone(),
    }
}

fn field(kind: &str, subject: &str) -> String {
    format!("{kind}:{subject}")
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Active alerts and the most recent history, newest first.
pub async fn list_alerts(
    conn: &mut SharedConnection,
    keys: &Keys,
    recent: usize,
) -> Result<(Vec<Alert>, Vec<AlertEvent>), SchedulerError> {
    let active = flotilla_proto::active_alerts(conn, keys).await?;
    let mut active: Vec<Alert> = active
        .values()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    active.sort_by(|a, b| (a.since, &a.kind, &a.subject).cmp(&(b.since, &b.kind, &b.subject)));
    let history = flotilla_proto::alert_history(conn, keys, recent)
        .await?
        .into_iter()
        .map(|e| AlertEvent {
            at: e.at,
            event: e.event,
            kind: e.kind,
            subject: e.subject,
            message: e.message,
        })
        .collect();
    Ok((active, history))
}
