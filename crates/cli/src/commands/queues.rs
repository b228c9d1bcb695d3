//! `flotilla queues stats | pause | resume | limit | limits | partition | drain | remove`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Subcommand;
use flotilla_admin::{Admin, LimitUse, QueueLimit, QueueStats, Rate};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub async fn run(config_file: Option<&Path>, command: QueuesCommand) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    match command {
        QueuesCommand::Stats { json } => {
            let stats = admin.queue_stats().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", table(&stats));
            }
        }
        QueuesCommand::Pause { queue } => {
            admin.pause(&queue).await?;
            println!(
                "paused {queue}: workers stop fetching from it within a second; resume with `flotilla queues resume {queue}`"
            );
        }
        QueuesCommand::Resume { queue } => {
            admin.resume(&queue).await?;
            println!("resumed {queue}");
        }
        QueuesCommand::Partition { queue, count } => {
            let now = admin.partition(&queue, count).await?;
            println!(
                "{queue} has {now} partitions: producers and workers take them up within ten seconds"
            );
            // Told as a help: the raise is done whether or not the slot map can be read.
            match admin.partition_spread(&queue).await {
                Ok(Some(spread)) if !spread.is_empty() => println!("{}", describe_spread(&spread)),
                Ok(_) => {}
                Err(e) => eprintln!("(cannot tell where the partitions live: {e})"),
            }
        }
        QueuesCommand::Limit {
            queue,
            rate,
            burst,
            concurrency,
            group_concurrency,
            group_rate,
            group_burst,
            per_group,
            clear,
        } => {
            let limit = if per_group {
                if rate.is_none() && concurrency.is_none() {
                    anyhow::bail!(
                        "--per-group makes --rate, --burst and --concurrency hold per group: give one of --rate and --concurrency"
                    );
                }
                QueueLimit {
                    group_concurrency: concurrency,
                    group_rate: rate,
                    group_burst: burst,
                    ..QueueLimit::default()
                }
            } else {
                QueueLimit {
                    rate,
                    burst,
                    concurrency,
                    group_concurrency,
                    group_rate,
                    group_burst,
                }
            };
            limit_command(&mut admin, &queue, limit, clear).await?;
        }
        QueuesCommand::Limits { json } => {
            let limits = admin.limits().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&limits)?);
            } else if limits.is_empty() {
                println!("no queue has a flow limit");
            } else {
                for limit in &limits {
                    println!("{}: {}", limit.queue, limit_text(limit));
                }
            }
        }
        QueuesCommand::Drain { queue, timeout } => drain(&mut admin, &queue, timeout).await?,
        QueuesCommand::Remove { queue, yes } => {
            if !yes {
                anyhow::bail!(
                    "removing {queue} deletes its dead and finished jobs too: run again with --yes"
                );
            }
            let removed = admin.remove_queue(&queue).await?;
            println!(
                "removed {queue} ({} partition(s)) and its finished and dead jobs",
                removed.partitions.len()
            );
        }
    }
    Ok(())
}

/// Sets, clears or shows one queue's flow limit.
async fn limit_command(
    admin: &mut Admin,
    queue: &str,
    limit: QueueLimit,
    clear: bool,
) -> anyhow::Result<()> {
    if clear {
        if admin.clear_limit(queue).await? {
            println!("{queue} has no flow limit now: workers take that up within a second");
        } else {
            println!("{queue} had no flow limit");
        }
        return Ok(());
    }
    if limit.is_empty() && limit.burst.is_none() {
        match admin.limit(queue).await? {
            Some(limit) => println!("{queue}: {}", limit_text(&limit)),
            None => println!("{queue} has no flow limit"),
        }
        return Ok(());
    }
    admin.set_limit(queue, &limit).await?;
    println!(
        "{queue} limited to {limit}, fleet-wide: workers keep to it within a second; remove it with `flotilla queues limit {queue} --clear`"
    );
    Ok(())
}

/// A limit and its use, in a few words: `100/s (burst 10), 2 of 5 running`.
fn limit_text(limit: &LimitUse) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = &limit.rate {
        parts.push(format!("{rate} (burst {})", limit.burst.unwrap_or(1)));
    }
    if let Some(cap) = limit.concurrency {
        parts.push(format!("{} of {cap} running", limit.slots_held));
    }
    if let Some(per_group) = limit.group_concurrency {
        parts.push(format!("{per_group} at once per group"));
    }
    if let Some(rate) = &limit.group_rate {
        parts.push(format!(
            "{rate} per group (burst {})",
            limit.group_burst.unwrap_or(1)
        ));
    }
    if limit.group_concurrency.is_some() || limit.group_rate.is_some() {
        parts.push(format!(
            "{} groups waiting their turn",
            limit.groups_waiting
        ));
    }
    let mut text = parts.join(", ");
    // The few groups with the longest lines, the ones an operator asks about.
    let busiest: Vec<String> = limit
        .busiest_groups
        .iter()
        .take(3)
        .map(|g| {
            format!(
                "{} ({} waiting, {} let through)",
                g.group, g.waiting, g.let_through
            )
        })
        .collect();
    if !busiest.is_empty() {
        text.push_str(&format!("; most waiting: {}", busiest.join(", ")));
    }
    text
}

/// Where a queue's partitions live on a cluster, and a hint when some primary has none.
fn describe_spread(spread: &BTreeMap<String, usize>) -> String {
    let used = spread.values().filter(|&&n| n > 0).count();
    let each: Vec<String> = spread
        .iter()
        .map(|(primary, n)| format!("{primary}: {n}"))
        .collect();
    let mut line = format!(
        "partitions per primary: {} ({used} of {} primaries)",
        each.join(", "),
        spread.len()
    );
    if used < spread.len() {
        // Where a partition lands follows CRC16 of its name, so more partitions cover more.
        line.push_str("; a higher count spreads over more of them");
    }
    line
}

/// Waits until nothing is waiting, scheduled or running on `queue`, showing what is left.
async fn drain(admin: &mut Admin, queue: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("draining {bar:40} {pos}/{len} done, {msg}") {
        bar.set_style(style);
    }
    let mut most = 0;
    loop {
        let state = admin.queue_stat(queue).await?.state;
        let left = (state.pending + state.running + state.scheduled + state.waiting).max(0) as u64;
        most = most.max(left);
        bar.set_length(most);
        bar.set_position(most - left);
        bar.set_message(format!("{left} left"));
        if left == 0 {
            bar.finish_and_clear();
            println!("{queue} is drained: nothing waiting, scheduled or running");
            return Ok(());
        }
        if Instant::now() >= deadline {
            bar.abandon();
            bail!(
                "{queue} still holds {left} jobs after {} ({} waiting, {} running, {} scheduled)",
                humantime::format_duration(timeout),
                state.pending,
                state.running,
                state.scheduled
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The stats as an aligned table.
fn table(stats: &[QueueStats]) -> String {
    if stats.is_empty() {
        return "no queues yet: none has had a job\n".to_owned();
    }
    let header = [
        "QUEUE",
        "PARTS",
        "PENDING",
        "RUNNING",
        "SCHEDULED",
        "RETRYING",
        "DEAD",
        "LAG",
        "OLDEST",
        "DONE 1H",
        "DONE 1D",
        "DEAD 1H",
        "DEAD 1D",
        "LIMIT",
        "STATE",
    ];
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|q| {
            vec![
                q.queue.clone(),
                q.partitions.to_string(),
                q.state.pending.to_string(),
                q.state.running.to_string(),
                q.state.scheduled.to_string(),
                format!(
                    "{}{}",
                    if q.retrying_estimated { "~" } else { "" },
                    q.retrying
                ),
                q.state.dead.to_string(),
                q.state.lag.to_string(),
                format!("{:.1}s", q.state.oldest_pending_age),
                q.completed_last_hour.to_string(),
                q.completed_last_day.to_string(),
                q.dead_last_hour.to_string(),
                q.dead_last_day.to_string(),
                q.limit.as_ref().map_or_else(|| "-".to_owned(), limit_text),
                if q.paused { "paused" } else { "active" }.to_owned(),
            ]
        })
        .collect();
    super::table::render_with_states(&header, &rows, header.len() - 1)
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Per queue: waiting, running, scheduled (delayed or awaiting retry), dead, group
    /// lag, oldest wait, paused, and completed and dead-lettered in the last hour and day.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop workers fetching from a queue within a second; what runs finishes, what
    /// waits stays on the stream.
    Pause { queue: String },
    /// Let workers fetch from a paused queue again.
    Resume { queue: String },
    /// Split a queue into partitions, `<queue>`, `<queue>#1`, …, each with its own hash
    /// tag, so one busy queue spreads over the primaries of a Redis Cluster. Producers
    /// and workers take the new count up within ten seconds. A count can only grow.
    Partition {
        queue: String,
        /// How many partitions: 1 to 1024.
        count: u16,
    },
    /// Remove a queue the fleet no longer uses (a name enqueued by mistake, say): its
    /// finished and dead jobs go with it. Refused while any job waits, runs or is
    /// scheduled on it, or a live worker serves it.
    Remove {
        queue: String,
        /// Confirm: its dead and finished jobs are deleted too.
        #[arg(long)]
        yes: bool,
    },
    /// Limit a queue fleet-wide: how many of its jobs start per interval (`--rate 100/s`,
    /// with `--burst`) and how many run at once (`--concurrency 5`). The options give the
    /// whole limit, replacing any; `--clear` removes it; none shows it. Stored in Redis:
    /// every worker keeps to it within a second, and it survives restarts.
    Limit {
        queue: String,
        /// Jobs started per interval: N/UNIT or N/<number><unit>, unit ms, s, m or h
        /// (100/s, 5/m, 20/10s).
        #[arg(long)]
        rate: Option<Rate>,
        /// Jobs the rate lets start at once after a quiet spell (default: a tenth of a
        /// second's worth, at least 1).
        #[arg(long, requires = "rate")]
        burst: Option<u32>,
        /// Jobs running at once across every worker.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Jobs of one group (a job's `--group`: a tenant, an account) let through to run
        /// at once; the group's others wait their turn, so groups take turns and a long
        /// backlog in one never holds back the others (1: one at a time per group).
        #[arg(long, value_name = "N")]
        group_concurrency: Option<u32>,
        /// Jobs of one group let through to run per interval, written as `--rate` (10/s):
        /// a group out of turns waits for its next one, the others go on.
        #[arg(long, value_name = "RATE")]
        group_rate: Option<Rate>,
        /// Jobs of one group the group rate lets through at once after a quiet spell
        /// (default: a tenth of a second's worth, at least 1).
        #[arg(long, value_name = "N", requires = "group_rate")]
        group_burst: Option<u32>,
        /// Make `--rate`, `--burst` and `--concurrency` hold per group:
        /// `--per-group --concurrency 1` is `--group-concurrency 1`, `--per-group --rate
        /// 10/s` is `--group-rate 10/s`.
        #[arg(long, conflicts_with_all = ["group_concurrency", "group_rate", "group_burst"])]
        per_group: bool,
        /// Remove the queue's limit.
        #[arg(long, conflicts_with_all = ["rate", "burst", "concurrency", "group_concurrency", "group_rate", "group_burst", "per_group"])]
        clear: bool,
    },
    /// Every queue's flow limit, with the slots of its cap held now.
    Limits {
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Wait, with a progress bar, until nothing is waiting, scheduled or running on a
    /// queue. Workers must keep serving it: a paused queue's waiting jobs are never
    /// fetched, so drain a queue that is not paused (stop its producers instead).
    Drain {
        queue: String,
        /// Give up after this long.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
        timeout: Duration,
    },
}
