//! Settings: the TOML file plus `FLOTILLA_*` environment overrides, read and checked with
//! no I/O beyond reading them. Errors name the file, the key and the expected form.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use flotilla_proto::flow::{FlowError, QueueLimit};
use flotilla_proto::{JobDefaults, JobPolicy, Limits, RedisTarget, Retention, TlsFiles};
use flotilla_scheduler::{AlertConfig, CatchUp, ReconcileConfig, Schedule, SchedulerConfig};
use flotilla_worker::builtin::{ExecHandler, HttpHandler};
use flotilla_worker::{QueueWeight, Registry, WorkerConfig};
use serde::Deserialize;

/// Everything the binary reads from its settings file and environment. Each section is
/// the library's own configuration type, so every default is written once, beside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// e.g. `redis://127.0.0.1:6379` or `redis+unix:///run/redis.sock`.
    pub redis_url: String,
    /// A file holding the Redis URL, such as a mounted Kubernetes Secret: it keeps the
    /// password out of the environment, which child processes and crash reports see.
    /// Takes precedence over `redis_url`.
    pub redis_url_file: Option<std::path::PathBuf>,
    /// The CA, and for servers that ask for one the client certificate, that `rediss://`
    /// uses: `[redis_tls] ca_file = "…"`.
    pub redis_tls: TlsFiles,
    pub namespace: String,
    /// Queue name → weight.
    pub queues: BTreeMap<String, u32>,
    /// Queue name → partitions, for a queue split over several streams (and so over the
    /// primaries of a Redis Cluster); 1 when unset.
    pub partitions: BTreeMap<String, u16>,
    pub worker: WorkerConfig,
    pub limits: Limits,
    pub retention: Retention,
    pub defaults: JobDefaults,
    /// Job type → built-in `exec` or `http` handler.
    pub handlers: BTreeMap<String, HandlerSettings>,
    pub scheduler: SchedulerConfig,
    pub reconcile: ReconcileConfig,
    pub alerts: AlertConfig,
    /// Schedule name → definition.
    pub schedules: BTreeMap<String, ScheduleSettings>,
    /// Queue name → its flow limit, written to Redis by the scheduler at start where the
    /// queue has none (one set at runtime wins, as for schedules).
    pub flow: BTreeMap<String, FlowSettings>,
}

/// One `[flow.<queue>]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Jobs started per interval, fleet-wide: `100/s`, `5/m`, `20/10s`.
    pub rate: Option<String>,
    /// Jobs the rate lets start at once after a quiet spell.
    pub burst: Option<u32>,
    /// Jobs running at once, fleet-wide.
    pub concurrency: Option<u32>,
    /// Jobs of one group let through to run at once.
    pub group_concurrency: Option<u32>,
    /// Jobs of one group let through to run per interval: `10/s`.
    pub group_rate: Option<String>,
    /// Jobs of one group the group rate lets through at once after a quiet spell.
    pub group_burst: Option<u32>,
}

impl FlowSettings {
    /// The limit these settings give, checked.
    pub fn limit(&self) -> Result<QueueLimit, FlowError> {
        let limit = QueueLimit {
            rate: self.rate.as_deref().map(str::parse).transpose()?,
            burst: self.burst,
            concurrency: self.concurrency,
            group_concurrency: self.group_concurrency,
            group_rate: self.group_rate.as_deref().map(str::parse).transpose()?,
            group_burst: self.group_burst,
        };
        limit.check()?;
        Ok(limit)
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
    /// exec: variables set for the command. The worker's own environment is not passed
    /// on, beside PATH, HOME, LANG, LC_ALL and TZ.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// exec: names of the worker's variables passed on to the command as they are.
    #[serde(default)]
    pub inherit_env: Vec<String>,
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
        Self {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_url_file: None,
            redis_tls: TlsFiles::default(),
            namespace: worker.namespace.clone(),
            queues: worker
                .queues
                .iter()
                .map(|q| (q.name.clone(), q.weight))
                .collect(),
            partitions: BTreeMap::new(),
            worker,
            limits: Limits::default(),
            retention: Retention::default(),
            defaults: JobDefaults::default(),
            handlers: BTreeMap::new(),
            scheduler: SchedulerConfig::default(),
            reconcile: ReconcileConfig::default(),
            alerts: AlertConfig::default(),
            schedules: BTreeMap::new(),
            flow: BTreeMap::new(),
        }
    }
}

/// Top-level keys an environment variable may set; others (FLOTILLA_CONFIG, …) are flags.
const ENV_KEYS: [&str; 16] = [
    "redis_url",
    "redis_url_file",
    "redis_tls",
    "namespace",
    "queues",
    "partitions",
    "worker",
    "limits",
    "retention",
    "defaults",
    "handlers",
    "scheduler",
    "schedules",
    "reconcile",
    "alerts",
    "flow",
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
        check_section_variables(std::env::vars().map(|(name, _)| name))?;
        let env = Env::prefixed("FLOTILLA_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let mut settings: Settings = figment.merge(env).extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid settings:\n  {}", errors.join("\n  "))
        })?;
        if let Some(url_file) = &settings.redis_url_file {
            settings.redis_url = read_url_file(url_file)?;
        }
        settings.check(file)?;
        Ok(settings)
    }

    fn check(&self, file: Option<&Path>) -> anyhow::Result<()> {
        let origin = file.map_or_else(|| "the environment".to_owned(), |p| p.display().to_string());
        let invalid = |problem: String| anyhow::anyhow!("invalid settings in {origin}: {problem}");
        self.redis_target().map_err(|e| invalid(format!("{e:#}")))?;
        if let Some(queue) = self
            .partitions
            .keys()
            .find(|q| !self.queues.contains_key(*q))
        {
            return Err(invalid(format!(
                "partitions.{queue}: no queue {queue:?} under [queues]; list it there with its weight"
            )));
        }
        self.worker_config().validate().map_err(invalid)?;
        self.handler_registry()
            .with_context(|| format!("invalid settings in {origin}"))?;
        self.scheduler_config().validate().map_err(invalid)?;
        for (queue, flow) in &self.flow {
            flotilla_proto::check_name("queue", queue)
                .map_err(|e| invalid(format!("flow.{queue}: {e}")))?;
            flow.limit()
                .map_err(|e| invalid(format!("flow.{queue}: {e}")))?;
        }
        for schedule in self.schedule_definitions() {
            schedule.validate().map_err(|e| {
                invalid(format!(
                    "schedules.{}",
                    e.to_string().trim_start_matches("schedule ")
                ))
            })?;
        }
        Ok(())
    }

    /// Where Redis is: `redis_url` with the `[redis_tls]` files.
    pub fn redis_target(&self) -> anyhow::Result<RedisTarget> {
        Ok(RedisTarget::with_tls(&self.redis_url, &self.redis_tls)?)
    }

    /// The `[limits]`, `[retention]` and `[defaults]` sections together.
    pub fn job_policy(&self) -> JobPolicy {
        JobPolicy {
            limits: self.limits.clone(),
            retention: self.retention.clone(),
            defaults: self.defaults.clone(),
        }
    }

    /// Queues ordered by weight, heaviest first.
    pub fn queue_weights(&self) -> Vec<QueueWeight> {
        let mut queues: Vec<QueueWeight> = self
            .queues
            .iter()
            .map(|(name, weight)| {
                let partitions = self.partitions.get(name).copied().unwrap_or(1);
                QueueWeight::new(name, *weight).partitioned(partitions)
            })
            .collect();
        queues.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
        queues
    }

    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            namespace: self.namespace.clone(),
            queues: self.queue_weights(),
            jobs: self.job_policy(),
            ..self.worker.clone()
        }
    }

    pub fn scheduler_config(&self) -> SchedulerConfig {
        SchedulerConfig {
            namespace: self.namespace.clone(),
            reconcile: self.reconcile.clone(),
            alerts: self.alerts.clone(),
            jobs: self.job_policy(),
            ..self.scheduler.clone()
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

    /// The built-in test handlers plus every configured `exec` and `http` handler.
    pub fn handler_registry(&self) -> anyhow::Result<Registry> {
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
                    for name in spec.env.keys().chain(&spec.inherit_env) {
                        check_env_name(&key, name)?;
                    }
                    handler.env = spec.env.clone();
                    handler.inherit_env = spec.inherit_env.clone();
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

/// A `FLOTILLA_<SECTION>__<KEY>` variable must name a section that exists: a typo would
/// otherwise be ignored, and the setting it meant silently not applied.
fn check_section_variables(names: impl Iterator<Item = String>) -> anyhow::Result<()> {
    for name in names {
        let Some(rest) = name.strip_prefix("FLOTILLA_") else {
            continue;
        };
        let Some((section, _)) = rest.split_once("__") else {
            continue;
        };
        if !ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(section)) {
            bail!(
                "environment variable {name}: there is no settings section {:?} (expected one of {})",
                section.to_ascii_lowercase(),
                ENV_KEYS.join(", ")
            );
        }
    }
    Ok(())
}

/// An environment variable's name as `[handlers.<type>]` gives it: what a shell accepts.
fn check_env_name(key: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!(
            "{key}: {name:?} is not a variable name (expected letters, digits and _, \
             not starting with a digit, e.g. API_TOKEN)"
        );
    }
    Ok(())
}

/// The Redis URL in `path`, without the line break a Secret or an editor may leave.
fn read_url_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "redis_url_file: cannot read {} (expected a file holding one Redis URL)",
            path.display()
        )
    })?;
    let url = text.trim();
    if url.is_empty() {
        bail!(
            "redis_url_file: {} is empty (expected one Redis URL, e.g. redis://:password@redis:6379)",
            path.display()
        );
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::check_section_variables;

    #[test]
    fn a_variable_naming_no_section_is_refused_with_its_name() {
        let ok = [
            "FLOTILLA_WORKER__CONCURRENCY",
            "FLOTILLA_CONFIG",
            "PATH",
            "FLOTILLA_REDIS_URL",
        ];
        assert!(check_section_variables(ok.iter().map(|s| (*s).to_owned())).is_ok());
        let err = check_section_variables(["FLOTILLA_WROKER__CONCURRENCY".to_owned()].into_iter())
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("FLOTILLA_WROKER__CONCURRENCY") && err.contains("\"wroker\""),
            "{err}"
        );
    }
}
