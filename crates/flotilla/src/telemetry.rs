//! Logs and traces for a process that runs Flotilla: logs to stderr, and spans over OTLP
//! when the standard OpenTelemetry variables ask for them (`OTEL_EXPORTER_OTLP_ENDPOINT`
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …). With tracing on, a job carries its
//! producer's trace context and the span that runs it is a child of the one that
//! enqueued it; without the variables no span leaves the process.
//!
//! ```no_run
//! // In `main`, before the async runtime starts: the exporter's HTTP client has one of
//! // its own.
//! let telemetry = flotilla::telemetry::init(flotilla::telemetry::LogFormat::Text);
//! // … build the runtime, run the service …
//! telemetry.shutdown(); // sends the last spans
//! ```
//!
//! A host with a `tracing` subscriber of its own adds [`trace_layer`] to it instead.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event, coloured at a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What must happen before the process exits: the last spans are sent.
#[derive(Debug)]
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still buffered. Call outside the async runtime.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: could not send the last trace spans: {e}");
        }
    }
}

/// Installs the process's `tracing` subscriber: `RUST_LOG` filters (default `info`), logs
/// go to stderr in `format`, and spans go over OTLP when the environment asks. Call once,
/// before the async runtime starts.
pub fn init(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal; files and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Text => logs.boxed(),
    };
    let (traces, telemetry, problem) = match trace_layer() {
        Ok(Some((layer, telemetry))) => (Some(layer), telemetry, None),
        Ok(None) => (None, Telemetry { traces: None }, None),
        Err(e) => (None, Telemetry { traces: None }, Some(e)),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .init();
    if let Some(e) = problem {
        tracing::warn!("traces are not exported: {e}");
    }
    telemetry
}

/// For a host that installs its own subscriber: the layer that exports spans over OTLP,
/// and the [`Telemetry`] to shut down, when the environment asks for traces (`None` when
/// it does not). Turns on the W3C propagator and the trace context jobs carry. Call
/// before the async runtime starts. The error says which variable is wrong.
pub fn trace_layer<S>() -> Result<Option<(impl Layer<S>, Telemetry)>, String>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(provider) = trace_provider()? else {
        return Ok(None);
    };
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("flotilla"));
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());
    flotilla_proto::trace_context::enable();
    Ok(Some((
        layer,
        Telemetry {
            traces: Some(provider),
        },
    )))
}

/// The OTLP trace pipeline the environment asks for, if it asks for one.
fn trace_provider() -> Result<Option<SdkTracerProvider>, String> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !configured {
        return Ok(None);
    }
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        Ok("http/json") => Protocol::HttpJson,
        Ok("http/protobuf") | Err(_) => Protocol::HttpBinary,
        Ok(other) => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other}: expected http/protobuf or http/json"
            ));
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build(),
    ))
}
