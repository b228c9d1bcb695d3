//! `flotilla jobs list`: one page of jobs of one status, with the cursor of the next.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use flotilla_admin::{JobPage, JobQuery, JobRow};
use flotilla_proto::Status;

/// The error column's width in the table; `jobs show` has the whole text.
const ERROR_SHOWN: usize = 50;

pub async fn run(config_file: Option<&Path>, args: ListArgs) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    let query = JobQuery {
        status: args.status,
        queue: args.queue,
        job_type: args.job_type,
        since_ms: args.since.map(super::ms_ago),
        limit: args.limit as usize,
        cursor: args.cursor,
    };
    let page = admin.list_jobs(&query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    print!("{}", table(&page, args.status.as_str()));
    if let Some(cursor) = &page.next_cursor {
        // On stderr, so a pipe of the table stays a table.
        eprintln!("more: --cursor '{cursor}'");
    }
    Ok(())
}

fn table(page: &JobPage, status: &str) -> String {
    if page.jobs.is_empty() {
        return format!("no {status} jobs\n");
    }
    let header = [
        "JOB", "QUEUE", "TYPE", "STATUS", "ATTEMPTS", "AT", "WORKER", "ERROR",
    ];
    let rows: Vec<Vec<String>> = page.jobs.iter().map(row).collect();
    super::table::render_with_states(&header, &rows, 3)
}

fn row(job: &JobRow) -> Vec<String> {
    let at = jiff::Timestamp::from_millisecond(job.at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let error = job.error.as_deref().unwrap_or_default();
    let first_line: String = error
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(ERROR_SHOWN)
        .collect();
    vec![
        job.full_id.clone(),
        job.queue.clone(),
        job.job_type.clone(),
        job.status.as_str().to_owned(),
        job.attempts.to_string(),
        at,
        job.worker.clone().unwrap_or_else(|| "-".to_owned()),
        first_line,
    ]
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pending, running, scheduled, failed (awaiting a retry), completed, dead or
    /// cancelled.
    #[arg(long, default_value = "pending", value_parser = parse_status)]
    pub status: Status,

    /// Only this queue's; every queue's, merged by time, when left out.
    #[arg(long)]
    pub queue: Option<String>,

    /// Only jobs of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: Option<String>,

    /// Only jobs enqueued (pending, running), due (scheduled, failed) or ended
    /// (completed, dead, cancelled) within this long, e.g. `1h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,

    /// Jobs per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,

    /// Go on from an earlier page: the cursor it printed.
    #[arg(long)]
    pub cursor: Option<String>,

    /// Print JSON (`jobs` and `next_cursor`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse::<Status>().map_err(|_| {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}
