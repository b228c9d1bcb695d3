//! `flotilla jobs show` and `jobs cancel`: find a job by id or unique prefix, print its
//! record or cancel it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use flotilla_producer::{Cancelled, Producer};
use flotilla_proto::{JobDefaults, JobRecord, Keys};
use redis::aio::ConnectionManager;

use crate::cli::ShowArgs;
use crate::settings::Settings;

/// Matches listed when a prefix is ambiguous.
const AMBIGUOUS_SHOWN: usize = 10;

pub async fn show(config_file: Option<&Path>, args: ShowArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let mut conn = super::connect_redis(&settings.redis_url).await?;
    let keys = Keys::new(settings.namespace.clone());
    let record = find(&mut conn, &keys, &args.id, &settings.defaults).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record));
    }
    Ok(())
}

pub async fn cancel(config_file: Option<&Path>, id: &str) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let mut conn = super::connect_redis(&settings.redis_url).await?;
    let keys = Keys::new(settings.namespace.clone());
    let record = find(&mut conn, &keys, id, &settings.defaults).await?;
    let producer = Producer::new(conn, keys, settings.job_policy());
    match producer.cancel(&record.queue, &record.id).await? {
        Cancelled::Cancelled { was } => {
            let was = was.map_or("?", |s| s.as_str());
            println!("cancelled {} (it was {was})", record.id);
            if was == "running" {
                println!("its worker stops the handler at its next heartbeat");
            }
        }
        Cancelled::AlreadyFinished { status } => println!(
            "{} had already finished ({}); nothing changed",
            record.id,
            status.map_or("?", |s| s.as_str())
        ),
        Cancelled::NotFound => bail!("job {} is gone (its record expired)", record.id),
    }
    Ok(())
}

/// The record of the job with this id, or of the only job whose id starts with it.
pub async fn find(
    conn: &mut ConnectionManager,
    keys: &Keys,
    id: &str,
    defaults: &JobDefaults,
) -> anyhow::Result<JobRecord> {
    if id.trim().is_empty() {
        bail!("give a job id, or the first characters of one (an empty prefix matches every job)");
    }
    let queues: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.queues())
        .query_async(conn)
        .await?;
    for queue in &queues {
        // The record, or for a fast-path job (its id is an entry id) its entry or its
        // completion.
        if let Some(record) = flotilla_proto::describe_job(conn, keys, queue, id, defaults).await? {
            return Ok(record);
        }
    }
    let mut matches = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys.job_scan_pattern(id))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        matches.extend(batch);
        cursor = next;
        if cursor == 0 || matches.len() > AMBIGUOUS_SHOWN {
            break;
        }
    }
    // Fast-path jobs have no record: their ids are entry ids, found on their streams and
    // among recent completions.
    let mut fast = Vec::new();
    for queue in &queues {
        for job in
            flotilla_proto::fast_ids_with_prefix(conn, keys, queue, id, AMBIGUOUS_SHOWN + 1).await?
        {
            if !matches.iter().any(|k| k.ends_with(&format!(":job:{job}"))) {
                fast.push((queue.clone(), job));
            }
        }
    }
    match (matches.as_slice(), fast.as_slice()) {
        ([], []) => bail!("no job with id or id prefix {id:?}"),
        ([key], []) => read(conn, key)
            .await?
            .with_context(|| format!("job {id} vanished while being read")),
        ([], [(queue, job)]) => flotilla_proto::describe_job(conn, keys, queue, job, defaults)
            .await?
            .with_context(|| format!("job {job} vanished while being read")),
        (many, more) => {
            let ids: Vec<&str> = many
                .iter()
                .map(|k| k.rsplit_once(":job:").map_or(k.as_str(), |(_, id)| id))
                .chain(more.iter().map(|(_, job)| job.as_str()))
                .take(AMBIGUOUS_SHOWN)
                .collect();
            bail!(
                "{id:?} matches several jobs; give more of the id:\n  {}",
                ids.join("\n  ")
            )
        }
    }
}

async fn read(conn: &mut ConnectionManager, key: &str) -> anyhow::Result<Option<JobRecord>> {
    let hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL").arg(key).query_async(conn).await?;
    Ok(JobRecord::from_hash(&hash)?)
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
    line("id", r.id.clone());
    line("type", r.job_type.clone());
    line("queue", r.queue.clone());
    line("status", status.to_owned());
    line("attempts", format!("{} of {}", r.attempts, r.max_attempts));
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
    let mut raw: Vec<_> = r.raw.iter().collect();
    raw.sort();
    for (name, value) in raw {
        line(&format!("raw {name}"), value.clone());
    }
    out
}
