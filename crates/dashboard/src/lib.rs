//! Flotilla's web dashboard: server-rendered pages that work without JavaScript and
//! refresh themselves, and a JSON API under `/api/v1/` (described by the OpenAPI
//! document at `/api/v1/openapi.json`) for everything the pages show and do. Both call
//! the operations library; nothing here reads Redis keys of its own.

#![warn(missing_docs)]

mod actions;
mod api;
mod auth;
mod error;
mod flash;
mod guard;
mod openapi;
mod overview;
mod pages;
mod serve;
mod state;

use axum::Router;
use axum::routing::get;

pub use auth::Reads;
pub use serve::serve;
pub use state::{AppState, ConfigError, DashboardConfig, ServeLimits};

/// Builds the dashboard's routes over `state`, behind its guard (see `guard.rs`). Each
/// request needs a `ConnectInfo<SocketAddr>` extension, which [`serve`] adds.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .nest("/api/v1", api::routes())
        .merge(pages::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
