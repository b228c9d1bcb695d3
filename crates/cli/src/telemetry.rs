//! Logs to stderr, and traces over OTLP when the standard OpenTelemetry variables ask for
//! them: `flotilla::telemetry`, in the format the command line chose.

pub use flotilla::telemetry::Telemetry;

use crate::cli::LogFormat;

/// Installs the log subscriber, and the trace exporter when it is configured. Call before
/// the async runtime starts: the exporter's HTTP client has a runtime of its own.
pub fn init(format: LogFormat) -> Telemetry {
    flotilla::telemetry::init(match format {
        LogFormat::Json => flotilla::telemetry::LogFormat::Json,
        LogFormat::Text => flotilla::telemetry::LogFormat::Text,
    })
}
