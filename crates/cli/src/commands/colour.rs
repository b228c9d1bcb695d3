//! Colour by job or worker state for tables on a terminal; plain text when piped or when
//! `NO_COLOR` is set (<https://no-color.org>).

use std::io::IsTerminal;

/// Whether standard output takes colour.
pub fn enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The ANSI colour code for a state word: green what went well, red what failed, yellow
/// what is under way, cyan what waits for a time, dim what is over without a result.
fn code(state: &str) -> Option<&'static str> {
    match state {
        "completed" | "alive" => Some("32"),
        "dead" | "failed" | "silent" => Some("31"),
        "running" | "paused" => Some("33"),
        "scheduled" => Some("36"),
        "cancelled" | "expired" => Some("2"),
        _ => None,
    }
}

/// `cell` (already padded) painted for `state` when `on`.
pub fn paint(cell: &str, state: &str, on: bool) -> String {
    match code(state) {
        Some(code) if on => format!("\x1b[{code}m{cell}\x1b[0m"),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::paint;

    #[test]
    fn states_are_painted_only_when_on() {
        assert_eq!(paint("dead ", "dead", true), "\x1b[31mdead \x1b[0m");
        assert_eq!(paint("dead ", "dead", false), "dead ");
        assert_eq!(paint("pending", "pending", true), "pending");
    }
}
