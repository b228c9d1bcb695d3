//! What the pages' forms post: signing in and out, and each change, answered with a
//! redirect back to the page the form was on, carrying a message.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Chrome, PageError, page as shell};
use super::{Flash, chrome};
use crate::AppState;
use crate::actions;
use crate::api::DeadParams;
use crate::auth::SESSION_COOKIE;
use crate::error::ApiError;

/// What every change's form carries.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// The page to return to.
    back: Option<String>,
    queue: Option<String>,
    #[serde(rename = "type")]
    job_type: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Markup {
    let chrome = chrome(&state, &headers, flash, None);
    login(&chrome, None)
}

fn login(chrome: &Chrome, problem: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(problem) = problem { div.banner.err { (problem) } }
        @if chrome.read_only {
            p { "There is nothing to sign in to: this dashboard only shows." }
        } @else {
            form method="post" action="/login" {
                p { label { "Your name, for the log of changes " br; input type="text" name="name" required; } }
                p { label { "Dashboard token " br; input type="password" name="token" required autocomplete="current-password"; } }
                button type="submit" { "Sign in" }
            }
        }
    };
    shell("Sign in", chrome, body)
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    match state.auth.sign_in(&form.name, &form.token, addr) {
        Ok(session) => {
            let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict");
            (
                StatusCode::SEE_OTHER,
                [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())],
            )
                .into_response()
        }
        Err(e) => {
            let chrome = chrome(&state, &headers, Flash::default(), None);
            (e.status(), login(&chrome, Some(&e.to_string()))).into_response()
        }
    }
}

pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.auth.sign_out(&headers);
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())],
    )
        .into_response()
}

/// Back to the form's page with `message`; only a path on this dashboard is followed.
fn back_with(state: &AppState, back: Option<&str>, message: &str) -> Response {
    let back = back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/");
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("flash="))
        .collect();
    let flash = format!("flash={}", state.flashes.put(message));
    pairs.push(&flash);
    let location = format!("{path}?{}", pairs.join("&"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

pub async fn queue_action(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((queue, verb)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let actor = state.auth.form_actor(&headers, addr, &form.csrf)?;
    let paused = match verb.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(unknown(&verb)),
    };
    let change = actions::set_queue_paused(&state, &actor, &queue, paused).await?;
    let said = if change.paused { "paused" } else { "resumed" };
    Ok(back_with(
        &state,
        form.back.as_deref(),
        &format!("Queue {queue} {said}."),
    ))
}

pub async fn job_action(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((queue, id, verb)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let actor = state.auth.form_actor(&headers, addr, &form.csrf)?;
    let change = match verb.as_str() {
        "retry" => actions::retry_job(&state, &actor, &queue, &id).await?,
        "cancel" => actions::cancel_job(&state, &actor, &queue, &id).await?,
        "delete" => actions::delete_job(&state, &actor, &queue, &id).await?,
        _ => return Err(unknown(&verb)),
    };
    Ok(back_with(
        &state,
        form.back.as_deref(),
        &format!("Job {id} {}.", change.outcome),
    ))
}

pub async fn retry_dead(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let actor = state.auth.form_actor(&headers, addr, &form.csrf)?;
    let params = DeadParams {
        queue: form.queue.clone(),
        job_type: form.job_type.clone(),
    };
    let count = actions::retry_dead(&state, &actor, params.filter()).await?;
    let message = format!(
        "Retried {} dead jobs ({} skipped).",
        count.retried, count.skipped
    );
    Ok(back_with(&state, form.back.as_deref(), &message))
}

pub async fn schedule_action(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((name, verb)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let actor = state.auth.form_actor(&headers, addr, &form.csrf)?;
    let message = match verb.as_str() {
        "pause" => {
            actions::set_schedule_paused(&state, &actor, &name, true).await?;
            format!("Schedule {name} paused.")
        }
        "resume" => {
            actions::set_schedule_paused(&state, &actor, &name, false).await?;
            format!("Schedule {name} resumed.")
        }
        "trigger" => {
            let change = actions::trigger_schedule(&state, &actor, &name).await?;
            format!(
                "Schedule {name} enqueued {}.",
                change.job.unwrap_or_default()
            )
        }
        _ => return Err(unknown(&verb)),
    };
    Ok(back_with(&state, form.back.as_deref(), &message))
}

fn unknown(verb: &str) -> PageError {
    PageError(ApiError::NotFound(format!("no action {verb:?}")))
}
