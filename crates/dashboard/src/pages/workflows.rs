//! A flow's page (each job, its status, what it waits for and why, who waits for it) and
//! a batch's (its counts, callbacks and dead jobs).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use flotilla_admin::{BatchState, Edge, FlowJob};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{PageError, enc, job_href, page as shell, state as word, when};
use super::{Flash, chrome};
use crate::AppState;

pub async fn flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let view = state.admin().flow(&id).await?;
    let live = view.jobs.iter().any(|job| {
        !matches!(
            job.status.as_deref(),
            Some("completed" | "dead" | "cancelled" | "expired")
        )
    });
    let here = format!("/flows/{}", enc(&id));
    let chrome = chrome(&state, &headers, flash, live.then_some(here));
    let body = html! {
        p #counts {
            (view.total) " jobs, listed in " a href=(format!("/queues/{}", enc(&view.queue))) { (view.queue) } ": "
            @for (n, (status, count)) in view.counts.iter().enumerate() {
                @if n > 0 { ", " }
                (count) " " (word(status))
            }
            @if view.total > view.jobs.len() as u64 { " (the first " (view.jobs.len()) " shown)" }
        }
        table #flow {
            thead { tr { th { "Job" } th { "Queue" } th { "Status" } th { "Waits for" } th { "Waited on by" } } }
            tbody {
                @for job in &view.jobs {
                    tr {
                        td { a href=(job_href(&job.queue, &job.id)) { (job.id) } }
                        td { (job.queue) }
                        td { (word(job.status.as_deref().unwrap_or("forgotten"))) }
                        td { (waits_for(job)) }
                        td { (edges(&job.waited_on_by)) }
                    }
                }
            }
        }
    };
    Ok(shell(&format!("Flow {id}"), &chrome, body))
}

/// A job's parents, each with how it ended (or that it has not) and what the job does if
/// it fails.
pub fn waits_for(job: &FlowJob) -> Markup {
    html! {
        @if let Some(left) = job.left { (left) " of " (job.waits_for.len()) " left" br; }
        @for edge in &job.waits_for {
            @let ended = job.parents_ended.iter().find(|p| p.queue == edge.queue && p.id == edge.id);
            a href=(job_href(&edge.queue, &edge.id)) { (edge.id) }
            " ("
            @match ended {
                Some(p) if p.blocked => { "died: blocked until a retry of it completes" }
                Some(p) => { (p.outcome.as_deref().unwrap_or("ended")) }
                None => { "not ended" }
            }
            "; if it fails: " (edge.policy) ")" br;
        }
    }
}

/// Edges out of a job: the jobs and batches that wait for it.
pub fn edges(edges: &[Edge]) -> Markup {
    html! {
        @for edge in edges {
            @if edge.policy == "batch" {
                "batch " a href=(format!("/batches/{}?queue={}", enc(&edge.id), enc(&edge.queue))) { (edge.id) } br;
            } @else {
                a href=(job_href(&edge.queue, &edge.id)) { (edge.id) } br;
            }
        }
    }
}

/// Where a batch lives, when the link knows.
#[derive(Debug, Default, Deserialize)]
pub struct BatchPage {
    pub queue: Option<String>,
    pub flash: Option<String>,
}

pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BatchPage>,
) -> Result<Markup, PageError> {
    let queue = query.queue.filter(|q| !q.is_empty());
    let batch: BatchState = state.admin().batch(&id, queue.as_deref()).await?;
    let c = &batch.counts;
    let live = c.pending > 0 || !c.sealed;
    let here = format!("/batches/{}?queue={}", enc(&id), enc(&batch.queue));
    let flash = Flash { flash: query.flash };
    let chrome = chrome(&state, &headers, flash, live.then_some(here));
    let body = html! {
        dl #batch {
            dt { "Queue" } dd { a href=(format!("/queues/{}", enc(&batch.queue))) { (batch.queue) } }
            dt { "Jobs" } dd { (c.total) }
            dt { "Pending" } dd { (c.pending) }
            dt { "Completed" } dd { (c.completed) }
            dt { "Dead" } dd { (c.dead) " (a retry that completes still counts)" }
            dt { "Ended otherwise" } dd { (c.ended) " (cancelled, expired or deleted)" }
            dt { "Sealed" } dd {
                @if c.sealed { "yes" } @else { "no: jobs may still be added; success and complete wait for the seal" }
            }
            dt { "Opened" } dd { (when(batch.created_at_ms)) }
            dt { "Finished" } dd { (when(batch.finished_at_ms)) }
        }
        h2 { "Callbacks" }
        table #callbacks {
            thead { tr { th { "On" } th { "Job" } th { "Decided" } } }
            tbody {
                @for cb in &batch.callbacks {
                    tr {
                        td { (cb.kind) }
                        td { a href=(job_href(&cb.queue, &cb.id)) { (cb.id) } }
                        td { (cb.decided.as_deref().unwrap_or("waiting")) }
                    }
                }
            }
        }
        @if !batch.dead_jobs.is_empty() {
            h2 { "Dead jobs" }
            ul {
                @for dead in &batch.dead_jobs {
                    @if let Some((queue, id)) = dead.split_once(' ') {
                        li { a href=(job_href(queue, id)) { (id) } " (" (queue) ")" }
                    }
                }
            }
        }
    };
    Ok(shell(&format!("Batch {id}"), &chrome, body))
}
