//! The fleet's pages: schedules (with pause, resume and trigger), workers and alerts.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use maud::{Markup, html};

use super::layout::{PageError, action, ago, enc, job_href, page as shell, state as word, when};
use super::{Flash, chrome};
use crate::AppState;
use crate::api::schedule_views;
use crate::overview::{RECENT_ALERTS, alerts as read_alerts};

pub async fn schedules(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let views = schedule_views(&state).await?;
    let here = "/schedules";
    let chrome = chrome(&state, &headers, flash, Some(here.to_owned()));
    let body = html! {
        @if views.is_empty() {
            p { "No schedules. Add them in the settings' " code { "[[schedules]]" } " or with " code { "flotilla schedules add" } "." }
        } @else {
            table #schedules {
                thead { tr {
                    th { "Name" } th { "When" } th { "Job" } th { "Last tick" } th { "Next tick" }
                    th { "Last job" } th { "State" } th { "" }
                } }
                tbody {
                    @for v in &views {
                        @let s = &v.schedule;
                        @let base = format!("/actions/schedules/{}", enc(&s.name));
                        tr data-schedule=(s.name) {
                            td { (s.name) }
                            td { code { (s.cron.as_deref().or(s.every.as_deref()).or(s.at.as_deref()).unwrap_or("-")) }
                                 @if let Some(tz) = &s.tz { " " (tz) } }
                            td { (s.job_type) " on " (s.queue) }
                            td { (when(v.last_tick_ms)) }
                            td { (when(v.next_tick_ms)) }
                            td { @if let Some(job) = &v.last_job { a href=(job_href(&s.queue, job)) { (job) } } @else { "-" } }
                            td { (word(if s.paused { "paused" } else { "active" })) }
                            td {
                                @if s.paused {
                                    (action(&chrome, &format!("{base}/resume"), "Resume", here, false))
                                } @else {
                                    (action(&chrome, &format!("{base}/pause"), "Pause", here, true))
                                }
                                " " (action(&chrome, &format!("{base}/trigger"), "Run now", here, false))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(shell("Schedules", &chrome, body))
}

pub async fn workers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let workers = state.admin().workers().await?;
    let chrome = chrome(&state, &headers, flash, Some("/workers".to_owned()));
    let now = jiff::Timestamp::now().as_millisecond();
    let body = html! {
        @if workers.is_empty() {
            p { "No worker is registered." }
        } @else {
            table #workers {
                thead { tr {
                    th { "Worker" } th { "Host" } th { "Pid" } th { "Version" } th { "Queues" }
                    th { "In flight" } th { "Started" } th { "Last beat" } th { "State" }
                } }
                tbody {
                    @for w in &workers {
                        tr {
                            td { code { (w.id) } }
                            td { (w.host) }
                            td.n { (w.pid.map_or("-".to_owned(), |p| p.to_string())) }
                            td { (w.version) }
                            td { (w.queues.join(", ")) }
                            td.n { (w.in_flight.map_or("-".to_owned(), |n| n.to_string())) " / " (w.concurrency.map_or("-".to_owned(), |n| n.to_string())) }
                            td { (when(w.started_at_ms)) }
                            td { (ago(w.last_heartbeat_ms, now)) }
                            td { (word(match w.state { flotilla_admin::WorkerState::Alive => "alive", flotilla_admin::WorkerState::Silent => "silent" })) }
                        }
                    }
                }
            }
        }
    };
    Ok(shell("Workers", &chrome, body))
}

pub async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let (active, recent) = read_alerts(&state, RECENT_ALERTS).await?;
    let chrome = chrome(&state, &headers, flash, Some("/alerts".to_owned()));
    let body = html! {
        h2 { "Active" }
        @if active.is_empty() {
            p { "No active alerts." }
        } @else {
            table #active {
                thead { tr { th { "Kind" } th { "Subject" } th { "Since" } th { "Message" } } }
                tbody { @for a in &active { tr { td { (a.kind) } td { (a.subject) } td { (when(Some(a.since))) } td { (a.message) } } } }
            }
        }
        h2 { "Recent" }
        @if recent.is_empty() {
            p { "Nothing raised or resolved yet." }
        } @else {
            table #recent {
                thead { tr { th { "At" } th { "Event" } th { "Kind" } th { "Subject" } th { "Message" } } }
                tbody { @for e in &recent { tr { td { (when(Some(e.at))) } td { (e.event) } td { (e.kind) } td { (e.subject) } td { (e.message) } } } }
            }
        }
    };
    Ok(shell("Alerts", &chrome, body))
}
