//! `flotilla dashboard`: the web dashboard and its JSON API, until SIGTERM or Ctrl-C.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flotilla_dashboard::{AppState, DashboardConfig, Reads, ServeLimits};
use flotilla_proto::{Keys, Shutdown};

use crate::settings::Settings;

/// The variable holding the token that allows changes.
pub const TOKEN_VAR: &str = "FLOTILLA_DASHBOARD_TOKEN";

pub async fn run(config_file: Option<&Path>, args: DashboardArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config_file)?;
    let conn = super::connect_redis(&settings.redis_target()?).await?;
    let keys = Keys::new(settings.namespace.clone());
    let admin = flotilla_admin::Admin::new(conn, keys).with_policy(settings.job_policy());
    let token = std::env::var(TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty());
    let read_only = token.is_none();
    // Beyond loopback, anyone on the network could read every payload and result.
    let scope = args.auth.unwrap_or(if args.listen.ip().is_loopback() {
        AuthScope::Changes
    } else {
        AuthScope::Read
    });
    let reads = match scope {
        AuthScope::Changes => Reads::Open,
        AuthScope::Read => Reads::NeedToken,
    };
    let config = DashboardConfig {
        token,
        reads,
        allowed_hosts: args.allowed_hosts.clone(),
        limits: ServeLimits {
            max_connections: args.max_connections,
            header_read_timeout: args.header_read_timeout,
            ..ServeLimits::default()
        },
    };
    let state = AppState::new(admin, config)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "the dashboard listens beyond loopback: serve it behind TLS");
        if reads == Reads::Open {
            tracing::warn!(%address, "--auth changes beyond loopback: anyone who reaches it reads every job's payload and result");
        }
    }
    println!("dashboard on http://{address}/");
    if read_only {
        println!("read-only: set {TOKEN_VAR} to allow changes");
    }
    if reads == Reads::NeedToken {
        println!("reads need the token: sign in at http://{address}/login");
    }
    tracing::info!(%address, read_only, reads_need_token = reads == Reads::NeedToken, "dashboard serving");
    let shutdown = Shutdown::on_signals();
    flotilla_dashboard::serve(listener, state, async move { shutdown.triggered().await }).await?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address to serve on. Loopback unless told otherwise: put a reverse proxy with TLS
    /// in front before exposing it.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// What needs the token: `changes` (anyone who reaches the dashboard reads jobs,
    /// payloads and results) or `read` (every page and API call). The default is
    /// `changes` on a loopback address and `read` on any other.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub auth: Option<AuthScope>,
    /// A host name the dashboard is reached by (the name a reverse proxy or DNS gives
    /// it), besides `localhost` and IP addresses; repeat for several. Requests naming
    /// any other host are refused.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// How long a request's headers may take to arrive; an idle kept-alive connection is
    /// closed after as long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub header_read_timeout: Duration,
}

/// What the dashboard's token guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScope {
    /// Changes only; reads are open.
    Changes,
    /// Reads and changes.
    Read,
}
