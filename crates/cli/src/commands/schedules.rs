//! `flotilla schedules …`: the leader's status, and schedules listed, added, paused,
//! resumed, removed and triggered at run time.

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};
use flotilla_admin::{Admin, CatchUp, Schedule};

pub async fn run(config_file: Option<&Path>, command: SchedulesCommand) -> anyhow::Result<()> {
    let store = super::admin(config_file).await?;
    match command {
        SchedulesCommand::Status => {
            let status = store.leader().await?;
            match &status.holder {
                Some(holder) => println!(
                    "leader   {holder}\nepoch    {}\nlease    {} ms left",
                    status.epoch,
                    status.lease_remaining_ms.unwrap_or(0)
                ),
                // No schedule fires without a leader: a check must see that as a failure.
                None => anyhow::bail!(
                    "no leader (epoch {}): no schedule fires until a `flotilla scheduler` runs",
                    status.epoch
                ),
            }
        }
        SchedulesCommand::List { json } => list(&store, json).await?,
        SchedulesCommand::Add(args) => {
            let mut schedule = from_args(*args)?;
            // Replacing a schedule keeps its paused state; resume is explicit.
            if let Ok(existing) = store.schedule(&schedule.name).await {
                schedule.paused = existing.paused;
            }
            if let Some(at) = &schedule.at {
                let instant: jiff::Timestamp =
                    at.parse().with_context(|| format!("--at {at:?}"))?;
                anyhow::ensure!(
                    instant > jiff::Timestamp::now(),
                    "--at {at}: that instant has passed"
                );
            }
            store.put_schedule(&schedule).await?;
            println!("schedule {} saved", schedule.name);
        }
        SchedulesCommand::Pause { name } => {
            store.pause_schedule(&name, true).await?;
            println!("schedule {name} paused");
        }
        SchedulesCommand::Resume { name } => {
            store.pause_schedule(&name, false).await?;
            println!("schedule {name} resumed");
        }
        SchedulesCommand::Remove { name } => {
            store.remove_schedule(&name).await?;
            println!("schedule {name} removed");
        }
        SchedulesCommand::Trigger { name } => {
            let id = store
                .trigger_schedule(&name, jiff::Timestamp::now().as_millisecond())
                .await?;
            println!("{id}");
        }
    }
    Ok(())
}

fn from_args(args: ScheduleArgs) -> anyhow::Result<Schedule> {
    let mut schedule = Schedule::new(&args.name, &args.job_type);
    schedule.cron = args.cron;
    schedule.every = args.every;
    schedule.at = args.at;
    schedule.tz = args.tz;
    schedule.queue = args.queue;
    if let Some(payload) = &args.payload {
        schedule.payload = serde_json::from_str(payload)
            .with_context(|| format!("--payload: {payload:?} is not JSON"))?;
    }
    schedule.max_attempts = args.max_attempts;
    schedule.timeout = args.timeout;
    schedule.catch_up = match args.catch_up.as_str() {
        "skip" => CatchUp::Skip,
        "all" => CatchUp::All,
        _ => CatchUp::Latest,
    };
    schedule.catch_up_limit = args.catch_up_limit;
    schedule.validate()?;
    Ok(schedule)
}

async fn list(store: &Admin, json: bool) -> anyhow::Result<()> {
    let schedules = store.schedules().await?;
    let mut rows = Vec::new();
    for schedule in schedules {
        let state = store.schedule_state(&schedule.name).await?;
        rows.push((schedule, state));
    }
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, st)| {
                serde_json::json!({
                    "schedule": s,
                    "last_tick": st.last_fired_tick(),
                    "next_tick": s.upcoming(st),
                    "last_job": st.last_job,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no schedules");
        return Ok(());
    }
    println!(
        "{:<20} {:<24} {:<16} {:<10} {:<8} {:<25} {:<25}",
        "NAME", "TIMING", "TYPE", "QUEUE", "STATE", "LAST TICK", "NEXT TICK"
    );
    for (s, st) in rows {
        let timing = match (&s.cron, &s.every, &s.at) {
            (Some(c), _, _) => format!(
                "cron {c}{}",
                s.tz.as_ref().map(|t| format!(" {t}")).unwrap_or_default()
            ),
            (_, Some(e), _) => format!("every {e}"),
            (_, _, Some(a)) => format!("at {a}"),
            _ => "?".to_owned(),
        };
        println!(
            "{:<20} {:<24} {:<16} {:<10} {:<8} {:<25} {:<25}",
            s.name,
            timing,
            s.job_type,
            s.queue,
            if s.paused { "paused" } else { "active" },
            time(st.last_fired_tick()),
            time(s.upcoming(&st))
        );
    }
    Ok(())
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| {
                t.round(jiff::Unit::Second)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            },
        )
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Which scheduler leads, its fencing epoch and the lease left.
    Status,
    /// Every schedule with its last and next tick.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule, or replace the one with this name.
    Add(Box<ScheduleArgs>),
    /// Stop firing a schedule (ticks while paused are not caught up).
    Pause { name: String },
    /// Fire a paused schedule again.
    Resume { name: String },
    /// Delete a schedule.
    Remove { name: String },
    /// Enqueue the schedule's job once, now, outside its timing.
    Trigger { name: String },
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Schedule name: letters, digits, '-', '_' or '.'.
    pub name: String,

    /// Cron expression (5 or 6 fields, seconds first; L, W, # and @hourly-style aliases).
    #[arg(long, group = "timing")]
    pub cron: Option<String>,

    /// Interval, e.g. `30m`; ticks fall on multiples of it since the Unix epoch.
    #[arg(long, group = "timing")]
    pub every: Option<String>,

    /// One RFC 3339 instant.
    #[arg(long, group = "timing")]
    pub at: Option<String>,

    /// IANA time zone for cron, e.g. `America/New_York` (default UTC).
    #[arg(long)]
    pub tz: Option<String>,

    /// Job type to enqueue on each tick.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: String,

    /// Queue to enqueue on.
    #[arg(long, default_value = "default")]
    pub queue: String,

    /// Job arguments as JSON.
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,

    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Attempt timeout, e.g. `10m`.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Ticks missed while no scheduler led: skip, latest or all.
    #[arg(long, default_value = "latest", value_parser = ["skip", "latest", "all"])]
    pub catch_up: String,

    /// With `--catch-up all`: at most this many missed ticks are fired.
    #[arg(long, default_value_t = 100)]
    pub catch_up_limit: u32,
}
