//! `flotilla dead list | show`: the dead-letter queues, newest first.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use flotilla_admin::{DeadFilter, DeadLetter};

use super::jobs::ShowArgs;

/// The error column's width in the table; `dead show` has the whole text.
const ERROR_SHOWN: usize = 60;

pub async fn run(config_file: Option<&Path>, command: DeadCommand) -> anyhow::Result<()> {
    let (queue, job_type, since, limit, json) = match command {
        DeadCommand::Show(args) => return super::jobs::show(config_file, args).await,
        DeadCommand::List {
            queue,
            job_type,
            since,
            limit,
            json,
        } => (queue, job_type, since, limit, json),
    };
    let mut admin = super::admin(config_file).await?;
    let filter = DeadFilter {
        queue,
        job_type,
        since_ms: since.map(super::ms_ago),
    };
    let letters = admin.dead_list(&filter, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        print!("{}", table(&letters));
    }
    Ok(())
}

fn table(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead jobs\n".to_owned();
    }
    let header = ["JOB", "QUEUE", "TYPE", "ATTEMPTS", "DIED", "ERROR"];
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|d| {
            let died = jiff::Timestamp::from_millisecond(d.failed_at_ms)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let first_line = d.error.lines().next().unwrap_or_default();
            let error: String = first_line.chars().take(ERROR_SHOWN).collect();
            vec![
                flotilla_proto::full_id(&d.queue, &d.job_id),
                d.queue.clone(),
                d.job_type.clone(),
                d.attempts.to_string(),
                died,
                error,
            ]
        })
        .collect();
    super::table::render(&header, &rows)
}

#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// The most recent dead jobs, newest first: id, queue, type, attempts, when, error.
    List {
        /// Only this queue's.
        #[arg(long)]
        queue: Option<String>,
        /// Only jobs of this type.
        #[arg(long = "type", value_name = "TYPE")]
        job_type: Option<String>,
        /// Only jobs that died within this long, e.g. `1h`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dead job's whole record, with its error.
    Show(ShowArgs),
}
