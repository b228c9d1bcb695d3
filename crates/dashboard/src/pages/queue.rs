//! One queue: its counts, its flow limit, links to its jobs by status, and pause, resume
//! and "retry every dead job" for it.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use flotilla_proto::Status;
use maud::{Markup, html};

use super::layout::{PageError, action, enc, page as shell, state as word};
use super::{Flash, chrome};
use crate::AppState;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(queue): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let stats = state.admin().queue_stat(&queue).await?;
    let here = format!("/queues/{}", enc(&queue));
    let chrome = chrome(&state, &headers, flash, Some(here.clone()));
    let counts = [
        ("pending", stats.state.pending),
        ("running", stats.state.running),
        ("scheduled", stats.state.scheduled),
        ("waiting for parents", stats.state.waiting),
        ("failed", stats.retrying),
        ("dead", stats.state.dead),
    ];
    let body = html! {
        p {
            "State: " (word(if stats.paused { "paused" } else { "active" })) " "
            @if stats.paused {
                (action(&chrome, &format!("/actions/queues/{}/resume", enc(&queue)), "Resume", &here, false))
            } @else {
                (action(&chrome, &format!("/actions/queues/{}/pause", enc(&queue)), "Pause", &here, true))
            }
        }
        table #counts {
            thead { tr { th { "Status" } th { "Jobs" } } }
            tbody {
                @for (status, count) in counts {
                    tr {
                        td { a href=(format!("/jobs?status={status}&queue={}", enc(&queue))) { (word(status)) } }
                        td.n { (count) }
                    }
                }
                tr { td { a href=(format!("/jobs?status=completed&queue={}", enc(&queue))) { (word("completed")) } " (last hour / day)" }
                     td.n { (stats.completed_last_hour) " / " (stats.completed_last_day) } }
                tr { td { a href=(format!("/jobs?status=cancelled&queue={}", enc(&queue))) { (word(Status::Cancelled.as_str())) } } td.n { "-" } }
                tr { td { a href=(format!("/jobs?status=expired&queue={}", enc(&queue))) { (word(Status::Expired.as_str())) } " (last hour / day)" }
                     td.n { (stats.expired_last_hour) " / " (stats.expired_last_day) } }
                tr { td { "throttled by its flow limit (last hour / day)" }
                     td.n { (stats.throttled_last_hour) " / " (stats.throttled_last_day) } }
                tr { td { "snoozed (last hour / day)" }
                     td.n { (stats.snoozed_last_hour) " / " (stats.snoozed_last_day) } }
            }
        }
        p {
            "Consumer-group lag " (stats.state.lag) "; the oldest waiting job has waited "
            (format!("{:.1}", stats.state.oldest_pending_age)) " s."
        }
        p #limit {
            @match &stats.limit {
                Some(limit) => {
                    "Flow limit, fleet-wide: "
                    @if let Some(rate) = &limit.rate {
                        (rate) " (burst " (limit.burst.unwrap_or(1)) ")"
                        @if limit.concurrency.is_some() { ", " }
                    }
                    @if let Some(cap) = limit.concurrency {
                        (limit.slots_held) " of " (cap) " running"
                    }
                    @if let Some(per_group) = limit.group_concurrency {
                        @if limit.rate.is_some() || limit.concurrency.is_some() { ", " }
                        (per_group) " at once per group"
                    }
                    @if let Some(rate) = &limit.group_rate {
                        @if limit.rate.is_some() || limit.concurrency.is_some() || limit.group_concurrency.is_some() { ", " }
                        (rate) " per group (burst " (limit.group_burst.unwrap_or(1)) ")"
                    }
                    @if limit.group_concurrency.is_some() || limit.group_rate.is_some() {
                        ", " (limit.groups_waiting) " groups waiting their turn"
                    }
                    " (" code { "flotilla queues limit " (queue) } ")."
                }
                None => { "No flow limit (" code { "flotilla queues limit " (queue) " --rate 100/s --concurrency 5" } ")." }
            }
        }
        @if let Some(limit) = stats.limit.as_ref().filter(|l| !l.busiest_groups.is_empty()) {
            table #groups {
                caption { "Groups with the most jobs waiting their turn" }
                thead { tr { th { "group" } th.n { "waiting" } th.n { "let through" } } }
                tbody {
                    @for g in &limit.busiest_groups {
                        tr { td { code { (g.group) } } td.n { (g.waiting) } td.n { (g.let_through) } }
                    }
                }
            }
        }
        @if stats.state.dead > 0 {
            form.inline method="post" action="/actions/dead/retry" {
                @if let Some(viewer) = chrome.viewer.as_ref().filter(|_| !chrome.read_only) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="back" value=(here);
                    input type="hidden" name="queue" value=(queue);
                    button type="submit" { "Retry all " (stats.state.dead) " dead jobs" }
                }
            }
        }
    };
    Ok(shell(&format!("Queue {queue}"), &chrome, body))
}
