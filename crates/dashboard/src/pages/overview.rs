//! The overview: per-queue counts, the last hour's throughput, workers, the leader and
//! active alerts.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use flotilla_admin::Minute;
use maud::{Markup, html};

use super::layout::{PageError, ago, enc, page as shell, state as word, when};
use super::{Flash, chrome};
use crate::AppState;
use crate::overview::overview;

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let view = overview(&state).await?;
    let chrome = chrome(&state, &headers, flash, Some("/".to_owned()));
    let now = jiff::Timestamp::now().as_millisecond();
    let body = html! {
        h2 { "Queues" }
        @if view.queues.is_empty() {
            p { "No queues yet: nothing has been enqueued." }
        } @else {
            table #queues {
                thead { tr {
                    th { "Queue" } th { "Pending" } th { "Running" } th { "Scheduled" }
                    th { "Retrying" } th { "Dead" } th { "Done 1h" } th { "Dead 1h" }
                    th { "Oldest waiting" } th { "State" }
                } }
                tbody {
                    @for q in &view.queues {
                        tr data-queue=(q.queue) {
                            td { a href=(format!("/queues/{}", enc(&q.queue))) { (q.queue) } }
                            td.n { a href=(format!("/jobs?status=pending&queue={}", enc(&q.queue))) { (q.state.pending) } }
                            td.n { a href=(format!("/jobs?status=running&queue={}", enc(&q.queue))) { (q.state.running) } }
                            td.n { (q.state.scheduled) }
                            td.n { (q.retrying) }
                            td.n { a href=(format!("/jobs?status=dead&queue={}", enc(&q.queue))) { (q.state.dead) } }
                            td.n { (q.completed_last_hour) }
                            td.n { (q.dead_last_hour) }
                            td.n { (format!("{:.1}s", q.state.oldest_pending_age)) }
                            td { (word(if q.paused { "paused" } else { "active" })) }
                        }
                    }
                }
            }
        }
        h2 { "Throughput, last hour" }
        (chart(&view.throughput))
        h2 { "Scheduler" }
        p {
            @match &view.leader.holder {
                Some(holder) => { "Leader " code { (holder) } " (epoch " (view.leader.epoch) ")" }
                None => { "No scheduler leads: is a " code { "flotilla scheduler" } " running?" }
            }
        }
        h2 { "Workers (" (view.workers.len()) ")" }
        @if view.workers.is_empty() {
            p { "No worker is registered." }
        } @else {
            table #workers {
                thead { tr { th { "Worker" } th { "Queues" } th { "In flight" } th { "Last beat" } th { "State" } } }
                tbody {
                    @for w in &view.workers {
                        tr {
                            td { code { (w.id) } }
                            td { (w.queues.join(", ")) }
                            td.n { (w.in_flight.map_or("-".to_owned(), |n| n.to_string())) }
                            td { (ago(w.last_heartbeat_ms, now)) }
                            td { (word(match w.state { flotilla_admin::WorkerState::Alive => "alive", flotilla_admin::WorkerState::Silent => "silent" })) }
                        }
                    }
                }
            }
        }
        h2 { "Active alerts" }
        @if view.alerts.is_empty() {
            p { "None." }
        } @else {
            table #alerts {
                thead { tr { th { "Kind" } th { "Subject" } th { "Since" } th { "Message" } } }
                tbody {
                    @for a in &view.alerts {
                        tr { td { (a.kind) } td { (a.subject) } td { (when(Some(a.since))) } td { (a.message) } }
                    }
                }
            }
        }
    };
    Ok(shell("Overview", &chrome, body))
}

/// Completions (green) and deaths (red) per minute as an SVG bar chart.
fn chart(minutes: &[Minute]) -> Markup {
    const WIDTH: usize = 6;
    const HEIGHT: u64 = 80;
    let busiest = minutes
        .iter()
        .map(|m| m.completed + m.dead)
        .max()
        .unwrap_or(0);
    // An empty hour draws no bars rather than dividing by zero.
    let scale = |n: u64| n * HEIGHT / busiest.max(1);
    let total: u64 = minutes.iter().map(|m| m.completed).sum();
    let dead: u64 = minutes.iter().map(|m| m.dead).sum();
    html! {
        svg #throughput width=(minutes.len() * WIDTH) height=(HEIGHT) role="img"
            aria-label=(format!("{total} completed and {dead} dead in the last hour")) {
            @for (i, m) in minutes.iter().enumerate() {
                @let done = scale(m.completed);
                @let died = scale(m.dead);
                rect x=(i * WIDTH) y=(HEIGHT - done) width=(WIDTH - 1) height=(done) fill="#3a9d5d" {
                    title { (when(Some(m.at_ms))) ": " (m.completed) " completed, " (m.dead) " dead" }
                }
                rect x=(i * WIDTH) y=(HEIGHT - done - died) width=(WIDTH - 1) height=(died) fill="#d64545" {}
            }
        }
        p { (total) " completed and " (dead) " dead in the last hour; the busiest minute had " (busiest) "." }
    }
}
