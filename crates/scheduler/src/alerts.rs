//! Alerts, evaluated by the leader after each reconciliation: DLQ growing, schedule missed
//! or late, worker not responding, backlog too old, jobs lost. Each alert is written to
//! the alerts stream when raised and when resolved, logged, and optionally POSTed to a
//! webhook (Slack-compatible `text` field).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flotilla_proto::SharedConnection;
use flotilla_proto::{CONSUMER_GROUP, Keys, Status, group_by_queue};
use serde::{Deserialize, Serialize};

use crate::SchedulerError;
use crate::reconcile::{FindingKind, Report};

/// Alert thresholds: the `[alerts]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// This many dead jobs in a queue within `dlq_window` raise `dlq_growing`.
    pub dlq_threshold: u64,
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
    pub kind: String,
    pub subject: String,
    pub message: String,
    /// When it was raised, ms since the epoch.
    pub since: i64,
}

/// One line of alert history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    pub at: i64,
    /// `raised` or `resolved`.
    pub event: String,
    pub kind: String,
    pub subject: String,
    pub message: String,
}

/// History entries kept in the alerts stream.
const HISTORY: u64 = 10_000;

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
        let queues: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.queues())
            .query_async(&mut self.conn)
            .await?;
        for (queue, partitions) in group_by_queue(queues) {
            self.queue_conditions(&queue, &partitions, now, &mut holding)
                .await?;
        }
        self.lost_jobs(now, &mut holding).await?;

        let active: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.active_alerts())
            .query_async(&mut self.conn)
            .await?;
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
            let dead_here: u64 = redis::cmd("ZCOUNT")
                .arg(self.keys.index(partition, Status::Dead))
                .arg(window_start)
                .arg("+inf")
                .query_async(&mut self.conn)
                .await?;
            dead += dead_here;
            oldest = oldest.max(self.oldest_waiting_age(partition, now).await?);
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

    /// Age of the oldest entry not yet delivered to any worker, from its stream id.
    async fn oldest_waiting_age(
        &mut self,
        queue: &str,
        now: i64,
    ) -> Result<Option<i64>, SchedulerError> {
        let stream = self.keys.stream(queue);
        let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut self.conn)
            .await;
        let start = match groups {
            Ok(reply) => match reply.groups.iter().find(|g| g.name == CONSUMER_GROUP) {
                Some(group) => format!("({}", group.last_delivered_id),
                None => "-".to_owned(),
            },
            Err(_) => return Ok(None),
        };
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn)
            .await?;
        Ok(reply
            .ids
            .first()
            .and_then(|e| e.id.split('-').next())
            .and_then(|ms| ms.parse::<i64>().ok())
            .map(|ms| now - ms))
    }

    async fn lost_jobs(
        &mut self,
        now: i64,
        holding: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), SchedulerError> {
        let window_start = now - self.config.lost_window.as_millis() as i64;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.lost())
            .arg(window_start)
            .arg("+")
            .query_async(&mut self.conn)
            .await?;
        let mut by_queue: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in reply.ids {
            let queue: String = entry.get("queue").unwrap_or_default();
            let ids: String = entry.get("entries").unwrap_or_default();
            by_queue
                .entry(queue)
                .or_default()
                .extend(ids.split(',').map(str::to_owned));
        }
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
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(self.keys.active_alerts())
            .arg(field(&alert.kind, &alert.subject))
            .arg(json)
            .ignore()
            .add_command(self.history_entry("raised", alert))
            .ignore()
            .query_async(&mut self.conn)
            .await?;
        self.notify("raised", alert).await;
        Ok(())
    }

    async fn resolve(&mut self, key: &str, alert: &Alert) -> Result<(), SchedulerError> {
        tracing::info!(kind = %alert.kind, subject = %alert.subject, "alert resolved");
        let _: () = redis::pipe()
            .cmd("HDEL")
            .arg(self.keys.active_alerts())
            .arg(key)
            .ignore()
            .add_command(self.history_entry("resolved", alert))
            .ignore()
            .query_async(&mut self.conn)
            .await?;
        self.notify("resolved", alert).await;
        Ok(())
    }

    fn history_entry(&self, event: &str, alert: &Alert) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.alerts())
            .arg("MAXLEN")
            .arg("~")
            .arg(HISTORY)
            .arg("*")
            .arg("event")
            .arg(event)
            .arg("kind")
            .arg(&alert.kind)
            .arg("subject")
            .arg(&alert.subject)
            .arg("message")
            .arg(&alert.message);
        cmd
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
    let active: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.active_alerts())
        .query_async(conn)
        .await?;
    let mut active: Vec<Alert> = active
        .values()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    active.sort_by(|a, b| (a.since, &a.kind, &a.subject).cmp(&(b.since, &b.kind, &b.subject)));
    let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(keys.alerts())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(recent)
        .query_async(conn)
        .await?;
    let history = reply
        .ids
        .into_iter()
        .map(|e| AlertEvent {
            at: e
                .id
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
            event: e.get("event").unwrap_or_default(),
            kind: e.get("kind").unwrap_or_default(),
            subject: e.get("subject").unwrap_or_default(),
            message: e.get("message").unwrap_or_default(),
        })
        .collect();
    Ok((active, history))
}
