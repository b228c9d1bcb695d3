//! `flotilla workers list`.

use std::path::Path;

use clap::Subcommand;
use flotilla_admin::{WorkerRow, WorkerState};

pub async fn run(config_file: Option<&Path>, command: WorkersCommand) -> anyhow::Result<()> {
    let mut admin = super::admin(config_file).await?;
    let WorkersCommand::List { json } = command;
    let workers = admin.workers().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&workers)?);
    } else {
        print!("{}", table(&workers));
    }
    Ok(())
}

fn table(workers: &[WorkerRow]) -> String {
    if workers.is_empty() {
        return "no workers registered\n".to_owned();
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let header = [
        "WORKER",
        "HOST",
        "PID",
        "VERSION",
        "QUEUES",
        "IN FLIGHT",
        "LAST BEAT",
        "STATE",
    ];
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let opt = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
            vec![
                w.id.clone(),
                w.host.clone(),
                opt(w.pid),
                w.version.clone(),
                w.queues.join(","),
                format!("{}/{}", opt(w.in_flight), opt(w.concurrency)),
                format!(
                    "{:.1}s ago",
                    (now - w.last_heartbeat_ms).max(0) as f64 / 1000.0
                ),
                match w.state {
                    WorkerState::Alive => "alive",
                    WorkerState::Silent => "silent",
                }
                .to_owned(),
            ]
        })
        .collect();
    super::table::render_with_states(&header, &rows, header.len() - 1)
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Every registered worker: id, host, pid, version, queues, jobs in flight, last
    /// heartbeat and whether it is alive.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}
