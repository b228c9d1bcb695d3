//! The server-rendered pages: usable without JavaScript, live ones refreshing every few
//! seconds, changes made through small forms that carry the session's CSRF token.

mod fleet;
mod forms;
mod jobs;
mod layout;
mod overview;
mod queue;
mod workflows;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::AppState;
use layout::Chrome;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/queues/{queue}", get(queue::page))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{queue}/{id}", get(jobs::detail))
        .route("/schedules", get(fleet::schedules))
        .route("/workers", get(fleet::workers))
        .route("/alerts", get(fleet::alerts))
        .route("/flows/{id}", get(workflows::flow))
        .route("/batches/{id}", get(workflows::batch))
        .route("/login", get(forms::login_page).post(forms::sign_in))
        .route("/logout", post(forms::sign_out))
        .route("/actions/queues/{queue}/{verb}", post(forms::queue_action))
        .route("/actions/jobs/{queue}/{id}/{verb}", post(forms::job_action))
        .route("/actions/dead/retry", post(forms::retry_dead))
        .route(
            "/actions/schedules/{name}/{verb}",
            post(forms::schedule_action),
        )
}

/// The message a change left for the page it returned to, by the id it is kept under
/// (never its text: see `flash.rs`).
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    pub flash: Option<String>,
}

/// The shell's state for this request; `live` pages refresh to `here`.
fn chrome(state: &AppState, headers: &HeaderMap, flash: Flash, here: Option<String>) -> Chrome {
    Chrome {
        viewer: state.auth.viewer(headers),
        read_only: state.auth.read_only(),
        flash: flash.flash.and_then(|id| state.flashes.get(&id)),
        refresh: here,
    }
}
