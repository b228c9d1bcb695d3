//! `flotilla jobs retry <id>` and `flotilla jobs retry --dead`: put dead jobs back on
//! their queues, one or many, with a progress bar and a count at the end.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use flotilla_admin::{DeadFilter, RetryReply};
use flotilla_proto::Status;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub async fn run(config_file: Option<&Path>, args: RetryArgs) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    if let Some(id) = &args.id {
        let record = admin.find_job(id, args.queue.as_deref()).await?;
        let full_id = record.full_id();
        // A job that finished on the fast path has no record to retry; its status says why.
        if let Some(status) = record.status.filter(|s| *s != Status::Dead) {
            bail!(
                "job {full_id} is {}, not dead: only dead jobs are retried",
                status.as_str()
            );
        }
        match admin.retry(&record.queue, &record.id).await? {
            RetryReply::Retried => println!("retried {full_id} on {}", record.queue),
            RetryReply::Missing => bail!("job {full_id} is gone (its record expired)"),
            RetryReply::NotDead(status) => {
                bail!("job {full_id} is {status}, not dead: only dead jobs are retried")
            }
        }
        return Ok(());
    }
    let filter = DeadFilter {
        queue: args.queue.clone(),
        job_type: args.job_type.clone(),
        since_ms: args.since.map(super::ms_ago),
    };
    let total = admin.count_dead(&filter).await?;
    if total == 0 {
        println!("no dead jobs match");
        return Ok(());
    }
    if !args.yes
        && std::io::stdin().is_terminal()
        && !super::confirm(&format!("retry {total} dead jobs?"))?
    {
        println!("nothing retried");
        return Ok(());
    }
    let bar = progress_bar(total);
    let count = admin
        .retry_dead(&filter, |done| bar.set_position(done as u64))
        .await?;
    bar.finish_and_clear();
    println!(
        "retried {} dead jobs{}",
        count.retried,
        if count.skipped > 0 {
            format!(
                "; {} were no longer dead and were left as they were",
                count.skipped
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// A bar on a terminal's stderr; nothing when stderr is piped.
fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("retrying {bar:40} {pos}/{len}") {
        bar.set_style(style);
    }
    bar
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The dead job's id, or a prefix that matches only one job.
    #[arg(required_unless_present = "dead", conflicts_with = "dead")]
    pub id: Option<String>,

    /// Retry every dead job that matches the filters.
    #[arg(long)]
    pub dead: bool,

    /// Only this queue's dead jobs; with an id, the queue holding it.
    #[arg(long)]
    pub queue: Option<String>,

    /// Only dead jobs of this type.
    #[arg(long = "type", value_name = "TYPE", requires = "dead")]
    pub job_type: Option<String>,

    /// Only jobs that died within this long, e.g. `1h` or `7d`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "dead")]
    pub since: Option<Duration>,

    /// Do not ask before retrying many (asked only on a terminal).
    #[arg(long)]
    pub yes: bool,
}
