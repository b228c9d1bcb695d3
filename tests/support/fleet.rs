//! Workers for tests: in-process ones (fast, with Rust handlers the test defines) and
//! `flotilla worker` processes (to kill, stop, continue and signal).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use flotilla_harness::{Launch, Process, Signal, send_signal};

use flotilla_worker::{Registry, Shutdown, Worker, WorkerConfig, WorkerError};
use tokio::task::JoinHandle;

/// The default job policy with quick retries, so failing jobs move along in a test's time.
pub use flotilla::testing::fast_policy;

/// Settings that make leases, heartbeats and retries fast enough for tests, in the
/// default namespace (the published harness's, which tests of the library use too).
pub fn fast_config() -> WorkerConfig {
    flotilla::testing::fast_config(&WorkerConfig::default().namespace)
}

/// Settings for processes whose logs a test reads: JSON lines, read by field.
pub const JSON_LOGS: &[(&str, &str)] = &[("FLOTILLA_LOG_FORMAT", "json")];

/// The lines of a log that are JSON objects.
pub fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// A worker running on the test's own runtime.
#[derive(Debug)]
pub struct InProcessWorker {
    pub id: String,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl InProcessWorker {
    pub async fn start(url: &str, config: WorkerConfig, registry: Registry) -> Self {
        let worker = Worker::connect(url, config, registry)
            .await
            .expect("worker starts");
        let id = worker.id().to_owned();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(worker.run(shutdown.clone()));
        Self { id, shutdown, task }
    }

    /// Graceful stop; returns once the worker has drained.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("worker task")
            .expect("worker ran cleanly");
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// A `flotilla worker` or `flotilla scheduler` child process. Its log goes to a file the
/// test can read.
#[derive(Debug)]
pub struct FlotillaProcess {
    process: Process,
    _dir: tempfile::TempDir,
}

/// The flotilla binary built for these tests. Cargo builds it next to the test binary's
/// `deps` directory because the integration tests of this package need it.
pub fn flotilla_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join(format!("flotilla-it{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with cargo test -p flotilla-tests",
        bin.display()
    );
    bin
}

/// Fast test settings for every process: short leases, heartbeats and polls.
const FAST_ENV: [(&str, &str); 12] = [
    ("FLOTILLA_WORKER__HEARTBEAT_INTERVAL", "200ms"),
    ("FLOTILLA_WORKER__LEASE_TTL", "1500ms"),
    ("FLOTILLA_WORKER__BLOCK_TIME", "200ms"),
    ("FLOTILLA_WORKER__PROMOTE_INTERVAL", "20ms"),
    ("FLOTILLA_WORKER__SHUTDOWN_GRACE", "2s"),
    ("FLOTILLA_DEFAULTS__BACKOFF", "fixed:50"),
    ("FLOTILLA_SCHEDULER__LEASE_TTL", "2s"),
    ("FLOTILLA_SCHEDULER__SAFETY_MARGIN", "500ms"),
    ("FLOTILLA_SCHEDULER__RETRY_INTERVAL", "100ms"),
    ("FLOTILLA_SCHEDULER__POLL_INTERVAL", "50ms"),
    ("FLOTILLA_SCHEDULER__MISFIRE_GRACE", "1s"),
    ("FLOTILLA_SCHEDULER__PROMOTE_INTERVAL", "50ms"),
];

/// A worker process; see [`FlotillaProcess`].
pub type WorkerProcess = FlotillaProcess;

impl FlotillaProcess {
    /// Starts `flotilla worker` on `url` with fast test settings; `extra_env` adds or
    /// overrides `FLOTILLA_*` settings and `config_toml`, if given, is its settings file.
    pub fn start(url: &str, extra_env: &[(&str, &str)], config_toml: Option<&str>) -> Self {
        Self::spawn("worker", url, extra_env, config_toml)
    }

    /// Starts `flotilla scheduler` the same way.
    pub fn scheduler(url: &str, extra_env: &[(&str, &str)], config_toml: Option<&str>) -> Self {
        Self::spawn("scheduler", url, extra_env, config_toml)
    }

    /// Starts `flotilla dashboard --listen <listen>` on `url`, allowing changes with
    /// `token` when one is given, and waits until `/healthz` answers.
    pub fn dashboard(url: &str, listen: &str, token: Option<&str>) -> Self {
        Self::dashboard_with(url, listen, token, &[])
    }

    /// [`FlotillaProcess::dashboard`] with more arguments. `listen` may be `0.0.0.0:port`:
    /// the wait is then for `127.0.0.1:port`.
    pub fn dashboard_with(url: &str, listen: &str, token: Option<&str>, extra: &[&str]) -> Self {
        let env: Vec<(&str, &str)> = token
            .map(|t| ("FLOTILLA_DASHBOARD_TOKEN", t))
            .into_iter()
            .collect();
        let args = [&["dashboard", "--listen", listen][..], extra].concat();
        let process = Self::spawn_args(&args, url, &env, None);
        let reach = listen.replace("0.0.0.0:", "127.0.0.1:");
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http_get(&reach, "/healthz").map(|(status, _)| status) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "the dashboard did not answer: {}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    fn spawn(
        subcommand: &str,
        url: &str,
        extra_env: &[(&str, &str)],
        config_toml: Option<&str>,
    ) -> Self {
        Self::spawn_args(&[subcommand], url, extra_env, config_toml)
    }

    fn spawn_args(
        args: &[&str],
        url: &str,
        extra_env: &[(&str, &str)],
        config_toml: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut launch = Launch::new(flotilla_bin()).args(args);
        if let Some(toml) = config_toml {
            let path = dir.path().join("flotilla.toml");
            std::fs::write(&path, toml).expect("settings file");
            launch = launch.arg("--config").arg(path);
        }
        let process = launch
            .envs(FAST_ENV)
            .env("FLOTILLA_REDIS_URL", url)
            .env("RUST_LOG", "info")
            .env_remove("FLOTILLA_CONFIG")
            .envs(extra_env.iter().copied())
            .log_to(dir.path().join("worker.log"))
            .spawn()
            .expect("flotilla worker starts");
        Self { process, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends a signal by name (KILL, STOP, CONT, TERM, INT).
    pub fn signal(&self, name: &str) {
        let signal = Signal::named(name).unwrap_or_else(|| panic!("no signal named {name}"));
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout)
    }

    pub fn has_exited(&mut self) -> bool {
        self.process.has_exited()
    }

    /// The lines logged so far that are JSON objects (start the process with
    /// `FLOTILLA_LOG_FORMAT=json`), for assertions on fields instead of scraped text.
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        json_lines(&self.log())
    }

    /// Everything the worker logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
