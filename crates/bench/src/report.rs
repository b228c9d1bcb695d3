//! The benchmark's report: one row per scenario run, printed as it completes and written
//! as JSON and Markdown in the schema `bench/peers` shares with the peer systems.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::redis_stats::RedisCost;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub system: &'static str,
    pub version: &'static str,
    pub machine: Machine,
    pub params: Params,
    pub notes: Vec<String>,
    pub results: Vec<Row>,
}

/// Where the numbers were taken.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub redis: String,
    pub os: String,
}

/// What every run shares.
#[derive(Debug, Serialize)]
pub struct Params {
    pub jobs: usize,
    pub payload_bytes: usize,
    pub pinned: bool,
}

/// One run of one scenario variant. A figure that does not apply is `None` (`null`).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub variant: String,
    pub jobs: usize,
    pub jobs_per_s: f64,
    pub latency_ms: Option<Latency>,
    pub redis_cpu_us_per_job: f64,
    pub redis_calls_per_job: f64,
    pub script_calls_per_job: f64,
    pub redis_bytes_per_job: Option<f64>,
    pub worker_rss_mb: Option<f64>,
    pub worker_cpu_us_per_job: Option<f64>,
    /// The costliest Redis commands, µs per job (console only).
    #[serde(skip)]
    pub top_commands: Vec<(String, f64)>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Row {
    /// The row with the workers' CPU per job and peak RSS.
    pub fn with_workers(mut self, workers: super::fleet::WorkerFigures) -> Self {
        self.worker_cpu_us_per_job = workers.cpu_us_per_job;
        self.worker_rss_mb = workers.rss_mb;
        self
    }

    /// A row with the Redis figures of `cost` spread over `jobs`; the caller fills in the
    /// rest that applies.
    pub fn new(
        scenario: &'static str,
        variant: impl Into<String>,
        jobs: usize,
        elapsed_secs: f64,
        cost: &RedisCost,
    ) -> Self {
        let per_job = |x: f64| x / jobs.max(1) as f64;
        Self {
            scenario,
            variant: variant.into(),
            jobs,
            jobs_per_s: jobs as f64 / elapsed_secs.max(1e-9),
            latency_ms: None,
            redis_cpu_us_per_job: per_job(cost.cpu_usec),
            redis_calls_per_job: per_job(cost.calls as f64),
            script_calls_per_job: per_job(cost.script_calls as f64),
            redis_bytes_per_job: None,
            worker_rss_mb: None,
            worker_cpu_us_per_job: None,
            top_commands: cost.top_commands(jobs, 6),
        }
    }
}

/// The column headings, shared by the console and the Markdown table.
const HEADINGS: [&str; 10] = [
    "scenario",
    "variant",
    "jobs/s",
    "p50 / p99 ms",
    "redis µs/job",
    "calls/job",
    "scripts/job",
    "bytes/job",
    "worker RSS MB",
    "worker µs/job",
];

/// A row's cells, formatted the same way everywhere.
fn cells(row: &Row) -> [String; 10] {
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
    };
    [
        row.scenario.to_owned(),
        row.variant.clone(),
        format!("{:.0}", row.jobs_per_s),
        row.latency_ms.map_or_else(
            || "–".to_owned(),
            |l| format!("{:.2} / {:.2}", l.p50, l.p99),
        ),
        format!("{:.1}", row.redis_cpu_us_per_job),
        format!("{:.2}", row.redis_calls_per_job),
        format!("{:.3}", row.script_calls_per_job),
        opt(row.redis_bytes_per_job, 0),
        opt(row.worker_rss_mb, 1),
        opt(row.worker_cpu_us_per_job, 1),
    ]
}

/// Prints the heading line of the console table.
pub fn print_heading() {
    println!("\n  {}", console_line(&HEADINGS.map(str::to_owned)));
}

/// Prints one row as it completes, and where Redis spent its time in it.
pub fn print_row(row: &Row) {
    println!("  {}", console_line(&cells(row)));
    let top: Vec<String> = row
        .top_commands
        .iter()
        .map(|(name, usec)| format!("{name} {usec:.2}"))
        .collect();
    if !top.is_empty() {
        println!("      redis µs/job by command: {}", top.join(", "));
    }
}

fn console_line(cells: &[String; 10]) -> String {
    const WIDTHS: [usize; 10] = [8, 14, 8, 14, 12, 9, 11, 9, 13, 13];
    cells
        .iter()
        .zip(WIDTHS)
        .enumerate()
        .map(|(i, (cell, width))| {
            if i < 2 {
                format!("{cell:<width$}")
            } else {
                format!("{cell:>width$}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// The Markdown form: what was measured where, then one table of every row.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# {} {} benchmark\n", self.system, self.version);
        let _ = writeln!(
            out,
            "{} ({} cores), Redis {}, {}; payload padding {} bytes; pinned: {}.\n",
            m.cpu, m.cores, m.redis, m.os, self.params.payload_bytes, self.params.pinned
        );
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(out, "\n| {} |", HEADINGS.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(HEADINGS.len()));
        for row in &self.results {
            let _ = writeln!(out, "| {} |", cells(row).join(" | "));
        }
        out
    }

    /// Writes the JSON and the Markdown report, creating their folders.
    pub fn write(&self, json: &Path, markdown: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_file(json, &text)?;
        write_file(markdown, &self.markdown())
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The machine the run is on: CPU model and OS from /proc where there is one.
pub fn machine(redis: String) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| format!("Linux {}", r.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        redis,
        os,
    }
}
