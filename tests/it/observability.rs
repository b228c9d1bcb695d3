//! What an operator's Prometheus and Kubernetes see: `/metrics` counts every outcome
//! exactly, `/readyz` follows Redis, `/healthz` answers while the process lives.

use std::collections::HashMap;
use std::time::Duration;

use flotilla_producer::NewJob;
use flotilla_proto::Status;
use flotilla_tests::{
    JSON_LOGS, WorkerProcess, eventually, flotilla_bin, free_local_addr, http_get, http_server,
    repo_root, venv_tool,
};
use serde_json::json;

use crate::util::{Env, LONG};

/// A scrape as series (`name{labels}`, as the text writes them) to values.
fn scrape(addr: &str) -> Option<HashMap<String, f64>> {
    let (status, body) = http_get(addr, "/metrics")?;
    assert_eq!(status, 200, "{body}");
    Some(
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

fn jobs(job_type: &str, outcome: &str) -> String {
    format!(r#"flotilla_jobs_total{{queue="default",type="{job_type}",outcome="{outcome}"}}"#)
}

#[tokio::test]
async fn metrics_count_every_outcome_exactly() {
    let env = Env::start().await;
    let addr = free_local_addr();
    let worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_HTTP_LISTEN", &addr)], None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push((env.enqueue("noop", json!({})).await, Status::Completed));
    }
    // Fails once, then succeeds.
    ids.push((
        env.enqueue("fail", json!({"times": 1})).await,
        Status::Completed,
    ));
    // Fails both of its attempts: dead.
    let doomed = NewJob::new("fail", &json!({"times": -1}))
        .expect("encodes")
        .max_attempts(2);
    ids.push((env.enqueue_job(doomed).await, Status::Dead));
    // No handler for it here: a failure each attempt, and counted as an unknown type.
    let unhandled = NewJob::new("no_such_type", &json!({}))
        .expect("encodes")
        .max_attempts(1);
    ids.push((env.enqueue_job(unhandled).await, Status::Dead));
    // Cannot be decoded at all.
    env.xadd("default", &[("payload", b"{}")]).await;
    for (id, status) in &ids {
        env.wait_status("default", id, *status, LONG).await;
    }

    let expected = [
        (jobs("noop", "started"), 3.0),
        (jobs("noop", "completed"), 3.0),
        (jobs("noop", "failed"), 0.0),
        (jobs("noop", "retried"), 0.0),
        (jobs("fail", "started"), 4.0),
        (jobs("fail", "failed"), 2.0),
        (jobs("fail", "retried"), 2.0),
        (jobs("fail", "completed"), 1.0),
        (jobs("fail", "dead"), 1.0),
        (jobs("unknown", "started"), 1.0),
        (jobs("unknown", "dead"), 1.0),
        (jobs("unknown", "malformed"), 1.0),
        (jobs("unknown", "reclaimed"), 0.0),
        (
            r#"flotilla_job_run_seconds_count{queue="default",type="noop"}"#.to_owned(),
            3.0,
        ),
        (
            r#"flotilla_job_wait_seconds_count{queue="default",type="fail"}"#.to_owned(),
            4.0,
        ),
        ("flotilla_jobs_in_flight".to_owned(), 0.0),
    ];
    let seen = eventually(LONG, "the counts on /metrics", || async {
        let seen = scrape(&addr)?;
        expected
            .iter()
            .all(|(series, value)| seen.get(series) == Some(value))
            .then_some(seen)
    })
    .await;
    assert!(
        !seen.keys().any(|series| series.contains("no_such_type")),
        "a type without a handler gets no series of its own"
    );
    drop(worker);
}

#[tokio::test]
async fn readyz_follows_redis_and_healthz_the_process() {
    let mut env = Env::start().await;
    let addr = free_local_addr();
    let worker = WorkerProcess::start(&env.url(), &[("FLOTILLA_HTTP_LISTEN", &addr)], None);
    let status_of = |path: &'static str| {
        let addr = addr.clone();
        move || {
            let addr = addr.clone();
            async move { http_get(&addr, path).map(|(status, _)| status) }
        }
    };
    let ready = status_of("/readyz");
    eventually(LONG, "ready", || async {
        (ready().await == Some(200)).then_some(())
    })
    .await;

    env.redis.kill();
    eventually(LONG, "not ready without redis", || async {
        (ready().await == Some(503)).then_some(())
    })
    .await;
    assert_eq!(
        status_of("/healthz")().await,
        Some(200),
        "alive all the same"
    );

    env.redis.restart();
    eventually(LONG, "ready again", || async {
        (ready().await == Some(200)).then_some(())
    })
    .await;

    // A draining worker is not ready: it takes no new work.
    env.reconnect().await;
    let id = env.enqueue("sleep", json!({"ms": 3000})).await;
    env.wait_status("default", &id, Status::Running, LONG).await;
    worker.signal("TERM");
    let (status, body) = eventually(
        Duration::from_secs(3),
        "not ready while draining",
        || async { http_get(&addr, "/readyz").filter(|(status, _)| *status == 503) },
    )
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("draining"), "{body}");
}

#[tokio::test]
async fn a_scheduler_replica_serves_health_and_readiness() {
    let mut env = Env::start().await;
    let addr = free_local_addr();
    let _scheduler = WorkerProcess::scheduler(&env.url(), &[("FLOTILLA_HTTP_LISTEN", &addr)], None);
    eventually(LONG, "scheduler ready", || async {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(http_get(&addr, "/healthz").map(|r| r.0), Some(200));
    env.redis.kill();
    eventually(LONG, "scheduler not ready without redis", || async {
        (http_get(&addr, "/readyz")?.0 == 503).then_some(())
    })
    .await;
    env.redis.restart();
    env.reconnect().await;
}

#[tokio::test]
async fn the_leading_scheduler_reports_ticks_leadership_and_the_queues() {
    let env = Env::start().await;
    // Three jobs nobody reads, one for later, and a paused queue.
    env.leave_waiting(3).await;
    let _: () = env
        .cmd(redis::cmd("SADD").arg(env.keys.paused()).arg("low"))
        .await;
    let addr = free_local_addr();
    let config = r#"
[schedules.every_second]
every = "1s"
type = "noop"
queue = "low"
"#;
    let _scheduler =
        WorkerProcess::scheduler(&env.url(), &[("FLOTILLA_HTTP_LISTEN", &addr)], Some(config));
    let seen = eventually(LONG, "the leader's series on /metrics", || async {
        let seen = scrape(&addr)?;
        let fired = seen
            .get(r#"flotilla_schedule_ticks_total{schedule="every_second",outcome="fired"}"#)
            .copied()
            .unwrap_or(0.0);
        // The schedule's queue is known once it has fired, and sampled after that.
        (fired >= 2.0 && seen.contains_key(r#"flotilla_queue_paused{queue="low"}"#)).then_some(seen)
    })
    .await;
    let value = |series: &str| seen.get(series).copied();
    assert_eq!(value("flotilla_scheduler_leader"), Some(1.0));
    assert_eq!(value("flotilla_leader_elections_total"), Some(1.0));
    assert!(value("flotilla_scheduler_fencing_epoch") >= Some(1.0));
    assert_eq!(
        value(r#"flotilla_queue_pending{queue="default"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(r#"flotilla_queue_running{queue="default"}"#),
        Some(0.0)
    );
    assert_eq!(value(r#"flotilla_queue_dead{queue="default"}"#), Some(0.0));
    assert_eq!(
        value(r#"flotilla_queue_scheduled{queue="default"}"#),
        Some(1.0)
    );
    assert_eq!(value(r#"flotilla_queue_paused{queue="low"}"#), Some(1.0));
    assert_eq!(
        value(r#"flotilla_queue_paused{queue="default"}"#),
        Some(0.0)
    );
    assert_eq!(value("flotilla_workers_alive"), Some(0.0));
    assert!(
        value(r#"flotilla_queue_oldest_pending_age_seconds{queue="default"}"#) > Some(0.0),
        "the unread jobs have waited"
    );
    // Nothing has read the stream yet: Redis reports no group, and all three are lag.
    assert_eq!(value(r#"flotilla_queue_lag{queue="default"}"#), Some(3.0));

    // A queue taken out of the queue set stops being reported, rather than repeating
    // its last sample for as long as this replica leads.
    let _: () = env
        .cmd(redis::cmd("SREM").arg(env.keys.queues()).arg("default"))
        .await;
    eventually(LONG, "the removed queue's series gone", || async {
        let seen = scrape(&addr)?;
        let gone = !seen
            .keys()
            .any(|series| series.contains(r#"queue="default""#));
        (gone && seen.contains_key(r#"flotilla_queue_pending{queue="low"}"#)).then_some(())
    })
    .await;
}

/// deploy/monitoring in the source tree.
fn monitoring_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    for args in [
        ["check", "rules", "flotilla-rules.yaml"],
        ["test", "rules", "flotilla-rules.test.yaml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(monitoring_dir())
            .output()
            .expect("promtool runs (scripts/ensure-deps.sh installs it with prometheus)");
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The series names a scrape can hold, from its `# TYPE` lines: a counter's `_total`, a
/// histogram's `_bucket`, `_sum` and `_count`, a gauge's own name.
fn served_names(addr: &str) -> Option<Vec<String>> {
    let (_, body) = http_get(addr, "/metrics")?;
    Some(
        body.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_once(' '))
            .flat_map(|(name, kind)| match kind {
                "counter" => vec![format!("{name}_total")],
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|suffix| format!("{name}{suffix}"))
                    .collect(),
                _ => vec![name.to_owned()],
            })
            .collect(),
    )
}

/// A worker and a scheduler process, each serving `/metrics` on an address of its own.
struct ListeningFleet {
    worker_addr: String,
    scheduler_addr: String,
    _worker: WorkerProcess,
    _scheduler: WorkerProcess,
}

impl ListeningFleet {
    fn start(env: &Env, scheduler_config: Option<&str>) -> Self {
        let worker_addr = free_local_addr();
        let scheduler_addr = free_local_addr();
        let worker = WorkerProcess::start(
            &env.url(),
            &[("FLOTILLA_HTTP_LISTEN", worker_addr.as_str())],
            None,
        );
        let scheduler = WorkerProcess::scheduler(
            &env.url(),
            &[("FLOTILLA_HTTP_LISTEN", scheduler_addr.as_str())],
            scheduler_config,
        );
        Self {
            worker_addr,
            scheduler_addr,
            _worker: worker,
            _scheduler: scheduler,
        }
    }
}

/// Every `flotilla_…` name in `text`.
fn names_used(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("flotilla_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_use_is_served() {
    let env = Env::start().await;
    let config = r#"
[schedules.every_second]
every = "1s"
type = "noop"
"#;
    let fleet = ListeningFleet::start(&env, Some(config));
    let (worker_addr, scheduler_addr) = (&fleet.worker_addr, &fleet.scheduler_addr);
    // A series appears once it has a value: run a job, let the schedule tick.
    let id = env.enqueue("noop", json!({})).await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    let used: Vec<(&str, Vec<String>)> = ["flotilla-rules.yaml", "grafana-dashboard.json"]
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(monitoring_dir().join(file)).expect("readable");
            (file, names_used(&text))
        })
        .collect();
    for (file, names) in &used {
        assert!(!names.is_empty(), "{file} uses no flotilla metric");
    }
    let missing = |served: &[String]| -> Vec<String> {
        used.iter()
            .flat_map(|(file, names)| {
                names
                    .iter()
                    .filter(|name| !served.contains(name))
                    .map(move |name| format!("{name} (in {file})"))
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let mut served = served_names(worker_addr).unwrap_or_default();
        served.extend(served_names(scheduler_addr).unwrap_or_default());
        let absent = missing(&served);
        if absent.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "used but served by no process: {absent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `prometheus` server of the test's own, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `targets` every second, with the fleet's alert rules loaded.
    fn start(targets: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = monitoring_dir().join("flotilla-rules.yaml");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: flotilla\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("config");
        let addr = free_local_addr();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/ensure-deps.sh installs it)");
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The value of an instant query that yields one number, if it does yet.
    fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = http_get(&self.addr, &format!("/api/v1/query?query={encoded}"))?;
        if status != 200 {
            return None;
        }
        let reply: serde_json::Value = serde_json::from_str(&body).ok()?;
        reply["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// The names of the alerting rules it has loaded.
    fn alert_rules(&self) -> Vec<String> {
        let Some((200, body)) = http_get(&self.addr, "/api/v1/rules") else {
            return Vec::new();
        };
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        reply["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .filter_map(|rule| rule["name"].as_str().map(str::to_owned))
            .collect()
    }
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[tokio::test]
async fn a_real_prometheus_scrapes_a_worker_and_a_scheduler() {
    let env = Env::start().await;
    let fleet = ListeningFleet::start(&env, None);
    let (worker_addr, scheduler_addr) = (&fleet.worker_addr, &fleet.scheduler_addr);
    for _ in 0..5 {
        let id = env.enqueue("noop", json!({})).await;
        env.wait_status("default", &id, Status::Completed, LONG)
            .await;
    }
    let prometheus = Prometheus::start(&[worker_addr, scheduler_addr]);
    for (promql, expected) in [
        (
            r#"sum(flotilla_jobs_total{type="noop",outcome="completed"})"#,
            5.0,
        ),
        ("sum(flotilla_scheduler_leader)", 1.0),
        ("count(up == 1)", 2.0),
        // The rules load, and with a leader the no-leader alert stays quiet.
        (
            r#"count(ALERTS{alertname="FlotillaNoLeader"}) or vector(0)"#,
            0.0,
        ),
    ] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let value = prometheus.query(promql);
            if value == Some(expected) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{promql}: Prometheus says {value:?}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let rules = prometheus.alert_rules();
    assert_eq!(rules.len(), 7, "{rules:?}");
    assert!(rules.iter().any(|r| r == "FlotillaNoLeader"), "{rules:?}");
}

/// One span as an OTLP/JSON export describes it.
#[derive(Debug, Clone, PartialEq)]
struct ExportedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// The spans in OTLP/JSON export bodies.
fn exported_spans(bodies: &[String]) -> Vec<ExportedSpan> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_ascii_lowercase();
    bodies
        .iter()
        .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .flat_map(|export| {
            export["resourceSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|resource| {
            resource["scopeSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|scope| scope["spans"].as_array().cloned().unwrap_or_default())
        .map(|span| ExportedSpan {
            name: text(&span["name"]),
            trace_id: text(&span["traceId"]),
            span_id: text(&span["spanId"]),
            parent_span_id: text(&span["parentSpanId"]),
        })
        .collect()
}

/// An in-test OTLP/JSON collector, and the variables that send a process's spans to it.
struct Collector {
    endpoint: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Collector {
    fn start() -> Self {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (endpoint, bodies) = http_server(vec![ok; 200]);
        Self { endpoint, bodies }
    }

    fn env(&self) -> [(&'static str, &str); 4] {
        [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", self.endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "flotilla-test"),
        ]
    }

    /// A worker exporting its spans here, with JSON logs.
    fn worker(&self, env: &Env) -> WorkerProcess {
        let mut worker_env = self.env().to_vec();
        worker_env.extend_from_slice(JSON_LOGS);
        WorkerProcess::start(&env.url(), &worker_env, None)
    }

    fn spans(&self) -> Vec<ExportedSpan> {
        exported_spans(&self.bodies.lock().expect("lock"))
    }
}

#[tokio::test]
async fn a_run_span_is_the_child_of_the_enqueue_span_in_another_process() {
    let env = Env::start().await;
    let collector = Collector::start();
    let worker = collector.worker(&env);
    let enqueued = std::process::Command::new(flotilla_bin())
        .args(["enqueue", "--type", "noop"])
        .env("FLOTILLA_REDIS_URL", env.url())
        .env_remove("FLOTILLA_CONFIG")
        .envs(collector.env())
        .output()
        .expect("flotilla enqueue runs");
    assert!(
        enqueued.status.success(),
        "{}",
        String::from_utf8_lossy(&enqueued.stderr)
    );
    // Any language: a raw XADD with a W3C traceparent has its trace continued.
    let foreign_trace = "0af7651916cd43dd8448eb211c80319c";
    let foreign_parent = "b7ad6b7169203331";
    let traceparent = format!("00-{foreign_trace}-{foreign_parent}-01");
    env.xadd(
        "default",
        &[("type", b"noop"), ("traceparent", traceparent.as_bytes())],
    )
    .await;
    // A job that fails once: its retry line names its trace, and both attempts follow it.
    let flaky = env
        .xadd(
            "default",
            &[
                ("type", b"fail"),
                ("payload", br#"{"times": 1}"#),
                ("traceparent", traceparent.as_bytes()),
            ],
        )
        .await;

    let spans = eventually(LONG, "the enqueue and both run spans", || async {
        let spans = collector.spans();
        let enqueue = spans.iter().find(|s| s.name == "enqueue")?;
        let child = spans.iter().any(|s| {
            s.name == "job" && s.trace_id == enqueue.trace_id && s.parent_span_id == enqueue.span_id
        });
        let foreign = spans
            .iter()
            .filter(|s| {
                s.name == "job" && s.trace_id == foreign_trace && s.parent_span_id == foreign_parent
            })
            .count()
            == 3;
        (child && foreign).then_some(spans)
    })
    .await;
    assert_eq!(
        spans.iter().filter(|s| s.name == "job").count(),
        4,
        "{spans:?}"
    );
    let logs = worker.json_logs();
    let retry = logs
        .iter()
        .find(|l| {
            l["fields"]["job"] == json!(flaky)
                && l["fields"]["message"] == "attempt failed, will retry"
        })
        .unwrap_or_else(|| panic!("no retry line in {logs:?}"));
    assert_eq!(retry["fields"]["trace_id"], foreign_trace);
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[tokio::test]
async fn a_python_producers_traceparent_is_continued_by_the_run() {
    let env = Env::start().await;
    let collector = Collector::start();
    let _worker = collector.worker(&env);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let script = repo_root().join("tests/python/xadd_traceparent.py");
    let xadd = std::process::Command::new(venv_tool("python"))
        .arg(&script)
        .arg(env.url())
        .arg(env.keys.stream("default"))
        .arg(format!("00-{trace}-{parent}-01"))
        .output()
        .expect("python runs");
    assert!(
        xadd.status.success(),
        "{}",
        String::from_utf8_lossy(&xadd.stderr)
    );
    let id = String::from_utf8_lossy(&xadd.stdout).trim().to_owned();
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    eventually(
        LONG,
        "the run span in the Python producer's trace",
        || async {
            collector
                .spans()
                .iter()
                .any(|s| s.name == "job" && s.trace_id == trace && s.parent_span_id == parent)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_jobs_log_lines_name_it_and_never_show_its_payload() {
    let env = Env::start().await;
    let worker = WorkerProcess::start(&env.url(), JSON_LOGS, None);
    let marker = "do-not-log-this-7f3a";
    let id = env
        .enqueue("fail", json!({"times": 1, "card": marker}))
        .await;
    env.wait_status("default", &id, Status::Completed, LONG)
        .await;
    let lines = eventually(LONG, "the failed attempt's log line", || async {
        let lines = worker.json_logs();
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "attempt failed, will retry")
            .then_some(lines)
    })
    .await;
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "attempt failed, will retry")
        .expect("found above");
    assert_eq!(failed["fields"]["job"], json!(id));
    assert_eq!(failed["fields"]["queue"], "default");
    assert_eq!(failed["fields"]["type"], "fail");
    assert_eq!(failed["fields"]["attempt"], 1);
    assert!(
        !worker.log().contains(marker),
        "the payload reached the log"
    );
}
