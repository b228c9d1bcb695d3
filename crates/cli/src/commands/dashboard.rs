//! `flotilla dashboard`: the web dashboard and its JSON API, until SIGTERM or Ctrl-C.

use std::path::Path;

use anyhow::Context;
use flotilla_dashboard::{AppState, DashboardConfig, Reads, ServeLimits};
use flotilla_proto::{Keys, Shutdown};

use crate::cli::{AuthScope, DashboardArgs};
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
