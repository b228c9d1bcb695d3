//! W3C trace context carried in a job, so that the span that runs a job is a child of
//! the span that enqueued it, across processes, languages and retries. It costs nothing
//! while no process has turned tracing on.

use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "otel")]
pub use with_otel::{continue_in, ids_of, of_span};
#[cfg(not(feature = "otel"))]
pub use without_otel::{continue_in, ids_of, of_span};

/// Set once at start by a process that exports traces.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The entry field of the W3C `traceparent` header: the producer's trace and span.
pub const TRACEPARENT: &str = "traceparent";
/// The entry field of the W3C `tracestate` header, which goes with [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";

/// The one value a job carries its trace context as: `traceparent`, then `tracestate` on
/// a second line when there is one.
pub fn join(parent: &str, state: Option<&str>) -> String {
    match state.filter(|state| !state.is_empty()) {
        Some(state) => format!("{parent}\n{state}"),
        None => parent.to_owned(),
    }
}

/// The `traceparent` and `tracestate` a job's trace context holds (see [`join`]).
pub fn split(carried: &str) -> (Option<&str>, Option<&str>) {
    let mut lines = carried.lines().map(str::trim);
    (lines.next(), lines.next())
}

/// Turns trace propagation on for this process: its tracing subscriber exports spans and
/// the global propagator is the W3C one (the binary installs both).
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether this process exports traces.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Built with the `otel` feature: contexts are read and written through OpenTelemetry.
#[cfg(feature = "otel")]
mod with_otel {
    use std::collections::HashMap;

    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::{TRACEPARENT, TRACESTATE, enabled, join, split};

    /// The context of `span` as a job carries it: `traceparent`, then `tracestate` on a
    /// second line when there is one; empty when tracing is off or the span is not sampled.
    pub fn of_span(span: &tracing::Span) -> String {
        if !enabled() {
            return String::new();
        }
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return String::new();
        }
        let mut carrier = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut carrier)
        });
        carrier
            .get(TRACEPARENT)
            .map(|parent| join(parent, carrier.get(TRACESTATE).map(String::as_str)))
            .unwrap_or_default()
    }

    /// Makes `span` a child of the context a job carried (see [`of_span`]); does nothing when
    /// tracing is off or the context is not a valid `traceparent`.
    pub fn continue_in(span: &tracing::Span, carried: &str) {
        if carried.is_empty() || !enabled() {
            return;
        }
        let (parent, state) = split(carried);
        let mut carrier = HashMap::new();
        for (name, value) in [(TRACEPARENT, parent), (TRACESTATE, state)] {
            if let Some(value) = value {
                carrier.insert(name.to_owned(), value.to_owned());
            }
        }
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&carrier)
        });
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }

    /// The trace and span ids of `span` as hex, for log lines; `None` when tracing is off.
    pub fn ids_of(span: &tracing::Span) -> Option<(String, String)> {
        if !enabled() {
            return None;
        }
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        })
    }
}

/// Built without the `otel` feature: jobs carry no trace context and spans stay local.
#[cfg(not(feature = "otel"))]
mod without_otel {
    /// Always empty: this build carries no trace context.
    pub fn of_span(_span: &tracing::Span) -> String {
        String::new()
    }

    /// Does nothing: this build carries no trace context.
    pub fn continue_in(_span: &tracing::Span, _carried: &str) {}

    /// Always `None`: this build carries no trace context.
    pub fn ids_of(_span: &tracing::Span) -> Option<(String, String)> {
        None
    }
}
