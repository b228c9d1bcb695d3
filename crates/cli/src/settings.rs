//! Settings: the TOML file plus `FLOTILLA_*` environment overrides, read and checked with
//! no I/O beyond reading them. Errors name the file, the key and the expected form.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use flotilla_producer::ProducerLimits;
use flotilla_proto::Backoff;
use flotilla_scheduler::{AlertConfig, CatchUp, ReconcileConfig, Schedule, SchedulerConfig};
use flotilla_worker::builtin::{ExecHandler, HttpHandler};
use flotilla_worker::{QueueWeight, Registry, WorkerConfig};
use serde::Deserialize;

/// Everything the binary reads from its settings file and environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// e.g. `redis://127.0.0.1:6379` or `redis+unix:///run/redis.sock`.
    pub redis_url: String,
    pub namespace: String,
    /// Queue name → weight.
    pub queues: BTreeMap<String, u32>,
    pub worker: WorkerSettings,
    pub limits: LimitSettings,
    pub retention: RetentionSettings,
    pub defaults: JobDefaults,
    /// Job type → built-in `exec` or `http` handler.
    pub handlers: BTreeMap<String, HandlerSettings>,
    pub scheduler: SchedulerSettings,
    pub reconcile: ReconcileSettings,
    pub alerts: AlertSettings,
    /// Schedule name → definition.
    pub schedules: BTreeMap<String, ScheduleSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub safety_margin: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub misfire_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub promote_interval: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        let config = SchedulerConfig::default();
        Self {
            lease_ttl: config.lease_ttl,
            safety_margin: config.safety_margin,
            retry_interval: config.retry_interval,
            poll_interval: config.poll_interval,
            misfire_grace: config.misfire_grace,
            promote_interval: config.promote_interval,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub repair: bool,
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    #[serde(with = "humantime_serde")]
    pub start_deadline: Duration,
    #[serde(with = "humantime_serde")]
    pub finish_deadline: Duration,
    #[serde(with = "humantime_serde")]
    pub missed_window: Duration,
    #[serde(with = "humantime_serde")]
    pub worker_timeout: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        let c = ReconcileConfig::default();
        Self {
            interval: c.interval,
            repair: c.repair,
            lookback: c.lookback,
            start_deadline: c.start_deadline,
            finish_deadline: c.finish_deadline,
            missed_window: c.missed_window,
            worker_timeout: c.worker_timeout,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    pub dlq_threshold: u64,
    #[serde(with = "humantime_serde")]
    pub dlq_window: Duration,
    #[serde(with = "humantime_serde")]
    pub backlog_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub lost_window: Duration,
    /// Where raised and resolved alerts are POSTed (Slack-compatible `text`); empty = none.
    pub webhook_url: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        let c = AlertConfig::default();
        Self {
            dlq_threshold: c.dlq_threshold,
            dlq_window: c.dlq_window,
            backlog_max_age: c.backlog_max_age,
            lost_window: c.lost_window,
            webhook_url: String::new(),
        }
    }
}

/// One `[schedules.<name>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub cron: Option<String>,
    pub every: Option<String>,
    pub at: Option<String>,
    pub tz: Option<String>,
    #[serde(rename = "type")]
    pub job_type: String,
    pub queue: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
    pub max_attempts: Option<u32>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub catch_up: CatchUp,
    pub catch_up_limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub strict_priority: bool,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub block_time: Duration,
    #[serde(with = "humantime_serde")]
    pub promote_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub max_payload_bytes: usize,
    /// Largest result kept (JSON bytes); a bigger one fails its attempt.
    pub max_result_bytes: usize,
    /// 0 = no cap.
    pub max_queue_len: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    #[serde(with = "humantime_serde")]
    pub completed: Duration,
    #[serde(with = "humantime_serde")]
    pub dead: Duration,
    pub dead_max_len: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaults {
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `fixed:MS`, `exponential:BASE_MS:CAP_MS` or `list:MS,MS,…`.
    pub backoff: String,
}

/// One `[handlers.<type>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSettings {
    /// `exec` or `http`.
    pub kind: String,
    /// exec: program and arguments.
    pub command: Option<Vec<String>>,
    /// exec: working directory.
    pub dir: Option<String>,
    /// exec: extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// exec: how long the process group gets after SIGTERM before SIGKILL.
    #[serde(default, with = "humantime_serde")]
    pub kill_grace: Option<Duration>,
    /// http: where to POST.
    pub url: Option<String>,
    /// http: extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        let worker = WorkerConfig::default();
        let limits = ProducerLimits::default();
        Self {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            namespace: worker.namespace.clone(),
            queues: worker
                .queues
                .iter()
                .map(|q| (q.name.clone(), q.weight))
                .collect(),
            worker: WorkerSettings {
                concurrency: worker.concurrency,
                strict_priority: worker.strict_priority,
                shutdown_grace: worker.shutdown_grace,
                heartbeat_interval: worker.heartbeat_interval,
                lease_ttl: worker.lease_ttl,
                block_time: worker.block_time,
                promote_interval: worker.promote_interval,
            },
            limits: LimitSettings {
                max_payload_bytes: worker.max_payload_bytes,
                max_result_bytes: worker.max_result_bytes,
                max_queue_len: limits.max_queue_len,
            },
            retention: RetentionSettings {
                completed: worker.retention,
                dead: worker.dead_retention,
                dead_max_len: worker.dead_max_len,
            },
            defaults: JobDefaults {
                max_attempts: worker.default_max_attempts,
                timeout: worker.default_timeout,
                backoff: worker.default_backoff.to_string(),
            },
            handlers: BTreeMap::new(),
            scheduler: SchedulerSettings::default(),
            reconcile: ReconcileSettings::default(),
            alerts: AlertSettings::default(),
            schedules: BTreeMap::new(),
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Settings::default().worker
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Settings::default().limits
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Settings::default().retention
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        Settings::default().defaults
    }
}

/// Top-level keys an environment variable may set; others (FLOTILLA_CONFIG, …) are flags.
const ENV_KEYS: [&str; 12] = [
    "redis_url",
    "namespace",
    "queues",
    "worker",
    "limits",
    "retention",
    "defaults",
    "handlers",
    "scheduler",
    "schedules",
    "reconcile",
    "alerts",
];

impl Settings {
    /// Reads the file (if any) and the environment, then checks the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                bail!(
                    "settings file {} does not exist or is not a file",
                    path.display()
                );
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("FLOTILLA_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let settings: Settings = figment.merge(env).extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid settings:\n  {}", errors.join("\n  "))
        })?;
        settings.check(file)?;
        Ok(settings)
    }

    fn check(&self, file: Option<&Path>) -> anyhow::Result<()> {
        let origin = file.map_or_else(|| "the environment".to_owned(), |p| p.display().to_string());
        self.check_limits()
            .map_err(|e| anyhow::anyhow!("invalid settings in {origin}: {e}"))?;
        self.worker_config()
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid settings in {origin}: worker.{e}"))?;
        self.handler_registry()
            .with_context(|| format!("invalid settings in {origin}"))?;
        self.scheduler_config()
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid settings in {origin}: scheduler.{e}"))?;
        for schedule in self.schedule_definitions() {
            schedule.validate().map_err(|e| {
                anyhow::anyhow!(
                    "invalid settings in {origin}: schedules.{}",
                    e.to_string().trim_start_matches("schedule ")
                )
            })?;
        }
        Ok(())
    }

    /// Limits, retention and job defaults, each error naming its key and what it means.
    fn check_limits(&self) -> Result<(), String> {
        if self.limits.max_payload_bytes == 0 {
            return Err(
                "limits.max_payload_bytes: expected at least 1 byte (0 would refuse every job)"
                    .into(),
            );
        }
        if self.limits.max_result_bytes == 0 {
            return Err("limits.max_result_bytes: expected at least 1 byte (0 would fail every job that returns a result)".into());
        }
        for (key, value) in [
            ("retention.completed", self.retention.completed),
            ("retention.dead", self.retention.dead),
        ] {
            if value < Duration::from_secs(1) {
                return Err(format!(
                    "{key}: expected a duration of at least 1s such as \"24h\" (finished records are kept this long, then expire)"
                ));
            }
        }
        if self.retention.dead_max_len == 0 {
            return Err("retention.dead_max_len: expected at least 1 entry".into());
        }
        flotilla_proto::check_max_attempts(u64::from(self.defaults.max_attempts)).map_err(
            |_| {
                format!(
                    "defaults.max_attempts: expected {}",
                    flotilla_proto::MAX_ATTEMPTS_RULE
                )
            },
        )?;
        if self.defaults.timeout.is_zero() {
            return Err(
                "defaults.timeout: expected a duration of at least 1ms such as \"30m\"".into(),
            );
        }
        Ok(())
    }

    pub fn backoff(&self) -> anyhow::Result<Backoff> {
        self.defaults
            .backoff
            .parse()
            .map_err(|e| anyhow::anyhow!("defaults.backoff: {e}"))
    }

    /// Queues ordered by weight, heaviest first.
    pub fn queue_weights(&self) -> Vec<QueueWeight> {
        let mut queues: Vec<QueueWeight> = self
            .queues
            .iter()
            .map(|(name, weight)| QueueWeight::new(name, *weight))
            .collect();
        queues.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
        queues
    }

    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            namespace: self.namespace.clone(),
            queues: self.queue_weights(),
            strict_priority: self.worker.strict_priority,
            concurrency: self.worker.concurrency,
            shutdown_grace: self.worker.shutdown_grace,
            heartbeat_interval: self.worker.heartbeat_interval,
            lease_ttl: self.worker.lease_ttl,
            block_time: self.worker.block_time,
            promote_interval: self.worker.promote_interval,
            max_payload_bytes: self.limits.max_payload_bytes,
            max_result_bytes: self.limits.max_result_bytes,
            retention: self.retention.completed,
            dead_retention: self.retention.dead,
            dead_max_len: self.retention.dead_max_len,
            default_max_attempts: self.defaults.max_attempts,
            default_timeout: self.defaults.timeout,
            default_backoff: self.backoff().unwrap_or_default(),
        }
    }

    pub fn scheduler_config(&self) -> SchedulerConfig {
        let s = &self.scheduler;
        SchedulerConfig {
            namespace: self.namespace.clone(),
            lease_ttl: s.lease_ttl,
            safety_margin: s.safety_margin,
            retry_interval: s.retry_interval,
            poll_interval: s.poll_interval,
            misfire_grace: s.misfire_grace,
            promote_interval: s.promote_interval,
            reconcile: ReconcileConfig {
                interval: self.reconcile.interval,
                repair: self.reconcile.repair,
                lookback: self.reconcile.lookback,
                start_deadline: self.reconcile.start_deadline,
                finish_deadline: self.reconcile.finish_deadline,
                missed_window: self.reconcile.missed_window,
                worker_timeout: self.reconcile.worker_timeout,
                ..ReconcileConfig::default()
            },
            alerts: AlertConfig {
                dlq_threshold: self.alerts.dlq_threshold,
                dlq_window: self.alerts.dlq_window,
                backlog_max_age: self.alerts.backlog_max_age,
                lost_window: self.alerts.lost_window,
                webhook_url: Some(self.alerts.webhook_url.clone()).filter(|u| !u.is_empty()),
            },
            // `check` has parsed the backoff already.
            job_limits: self.producer_limits().unwrap_or_default(),
            ..SchedulerConfig::default()
        }
    }

    /// The settings file's schedules, as definitions to sync.
    pub fn schedule_definitions(&self) -> Vec<Schedule> {
        self.schedules
            .iter()
            .map(|(name, s)| {
                let mut schedule = Schedule::new(name, &s.job_type);
                schedule.cron = s.cron.clone();
                schedule.every = s.every.clone();
                schedule.at = s.at.clone();
                schedule.tz = s.tz.clone();
                if let Some(queue) = &s.queue {
                    schedule.queue = queue.clone();
                }
                schedule.payload = s.payload.clone();
                schedule.max_attempts = s.max_attempts;
                schedule.timeout = s.timeout.clone();
                schedule.catch_up = s.catch_up;
                if let Some(limit) = s.catch_up_limit {
                    schedule.catch_up_limit = limit;
                }
                schedule.source = "config".to_owned();
                schedule
            })
            .collect()
    }

    pub fn producer_limits(&self) -> anyhow::Result<ProducerLimits> {
        Ok(ProducerLimits {
            max_payload_bytes: self.limits.max_payload_bytes,
            max_queue_len: self.limits.max_queue_len,
            default_max_attempts: self.defaults.max_attempts,
            default_timeout: self.defaults.timeout,
            default_backoff: self.backoff()?,
            retention: self.retention.completed,
        })
    }

    /// The built-in test handlers plus every configured `exec` and `http` handler.
    pub fn handler_registry(&self) -> anyhow::Result<Registry> {
        self.backoff()?;
        let mut registry = Registry::with_builtins();
        for (job_type, spec) in &self.handlers {
            let key = format!("handlers.{job_type}");
            match spec.kind.as_str() {
                "exec" => {
                    let command = spec.command.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
                        anyhow::anyhow!("{key}.command: expected a non-empty list, e.g. [\"python3\", \"job.py\"]")
                    })?;
                    let mut handler = ExecHandler::new(command);
                    handler.dir = spec.dir.clone();
                    handler.env = spec.env.clone();
                    if let Some(grace) = spec.kill_grace {
                        handler.kill_grace = grace;
                    }
                    registry.register(job_type, handler);
                }
                "http" => {
                    let url = spec.url.as_deref().ok_or_else(|| {
                        anyhow::anyhow!("{key}.url: expected an http:// or https:// URL")
                    })?;
                    let handler = HttpHandler::new(url, &spec.headers)
                        .map_err(|e| anyhow::anyhow!("{key}.{e}"))?;
                    registry.register(job_type, handler);
                }
                other => bail!("{key}.kind: expected \"exec\" or \"http\", found {other:?}"),
            }
        }
        Ok(registry)
    }
}
