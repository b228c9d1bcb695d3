//! `flotilla jobs show`, `jobs cancel` and `jobs delete`: find a job by id or unique
//! prefix, print its record, cancel it or delete it.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;
use clap::{Args, Subcommand};
use flotilla_admin::Cancelled;
use flotilla_proto::Keys;

use super::list::ListArgs;
use super::purge::PurgeArgs;
use super::retry::RetryArgs;
use crate::settings::Settings;

pub async fn show(config_file: Option<&Path>, args: ShowArgs) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    let record = admin.find_job(&args.id, args.queue.as_deref()).await?;
    if args.json {
        // `id` is the job's id within its queue; `full_id` names it anywhere.
        let mut shown = serde_json::to_value(&record)?;
        shown["full_id"] = record.full_id().into();
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print!("{}", flotilla_admin::job_text(&record));
        let (deps, waited_on_by) = admin.job_edges(&record.queue, &record.id).await?;
        print!("{}", edges_text(deps.as_ref(), &waited_on_by));
    }
    Ok(())
}

/// What a job waits for (each parent, how it ended, what it does if the parent fails)
/// and the jobs and batches that wait for it; nothing for a job with neither.
fn edges_text(
    deps: Option<&flotilla_admin::Dependencies>,
    waited_on_by: &[flotilla_admin::Edge],
) -> String {
    let mut out = String::new();
    if let Some(deps) = deps {
        match deps.left {
            Some(left) => out.push_str(&format!(
                "waits for:   {left} of {} parents\n",
                deps.edges_in.len()
            )),
            None => out.push_str("waited for:\n"),
        }
        for edge in &deps.edges_in {
            let ended = deps
                .parents
                .iter()
                .find(|p| p.queue == edge.queue && p.id == edge.id);
            let state = match ended {
                Some(p) if p.blocked => "died: blocked until a retry of it completes".to_owned(),
                Some(p) => p.outcome.clone().unwrap_or_default(),
                None => "not ended".to_owned(),
            };
            out.push_str(&format!(
                "  {} ({}): {state}; if it fails: {}\n",
                edge.id, edge.queue, edge.policy
            ));
        }
    }
    for edge in waited_on_by {
        let what = if edge.policy == "batch" {
            "batch"
        } else {
            "job"
        };
        out.push_str(&format!(
            "waited on by {what} {} ({})\n",
            edge.id, edge.queue
        ));
    }
    out
}

pub async fn cancel(
    config_file: Option<&Path>,
    id: &str,
    queue: Option<&str>,
) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let conn = super::connect_redis(&settings.redis_target()?).await?;
    let keys = Keys::new(settings.namespace.clone());
    let mut admin = flotilla_admin::Admin::new(conn, keys).with_policy(settings.job_policy());
    let record = admin.find_job(id, queue).await?;
    match admin.cancel(&record.queue, &record.id).await? {
        Cancelled::Cancelled { was } => {
            let was = was.map_or("?", |s| s.as_str());
            println!("cancelled {} (it was {was})", record.full_id());
            if was == "running" {
                println!("its worker stops the handler within a second");
            }
        }
        Cancelled::AlreadyFinished { status } => println!(
            "{} had already finished ({}); nothing changed",
            record.full_id(),
            status.map_or("?", |s| s.as_str())
        ),
        Cancelled::NotFound => bail!("job {} is gone (its record expired)", record.full_id()),
    }
    Ok(())
}

pub async fn delete(
    config_file: Option<&Path>,
    id: &str,
    queue: Option<&str>,
    yes: bool,
) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    let record = admin.find_job(id, queue).await?;
    let status = record.status.map_or("?", |s| s.as_str());
    if !yes
        && std::io::stdin().is_terminal()
        && !super::confirm(&format!(
            "delete {} ({status}, {} on {})?",
            record.full_id(),
            record.job_type,
            record.queue
        ))?
    {
        println!("nothing deleted");
        return Ok(());
    }
    let deleted = admin.delete_job(&record.id, Some(&record.queue)).await?;
    println!(
        "deleted {} from {} (it was {})",
        flotilla_proto::full_id(&deleted.queue, &deleted.id),
        deleted.queue,
        deleted.was.map_or("?", |s| s.as_str())
    );
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs of one status, a page at a time: oldest first for what waits or runs,
    /// newest first for what has ended.
    List(ListArgs),
    /// Show one job by id or by a prefix that matches only one job.
    Show(ShowArgs),
    /// Put a dead job back on its queue with a fresh set of attempts, or every dead job
    /// (`--dead`, narrowed by `--queue`, `--type` and `--since`).
    Retry(RetryArgs),
    /// Delete completed or dead jobs that ended longer ago than `--older-than`: their
    /// records and their entries in `done` or the dead-letter stream.
    Purge(PurgeArgs),
    /// Cancel a job that has not finished; a running one is stopped through its
    /// cancellation token within a second.
    Cancel {
        /// The job's id, or a prefix that matches only one job.
        id: String,
        /// The queue holding it, when its id is in several (fast-path ids are entry
        /// ids, unique within one queue only).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Delete a job that is not running: its record, its place in its queue or list,
    /// its dead-letter or completion entry, its id key and its unique lock.
    Delete {
        /// The job's id, or a prefix that matches only one job.
        id: String,
        /// The queue holding it, when its id is in several.
        #[arg(long)]
        queue: Option<String>,
        /// Do not ask first (asked only on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The job id, or a unique prefix of it.
    pub id: String,

    /// The queue holding it, when its id is in several (fast-path ids are entry ids,
    /// unique within one queue only).
    #[arg(long)]
    pub queue: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
