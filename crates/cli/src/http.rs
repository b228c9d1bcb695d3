//! The small HTTP listener of a long-running process: `/healthz` (alive), `/readyz`
//! (able to serve) and `/metrics` (Prometheus), off unless `--http-listen` asks for it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A readiness check: `Ok` when the process can serve, else why not.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A readiness check from an async closure.
pub fn ready_check<F, Fut>(check: F) -> ReadyCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(check()))
}

/// What the listener serves.
#[derive(Clone)]
struct Endpoints {
    registry: Arc<Registry>,
    ready: ReadyCheck,
    /// The readiness check's answer at the last scrape, so alert rules can see it.
    ready_gauge: Gauge,
}

/// The content type of the OpenMetrics text `/metrics` answers with, which Prometheus
/// reads natively.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose metric names all start with `flotilla_`.
pub fn new_registry() -> Registry {
    Registry::with_prefix("flotilla")
}

/// Binds `addr` now, so a taken port fails the start with a clear error, and serves in
/// the background for the life of the process.
pub async fn serve(
    addr: SocketAddr,
    mut registry: Registry,
    ready: ReadyCheck,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--http-listen {addr}: cannot listen there"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let ready_gauge = Gauge::default();
    registry.register(
        "ready",
        "1 when the process can serve (Redis answers; a worker is not draining), checked at each scrape",
        ready_gauge.clone(),
    );
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoints {
            registry: Arc::new(registry),
            ready,
            ready_gauge,
        });
    tracing::info!(listen = %local, "serving /healthz, /readyz and /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the HTTP listener stopped: {e}");
        }
    });
    Ok(())
}

/// The process is up and its runtime answers.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    match (endpoints.ready)().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let ready = (endpoints.ready)().await.is_ok();
    endpoints.ready_gauge.set(i64::from(ready));
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &endpoints.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode the metrics: {e}\n"),
        ),
    }
}

/// The probe and metrics listener of a long-running process.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address, e.g. `0.0.0.0:9090`.
    /// Off when not given.
    #[arg(long, env = "FLOTILLA_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
}
