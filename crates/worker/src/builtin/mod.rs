//! Built-in handlers: `exec` and `http` so any language can serve jobs (each behind the
//! cargo feature of its name), and the test handlers `noop`, `sleep` and `fail` used by
//! tests, the demo and benchmarks.

#[cfg(feature = "exec")]
mod exec;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "exec")]
mod process_group;
mod testing;

#[cfg(feature = "exec")]
pub use exec::{DEFAULT_KILL_GRACE, ExecHandler, SNOOZE_EXIT_CODE};
#[cfg(feature = "http")]
pub use http::{HttpHandler, InvalidHttpHandler, SNOOZE_STATUS};
#[cfg(feature = "exec")]
pub(crate) use process_group::wait_for_ending_groups;
pub(crate) use testing::register_test_handlers;

#[cfg(any(feature = "exec", feature = "http"))]
/// Turns a handler's output bytes into a JSON result: JSON if it parses, else a string.
fn output_to_result(bytes: &[u8]) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned())))
}

#[cfg(any(feature = "exec", feature = "http"))]
/// How long an `exec` or `http` handler's snooze lasts when it names no delay.
const DEFAULT_SNOOZE: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(feature = "exec")]
/// The snooze an `exec` command asked for: the whole seconds it printed, else
/// [`DEFAULT_SNOOZE`].
fn snooze_delay(printed: &str) -> std::time::Duration {
    printed
        .parse::<u64>()
        .map_or(DEFAULT_SNOOZE, std::time::Duration::from_secs)
}

#[cfg(any(feature = "exec", feature = "http"))]
/// The last `max` characters of `text`, for error messages that must stay short.
fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let skipped: String = text.chars().skip(count - max).collect();
    format!("…{skipped}")
}
