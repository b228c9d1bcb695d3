//! `flotilla jobs show`, `jobs cancel` and `jobs delete`: find a job by id or unique
//! prefix, print its record, cancel it or delete it.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;
use flotilla_admin::Cancelled;
use flotilla_proto::{JobRecord, Keys};

use crate::cli::ShowArgs;
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
        print!("{}", render(&record));
    }
    Ok(())
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

fn time(ms: Option<u64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms as i64).ok())
        .map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// A record as text, one field a line.
pub fn render(r: &JobRecord) -> String {
    let status = r.status.map_or("unknown", |s| s.as_str());
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));
    line("id", r.full_id());
    line("type", r.job_type.clone());
    line("queue", r.queue.clone());
    line("status", status.to_owned());
    line("attempts", r.attempts_shown());
    line("created", time(r.created_at));
    line("run at", time(r.run_at));
    if r.next_run_at.is_some() {
        line("next run", time(r.next_run_at));
    }
    line("started", time(r.started_at));
    line("finished", time(r.finished_at));
    if let Some(worker) = &r.worker {
        line("worker", worker.clone());
    }
    line("payload", r.payload.to_string());
    if let Some(progress) = &r.progress {
        line("progress", progress.to_string());
    }
    if let Some(result) = &r.result {
        line("result", result.to_string());
    }
    if let Some(error) = &r.error {
        line("error", error.clone());
    }
    for (i, failed) in r.errors.iter().enumerate() {
        let name = if i == 0 { "errors" } else { "" };
        // A multi-line error stays under its own attempt.
        let error = failed.error.replace('\n', "\n                 ");
        line(
            name,
            format!("#{:<2} {}  {error}", failed.attempt, time(Some(failed.at))),
        );
    }
    let mut raw: Vec<_> = r.raw.iter().collect();
    raw.sort();
    for (name, value) in raw {
        line(&format!("raw {name}"), value.clone());
    }
    out
}
