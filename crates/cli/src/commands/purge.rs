//! `flotilla jobs purge --completed|--dead --older-than D`: delete old finished jobs,
//! reporting counts; `--dry-run` only counts.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use flotilla_proto::Status;

pub async fn run(config_file: Option<&Path>, args: PurgeArgs) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    let status = if args.dead {
        Status::Dead
    } else {
        Status::Completed
    };
    let before_ms = super::ms_ago(args.older_than);
    let age = humantime::format_duration(args.older_than);
    let queue = args.queue.as_deref();
    let found = admin.purge(status, before_ms, queue, true).await?;
    let what = format!(
        "{} {} job records and {} stream entries older than {age}",
        found.records,
        status.as_str(),
        found.entries
    );
    if args.dry_run {
        println!("would delete {what}");
        return Ok(());
    }
    if found.records == 0 && found.entries == 0 {
        println!("nothing {} is older than {age}", status.as_str());
        return Ok(());
    }
    if !args.yes && std::io::stdin().is_terminal() && !super::confirm(&format!("delete {what}?"))? {
        println!("nothing deleted");
        return Ok(());
    }
    let deleted = admin.purge(status, before_ms, queue, false).await?;
    println!(
        "deleted {} {} job records and {} stream entries older than {age}",
        deleted.records,
        status.as_str(),
        deleted.entries
    );
    Ok(())
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["completed", "dead"]))]
pub struct PurgeArgs {
    /// Purge completed jobs.
    #[arg(long)]
    pub completed: bool,

    /// Purge dead jobs.
    #[arg(long)]
    pub dead: bool,

    /// Only jobs that ended longer ago than this, e.g. `30d` or `12h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub older_than: Duration,

    /// Only this queue's.
    #[arg(long)]
    pub queue: Option<String>,

    /// Count what would go, delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask first (asked only on a terminal).
    #[arg(long)]
    pub yes: bool,
}
