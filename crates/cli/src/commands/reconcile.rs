//! `flotilla reconcile` and `flotilla alerts`: on-demand checks and the alert board.

use std::path::Path;

use flotilla_proto::Keys;
use flotilla_scheduler::Reconciler;

use crate::settings::Settings;

pub async fn run(config_file: Option<&Path>, repair: bool, json: bool) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let conn = super::connect_redis(&settings.redis_target()?).await?;
    let keys = Keys::new(settings.namespace.clone());
    let mut reconciler = Reconciler::new(conn, keys, settings.scheduler_config().reconcile);
    let report = reconciler.run(repair, true).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return still_open(&report, repair);
    }
    println!("examined {} job records", report.jobs_examined);
    if report.findings.is_empty() {
        println!("no findings: everything expected happened");
        return Ok(());
    }
    for f in &report.findings {
        let state = match (f.repaired, f.open) {
            (true, _) => "repaired",
            (false, true) => "OPEN",
            (false, false) => "past",
        };
        println!(
            "{:<9} {:<22} {:<40} {}",
            state,
            f.kind.as_str(),
            f.subject,
            f.detail
        );
    }
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(k, n)| format!("{} {n}", k.as_str()))
        .collect();
    println!("\n{}", counts.join(", "));
    still_open(&report, repair)
}

/// An error (so the exit status is not 0) while findings are still open, for scripts and
/// checks that run `flotilla reconcile`.
fn still_open(report: &flotilla_scheduler::Report, repair: bool) -> anyhow::Result<()> {
    match report.open() {
        0 => Ok(()),
        open if repair => anyhow::bail!("{open} finding(s) still open after repair"),
        open => {
            anyhow::bail!("{open} finding(s) open: `flotilla reconcile --repair` fixes what it can")
        }
    }
}

pub async fn alerts(config_file: Option<&Path>, recent: usize, json: bool) -> anyhow::Result<()> {
    let (active, history) = super::admin(config_file).await?.alerts(recent).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "active": active, "recent": history })
            )?
        );
        return Ok(());
    }
    if active.is_empty() {
        println!("no active alerts");
    } else {
        println!("ACTIVE");
        for a in &active {
            println!(
                "  {:<22} {:<30} since {}  {}",
                a.kind,
                a.subject,
                time(a.since),
                a.message
            );
        }
    }
    if !history.is_empty() {
        println!("\nRECENT");
        for e in &history {
            println!(
                "  {} {:<8} {:<22} {:<30} {}",
                time(e.at),
                e.event,
                e.kind,
                e.subject,
                e.message
            );
        }
    }
    Ok(())
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
