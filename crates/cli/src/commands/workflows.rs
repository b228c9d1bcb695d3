//! `flotilla flows` and `flotilla batches`: create a flow from a JSON description, and
//! show a flow (which job waits on what, and why) or a batch (counts and callbacks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use flotilla_admin::{FLOW_JOBS_SHOWN, FlowView};
use flotilla_producer::{BatchState, Flow, NewJob, OnParentEnd, Outcome, Parent};
use flotilla_proto::{ContentType, Payload};
use serde::Deserialize;

use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Create a flow from a JSON file (`-` for stdin): `{"id": "...", "jobs": [{"id":
    /// "a", "type": "fetch", "queue": "default", "payload": {...}, "after": ["b", {"id":
    /// "c", "queue": "low", "on_end": "run"}], "max_attempts": 3, "timeout": "30s",
    /// "delay": "5s"}]}`. A parent named by id alone is a job of the flow, else a job
    /// enqueued before (looked up by its full id). All of it is created, or nothing.
    Add {
        /// The JSON description.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Show a flow: each job, its status, what it waits for and who waits for it.
    Show {
        /// The flow's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchesCommand {
    /// Show a batch: its counts, its callbacks and whether each fired, its dead jobs.
    Show {
        /// The batch's id.
        id: String,
        /// The queue the batch lives in (else every known queue is looked at).
        #[arg(long)]
        queue: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn flows(config_file: Option<&Path>, command: FlowsCommand) -> anyhow::Result<()> {
    match command {
        FlowsCommand::Add { file } => add(config_file, &file).await,
        FlowsCommand::Show { id, json } => {
            let mut admin = super::admin(config_file).await?;
            let view = admin.flow(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", flow_text(&view));
            }
            Ok(())
        }
    }
}

pub async fn batches(config_file: Option<&Path>, command: BatchesCommand) -> anyhow::Result<()> {
    let BatchesCommand::Show { id, queue, json } = command;
    let mut admin = super::admin(config_file).await?;
    let batch = admin.batch(&id, queue.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&batch)?);
    } else {
        print!("{}", batch_text(&batch));
    }
    Ok(())
}

fn flow_text(view: &FlowView) -> String {
    let mut out = format!(
        "flow {} (listed in {}): {} jobs",
        view.id, view.queue, view.total
    );
    let counts: Vec<String> = view
        .counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    out.push_str(&format!("; {}\n", counts.join(", ")));
    if view.total > view.jobs.len() as u64 {
        out.push_str(&format!(
            "(the first {FLOW_JOBS_SHOWN} shown, and counted above)\n"
        ));
    }
    for job in &view.jobs {
        out.push_str(&format!(
            "\n{} ({}) {}{}\n",
            job.id,
            job.queue,
            job.status.as_deref().unwrap_or("forgotten"),
            job.job_type
                .as_deref()
                .map(|t| format!(", type {t}"))
                .unwrap_or_default()
        ));
        if let Some(left) = job.left {
            out.push_str(&format!(
                "  waits for {left} of {} parents\n",
                job.waits_for.len()
            ));
        }
        for edge in &job.waits_for {
            let ended = job
                .parents_ended
                .iter()
                .find(|p| p.queue == edge.queue && p.id == edge.id);
            let state = match ended {
                Some(p) if p.blocked => format!(
                    "{}: blocked until a retry of it completes",
                    p.outcome.as_deref().unwrap_or("ended")
                ),
                Some(p) => p.outcome.clone().unwrap_or_default(),
                None => "not ended".to_owned(),
            };
            out.push_str(&format!(
                "  after {} ({}), if it fails: {}; {state}\n",
                edge.id, edge.queue, edge.policy
            ));
        }
        for edge in &job.waited_on_by {
            out.push_str(&format!(
                "  {} {} ({}) waits for it\n",
                if edge.policy == "batch" {
                    "batch"
                } else {
                    "job"
                },
                edge.id,
                edge.queue
            ));
        }
    }
    out
}

fn batch_text(batch: &BatchState) -> String {
    let c = &batch.counts;
    let mut out = format!(
        "batch {} ({}): {} jobs, {} pending, {} completed, {} dead, {} ended otherwise; {}\n",
        batch.id,
        batch.queue,
        c.total,
        c.pending,
        c.completed,
        c.dead,
        c.ended,
        if c.sealed {
            "sealed"
        } else {
            "open: jobs may still be added, and its success and complete callbacks wait for the seal"
        }
    );
    for cb in &batch.callbacks {
        out.push_str(&format!(
            "  on {}: job {} ({}) {}\n",
            cb.kind,
            cb.id,
            cb.queue,
            cb.decided.as_deref().unwrap_or("waiting")
        ));
    }
    for dead in &batch.dead_jobs {
        out.push_str(&format!(
            "  dead: {dead} (a retry that completes counts it)\n"
        ));
    }
    out
}

/// A flow as its JSON description gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    #[serde(default)]
    id: Option<String>,
    jobs: Vec<FlowFileJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFileJob {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    job_type: String,
    #[serde(default = "default_queue")]
    queue: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    after: Vec<FlowFileParent>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    delay: Option<Duration>,
    #[serde(default)]
    group: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FlowFileParent {
    Id(String),
    Full {
        id: String,
        #[serde(default)]
        queue: Option<String>,
        #[serde(default)]
        on_end: Option<String>,
    },
}

fn default_queue() -> String {
    "default".to_owned()
}

async fn add(config_file: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading the flow from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let description: FlowFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a flow description", file.display()))?;
    let settings = Settings::load(config_file)?;
    let producer = super::enqueue::connect(&settings).await?;
    let mut flow = match &description.id {
        Some(id) => Flow::with_id(id),
        None => Flow::new(),
    };
    // Jobs of the flow by id, so that a parent named by id alone is found among them.
    let mut ids: Vec<String> = Vec::with_capacity(description.jobs.len());
    let mut queue_of: HashMap<String, String> = HashMap::new();
    for job in &description.jobs {
        let id = job.id.clone().unwrap_or_else(flotilla_proto::new_job_id);
        queue_of.insert(id.clone(), job.queue.clone());
        ids.push(id);
    }
    for (job, id) in description.jobs.iter().zip(&ids) {
        let payload = job.payload.clone().unwrap_or_else(|| serde_json::json!({}));
        let mut new =
            NewJob::with_payload(&job.job_type, Payload::encode(&payload, ContentType::Json)?)
                .queue(&job.queue)
                .id(id);
        if let Some(n) = job.max_attempts {
            new = new.max_attempts(n);
        }
        if let Some(timeout) = job.timeout {
            new = new.timeout(timeout);
        }
        if let Some(delay) = job.delay {
            new = new.delay(delay);
        }
        if let Some(group) = &job.group {
            new = new.group(group);
        }
        for parent in &job.after {
            let (parent_id, queue, on_end) = match parent {
                FlowFileParent::Id(id) => (id, None, None),
                FlowFileParent::Full { id, queue, on_end } => (id, queue.as_ref(), on_end.as_ref()),
            };
            let mut parent = match (queue, queue_of.get(parent_id)) {
                (Some(queue), _) => Parent::new(queue, parent_id),
                (None, Some(queue)) => Parent::new(queue, parent_id),
                (None, None) => producer
                    .parent(parent_id)
                    .await
                    .with_context(|| format!("job {id}: parent {parent_id}"))?,
            };
            if let Some(on_end) = on_end {
                let on_end: OnParentEnd = on_end
                    .parse()
                    .map_err(|e| anyhow::anyhow!("job {id}: on_end {e}"))?;
                parent = parent.on_end(on_end);
            }
            new = new.after(parent);
        }
        flow.add(new)?;
    }
    let flow_id = flow.id().to_owned();
    let created = producer.enqueue_flow(flow).await?;
    println!("{flow_id}");
    for job in created {
        eprintln!(
            "{} ({}) {}",
            job.full_id(),
            job.queue,
            match job.outcome {
                Outcome::Waiting => "waits for its parents",
                _ => "enqueued",
            }
        );
    }
    Ok(())
}
