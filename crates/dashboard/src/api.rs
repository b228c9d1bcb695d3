//! The JSON API under `/api/v1/`: everything the pages show, and every change they
//! make, for scripts and other tools. Reads are open; changes need the bearer token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flotilla_admin::Schedule;
use flotilla_admin::{DeadFilter, JobQuery, QueueStats, RetryCount, WorkerRow};
use flotilla_proto::{JobRecord, Status};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::actions::{self, JobChange, QueueChange, ScheduleChange};
use crate::error::ApiError;
use crate::overview::{self, Overview, RECENT_ALERTS};

/// The most jobs one page lists.
pub const MAX_LIMIT: usize = 1000;
/// Jobs a page lists unless asked otherwise.
pub const DEFAULT_LIMIT: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(crate::openapi::document))
        .route("/overview", get(get_overview))
        .route("/queues", get(queues))
        .route("/queues/{queue}", get(queue))
        .route("/queues/{queue}/{verb}", post(change_queue))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job_by_id))
        .route("/jobs/{queue}/{id}", get(job).delete(delete_job))
        .route("/jobs/{queue}/{id}/{verb}", post(change_job))
        .route("/dead/retry", post(retry_dead))
        .route("/workers", get(workers))
        .route("/schedules", get(schedules))
        .route("/schedules/{name}/{verb}", post(change_schedule))
        .route("/alerts", get(alerts))
        .route("/flows/{id}", get(flow))
        .route("/batches/{id}", get(batch))
}

async fn flow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<flotilla_admin::FlowView>, ApiError> {
    Ok(Json(state.admin().flow(&id).await?))
}

/// Where a batch lives, when the caller knows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchParams {
    pub queue: Option<String>,
}

async fn batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<BatchParams>,
) -> Result<Json<flotilla_admin::BatchState>, ApiError> {
    let queue = params.queue.filter(|q| !q.is_empty());
    Ok(Json(state.admin().batch(&id, queue.as_deref()).await?))
}

/// A path's parameters; one that cannot be read is a JSON 400 like every other error.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A query string; one that cannot be read is a JSON 400 like every other error.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `200 {"status": "ok"}` while Redis answers, `503` otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.admin().ping().await {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn get_overview(State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    Ok(Json(overview::overview(&state).await?))
}

async fn queues(State(state): State<AppState>) -> Result<Json<Vec<QueueStats>>, ApiError> {
    Ok(Json(state.admin().queue_stats().await?))
}

async fn queue(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<QueueStats>, ApiError> {
    Ok(Json(state.admin().queue_stat(&queue).await?))
}

/// The filters of a job list, as the API's query and the pages' filter form give them.
/// Empty values mean "any", as an empty form field does.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ListParams {
    pub status: Option<String>,
    pub queue: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Only jobs at or after this time, ms since the Unix epoch.
    pub since_ms: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl ListParams {
    /// The API's reading: a number or a status given empty is an error (a form's empty
    /// field means "any", which the pages read with [`ListParams::query`] alone).
    pub fn strict_query(&self) -> Result<JobQuery, ApiError> {
        for (name, value) in [
            ("status", &self.status),
            ("since_ms", &self.since_ms),
            ("limit", &self.limit),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ApiError::BadRequest(format!(
                    "{name} is empty: leave it out, or give a value"
                )));
            }
        }
        self.query()
    }

    pub fn query(&self) -> Result<JobQuery, ApiError> {
        let status = match given(&self.status) {
            None => Status::Pending,
            Some(text) => text.parse::<Status>().map_err(|_| {
                let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!(
                    "status {text:?}: expected one of {}",
                    all.join(", ")
                ))
            })?,
        };
        let since_ms = given(&self.since_ms)
            .map(|t| {
                t.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "since_ms {t:?}: expected ms since the Unix epoch"
                    ))
                })
            })
            .transpose()?;
        let limit = match given(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("limit {t:?}: expected 1 to {MAX_LIMIT}"))
                })?,
        };
        Ok(JobQuery {
            status,
            queue: given(&self.queue),
            job_type: given(&self.job_type),
            since_ms,
            limit,
            cursor: given(&self.cursor),
        })
    }
}

async fn jobs(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<flotilla_admin::JobPage>, ApiError> {
    let query = params.strict_query()?;
    Ok(Json(state.admin().list_jobs(&query).await?))
}

/// A job as the API shows it: its record, and the id that names it anywhere.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub full_id: String,
    #[serde(flatten)]
    pub record: JobRecord,
}

impl From<JobRecord> for JobView {
    fn from(record: JobRecord) -> Self {
        Self {
            full_id: record.full_id(),
            record,
        }
    }
}

async fn job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(actions::job(&state, &queue, &id).await?.into()))
}

async fn job_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(actions::job_by_id(&state, &id).await?.into()))
}

async fn delete_job(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((queue, id)): Path<(String, String)>,
) -> Result<Json<JobChange>, ApiError> {
    let actor = state.auth.api_actor(&headers, addr)?;
    Ok(Json(
        actions::delete_job(&state, &actor, &queue, &id).await?,
    ))
}

/// Which dead jobs `POST /dead/retry` retries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeadParams {
    pub queue: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
}

impl DeadParams {
    pub fn filter(&self) -> DeadFilter {
        DeadFilter {
            queue: given(&self.queue),
            job_type: given(&self.job_type),
            since_ms: None,
        }
    }
}

async fn retry_dead(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<DeadParams>,
) -> Result<Json<RetryCount>, ApiError> {
    let actor = state.auth.api_actor(&headers, addr)?;
    Ok(Json(
        actions::retry_dead(&state, &actor, params.filter()).await?,
    ))
}

/// No such change: as for any route that does not exist.
fn unknown_change(verb: &str) -> ApiError {
    ApiError::NotFound(format!("no change {verb:?} here"))
}

/// `POST /queues/{queue}/pause` and `/resume`.
async fn change_queue(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((queue, verb)): Path<(String, String)>,
) -> Result<Json<QueueChange>, ApiError> {
    let paused = match verb.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(unknown_change(&verb)),
    };
    let actor = state.auth.api_actor(&headers, addr)?;
    Ok(Json(
        actions::set_queue_paused(&state, &actor, &queue, paused).await?,
    ))
}

/// `POST /jobs/{queue}/{id}/retry` and `/cancel`.
async fn change_job(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((queue, id, verb)): Path<(String, String, String)>,
) -> Result<Json<JobChange>, ApiError> {
    if !matches!(verb.as_str(), "retry" | "cancel") {
        return Err(unknown_change(&verb));
    }
    let actor = state.auth.api_actor(&headers, addr)?;
    let change = if verb == "retry" {
        actions::retry_job(&state, &actor, &queue, &id).await?
    } else {
        actions::cancel_job(&state, &actor, &queue, &id).await?
    };
    Ok(Json(change))
}

/// `POST /schedules/{name}/pause`, `/resume` and `/trigger`.
async fn change_schedule(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((name, verb)): Path<(String, String)>,
) -> Result<Json<ScheduleChange>, ApiError> {
    if !matches!(verb.as_str(), "pause" | "resume" | "trigger") {
        return Err(unknown_change(&verb));
    }
    let actor = state.auth.api_actor(&headers, addr)?;
    let change = match verb.as_str() {
        "trigger" => actions::trigger_schedule(&state, &actor, &name).await?,
        _ => actions::set_schedule_paused(&state, &actor, &name, verb == "pause").await?,
    };
    Ok(Json(change))
}

async fn workers(State(state): State<AppState>) -> Result<Json<Vec<WorkerRow>>, ApiError> {
    Ok(Json(state.admin().workers().await?))
}

/// A schedule with what the scheduler has done for it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The tick of the last job it fired.
    pub last_tick_ms: Option<i64>,
    /// The next tick it will fire, from its definition; none while paused.
    pub next_tick_ms: Option<i64>,
    pub last_job: Option<String>,
    pub last_fired_at_ms: Option<i64>,
}

pub async fn schedule_views(state: &AppState) -> Result<Vec<ScheduleView>, ApiError> {
    let mut views = Vec::new();
    let admin = state.admin();
    for schedule in admin.schedules().await? {
        let done = admin.schedule_state(&schedule.name).await?;
        views.push(ScheduleView {
            last_tick_ms: done.last_fired_tick(),
            next_tick_ms: schedule.upcoming(&done),
            schedule,
            last_job: done.last_job,
            last_fired_at_ms: done.last_fired_at,
        });
    }
    Ok(views)
}

async fn schedules(State(state): State<AppState>) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    Ok(Json(schedule_views(&state).await?))
}

async fn alerts(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (active, recent) = overview::alerts(&state, RECENT_ALERTS).await?;
    Ok(Json(
        serde_json::json!({ "active": active, "recent": recent }),
    ))
}
