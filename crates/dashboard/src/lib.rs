//! Flotilla's web dashboard: server-rendered pages that work without JavaScript and
//! refresh themselves, and a JSON API under `/api/v1/` (described by the OpenAPI
//! document at `/api/v1/openapi.json`) for everything the pages show and do. Both call
//! the operations library; nothing here reads Redis keys of its own.

mod actions;
mod api;
mod auth;
mod error;
mod openapi;
mod overview;
mod pages;
mod state;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use state::AppState;

/// Builds the dashboard's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .nest("/api/v1", api::routes())
        .merge(pages::routes())
        .with_state(state)
}

/// Serves the dashboard on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
