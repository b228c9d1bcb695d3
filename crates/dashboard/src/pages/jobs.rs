//! Job lists by status (with filters and paging) and one job's page with its actions.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use flotilla_proto::Status;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{PageError, action, enc, job_href, page as shell, state as word, when};
use super::{Flash, chrome};
use crate::AppState;
use crate::api::ListParams;

/// A list page's query: the API's filters, and a flash message.
#[derive(Debug, Default, Deserialize)]
pub struct ListPage {
    #[serde(flatten)]
    pub params: ListParams,
    pub flash: Option<String>,
}

/// `/jobs?…` for these filters (and cursor), without a flash message.
fn list_href(params: &ListParams) -> String {
    let pairs = [
        ("status", &params.status),
        ("queue", &params.queue),
        ("type", &params.job_type),
        ("limit", &params.limit),
        ("cursor", &params.cursor),
    ];
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{name}={}", enc(v)))
        })
        .collect();
    format!("/jobs?{}", query.join("&"))
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(page): Query<ListPage>,
) -> Result<Markup, PageError> {
    let query = page.params.query()?;
    let queues = state.admin().queues().await?;
    let jobs = state.admin().list_jobs(&query).await?;
    let here = list_href(&page.params);
    let chrome = chrome(
        &state,
        &headers,
        Flash { flash: page.flash },
        Some(here.clone()),
    );
    let status = query.status;
    let next = jobs.next_cursor.as_ref().map(|cursor| {
        list_href(&ListParams {
            cursor: Some(cursor.clone()),
            ..page.params.clone()
        })
    });
    let first = list_href(&ListParams {
        cursor: None,
        ..page.params.clone()
    });
    let body = html! {
        form.filters method="get" action="/jobs" {
            label { "Status"
                select name="status" {
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[s == status] { (s.as_str()) }
                    }
                }
            }
            label { "Queue"
                select name="queue" {
                    option value="" { "any" }
                    @for q in &queues {
                        option value=(q) selected[query.queue.as_deref() == Some(q.as_str())] { (q) }
                    }
                }
            }
            label { "Type" input type="text" name="type" value=(query.job_type.clone().unwrap_or_default()); }
            button type="submit" { "Show" }
        }
        @if status == Status::Dead && !jobs.jobs.is_empty() {
            @if let Some(viewer) = chrome.viewer.as_ref().filter(|_| !chrome.read_only) {
                form.inline method="post" action="/actions/dead/retry" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="back" value=(here);
                    input type="hidden" name="queue" value=(query.queue.clone().unwrap_or_default());
                    input type="hidden" name="type" value=(query.job_type.clone().unwrap_or_default());
                    button type="submit" { "Retry every dead job shown by these filters" }
                }
            }
        }
        @if jobs.jobs.is_empty() {
            p #empty { "No " (status.as_str()) " jobs." }
        } @else {
            table #jobs {
                thead { tr {
                    th { "Job" } th { "Queue" } th { "Type" } th { "Status" } th { "Attempts" }
                    th { (time_heading(status)) } th { "Worker" } th { "Error" } th { "" }
                } }
                tbody {
                    @for job in &jobs.jobs {
                        @let base = format!("/actions/jobs/{}/{}", enc(&job.queue), enc(&job.id));
                        tr data-job=(job.id) {
                            td { a href=(job_href(&job.queue, &job.id)) { code { (job.full_id) } } }
                            td { (job.queue) }
                            td { (job.job_type) }
                            td { (word(job.status.as_str())) }
                            td.n { (job.attempts) }
                            td { (when(Some(job.at_ms))) }
                            td { (job.worker.as_deref().unwrap_or("-")) }
                            td { (job.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("")) }
                            td {
                                @if job.status == Status::Dead {
                                    (action(&chrome, &format!("{base}/retry"), "Retry", &here, false))
                                }
                                @if !job.status.is_terminal() {
                                    (action(&chrome, &format!("{base}/cancel"), "Cancel", &here, true))
                                }
                            }
                        }
                    }
                }
            }
        }
        p {
            @if page.params.cursor.is_some() { a href=(first) { "First page" } " " }
            @if let Some(next) = next { a #next href=(next) { "Next page" } }
        }
    };
    Ok(shell(&format!("Jobs: {}", status.as_str()), &chrome, body))
}

fn time_heading(status: Status) -> &'static str {
    match status {
        Status::Waiting | Status::Pending | Status::Running => "Enqueued",
        Status::Scheduled | Status::Failed => "Due",
        Status::Completed | Status::Dead | Status::Cancelled | Status::Expired => "Ended",
    }
}

pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((queue, id)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let record = crate::actions::job(&state, &queue, &id).await?;
    let (deps, waited_on_by) = state.admin().job_edges(&queue, &id).await?;
    let here = job_href(&queue, &id);
    // A finished job's page does not change: only a live one refreshes.
    let live = !record.status.is_some_and(Status::is_terminal);
    let chrome = chrome(&state, &headers, flash, live.then(|| here.clone()));
    let status = record.status.map_or("unknown", |s| s.as_str());
    let base = format!("/actions/jobs/{}/{}", enc(&queue), enc(&id));
    let json = |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let body = html! {
        p {
            @if record.status == Some(Status::Dead) {
                (action(&chrome, &format!("{base}/retry"), "Retry", &here, false)) " "
            }
            @if !record.status.is_some_and(Status::is_terminal) {
                (action(&chrome, &format!("{base}/cancel"), "Cancel", &here, true)) " "
            }
            @if record.status != Some(Status::Running) {
                (action(&chrome, &format!("{base}/delete"), "Delete", &format!("/jobs?status={status}&queue={}", enc(&queue)), true))
            }
        }
        dl #record {
            dt { "Id" } dd { code { (record.full_id()) } }
            dt { "Type" } dd { (record.job_type) }
            dt { "Queue" } dd { a href=(format!("/queues/{}", enc(&record.queue))) { (record.queue) } }
            dt { "Status" } dd { (word(status)) }
            @if let Some(group) = &record.group { dt { "Group" } dd { (group) } }
            dt { "Attempts" } dd { (record.attempts_shown()) }
            @if record.snoozes > 0 { dt { "Snoozed" } dd { (record.snoozes) " times (not counted as attempts)" } }
            dt { "Created" } dd { (when(record.created_at.map(|t| t as i64))) }
            dt { "Run at" } dd { (when(record.run_at.map(|t| t as i64))) }
            @if record.next_run_at.is_some() { dt { "Next run" } dd { (when(record.next_run_at.map(|t| t as i64))) } }
            @if record.expires_at.is_some() { dt { "Expires" } dd { (when(record.expires_at.map(|t| t as i64))) } }
            dt { "Started" } dd { (when(record.started_at.map(|t| t as i64))) }
            dt { "Finished" } dd { (when(record.finished_at.map(|t| t as i64))) }
            dt { "Worker" } dd { (record.worker.as_deref().unwrap_or("-")) }
            dt { "Timeout" } dd { (record.timeout_ms.map_or("-".to_owned(), |t| format!("{t} ms"))) }
            dt { "Backoff" } dd { (record.backoff.as_deref().unwrap_or("-")) }
        }
        @if let Some(deps) = &deps {
            h2 { "Waits for" }
            p #waits {
                @if let Some(flow) = &deps.flow {
                    @if let Some((_, flow_id)) = flow.split_once(' ') {
                        "Part of flow " a href=(format!("/flows/{}", enc(flow_id))) { (flow_id) } ". "
                    }
                }
                (super::workflows::waits_for(&flotilla_admin::FlowJob {
                    queue: queue.clone(),
                    id: id.clone(),
                    status: None,
                    job_type: None,
                    waits_for: deps.edges_in.clone(),
                    parents_ended: deps.parents.clone(),
                    left: deps.left,
                    waited_on_by: Vec::new(),
                }))
            }
        }
        @if !waited_on_by.is_empty() {
            h2 { "Waited on by" }
            p #waited { (super::workflows::edges(&waited_on_by)) }
        }
        @if let Some(error) = &record.error { h2 { "Last error" } pre #error { (error) } }
        @if !record.errors.is_empty() {
            h2 { "Errors by attempt" }
            table #errors {
                thead { tr { th { "Attempt" } th { "When" } th { "Error" } } }
                tbody {
                    @for failed in &record.errors {
                        tr {
                            td { (failed.attempt) }
                            td { (when(Some(failed.at as i64))) }
                            td { pre { (failed.error) } }
                        }
                    }
                }
            }
        }
        h2 { "Payload" } pre #payload { (json(&record.payload)) }
        @if let Some(result) = &record.result { h2 { "Result" } pre #result { (json(result)) } }
        @if let Some(progress) = &record.progress { h2 { "Progress" } pre { (json(progress)) } }
        @if !record.raw.is_empty() {
            h2 { "Fields of the malformed entry" }
            dl { @for (name, value) in &record.raw { dt { (name) } dd { (value) } } }
        }
    };
    Ok(shell(&format!("Job {id}"), &chrome, body))
}
