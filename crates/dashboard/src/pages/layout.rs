//! The page shell (navigation, sign-in state, live refresh) and small helpers every page
//! uses: times, links, action forms and the error page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::Viewer;
use crate::error::ApiError;

/// Seconds between refreshes of a live page.
const REFRESH_SECS: u32 = 5;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#cfd6e4;text-decoration:none}header a:hover{color:#fff}
header .brand{font-weight:700;color:#fff}header .who{margin-left:auto;font-size:.9em}
main{padding:1em 1.2em;max-width:1300px}
h1{font-size:1.3em;margin:.4em 0 .8em}h2{font-size:1.1em;margin:1.4em 0 .5em}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:1em}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{background:#eef0f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:.5em .8em;border-radius:4px;margin-bottom:1em}
.ro{background:#fff4d6;border:1px solid #e8c65a}.flash{background:#e3f5e6;border:1px solid #7cc08a}
.err{background:#fde4e4;border:1px solid #e08a8a}
.s-completed,.s-alive{color:#17813a}.s-dead,.s-failed,.s-silent{color:#c62828}
.s-running,.s-paused{color:#a86b00}.s-scheduled{color:#00769e}.s-cancelled,.s-expired{color:#7a7f8a}
form.inline{display:inline;margin:0}button{cursor:pointer;font:inherit;padding:.15em .6em}
button.danger{color:#c62828}pre{background:#fff;border:1px solid #e3e6ec;padding:.6em;overflow:auto;max-height:24em}
.filters{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin-bottom:1em}
.filters label{display:flex;flex-direction:column;font-size:.85em}
dl{display:grid;grid-template-columns:max-content auto;gap:.3em 1em;background:#fff;padding:.8em;border:1px solid #e3e6ec}
dt{font-weight:600}dd{margin:0;word-break:break-all}
"#;

/// Where the shell shows who is signed in and whether changes are allowed.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub viewer: Option<Viewer>,
    pub read_only: bool,
    /// A message from the change just made.
    pub flash: Option<String>,
    /// Refresh to this URL every few seconds (live pages).
    pub refresh: Option<String>,
}

/// A whole page: the shell around `body`.
pub fn page(title: &str, chrome: &Chrome, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(url) = &chrome.refresh {
                    meta http-equiv="refresh" content=(format!("{REFRESH_SECS}; url={url}"));
                }
                title { (title) " · Flotilla" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/" { "Flotilla" }
                    a href="/" { "Overview" }
                    a href="/jobs?status=pending" { "Jobs" }
                    a href="/jobs?status=dead" { "Dead" }
                    a href="/schedules" { "Schedules" }
                    a href="/workers" { "Workers" }
                    a href="/alerts" { "Alerts" }
                    span.who {
                        @if chrome.read_only {
                            "read-only"
                        } @else if let Some(viewer) = &chrome.viewer {
                            "signed in as " (viewer.actor) " "
                            form.inline method="post" action="/logout" { button type="submit" { "Sign out" } }
                        } @else {
                            a href="/login" { "Sign in to make changes" }
                        }
                    }
                }
                main {
                    @if chrome.read_only {
                        div.banner.ro {
                            "This dashboard is read-only: it was started without "
                            code { "FLOTILLA_DASHBOARD_TOKEN" } ", so nothing can be changed from it."
                        }
                    }
                    @if let Some(flash) = &chrome.flash {
                        div.banner.flash role="status" { (flash) }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A time as UTC to the second; `-` for none.
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// How long ago `ms` was, from `now_ms`, in a short form.
pub fn ago(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// Percent-encodes a path segment or query value.
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The link to one job's page.
pub fn job_href(queue: &str, id: &str) -> String {
    format!("/jobs/{}/{}", enc(queue), enc(id))
}

/// A state word, coloured.
pub fn state(word: &str) -> Markup {
    html! { span class=(format!("s-{word}")) { (word) } }
}

/// A button that posts a change, with the session's CSRF token; nothing when changes
/// are not allowed here.
pub fn action(chrome: &Chrome, url: &str, label: &str, back: &str, danger: bool) -> Markup {
    let Some(viewer) = chrome.viewer.as_ref().filter(|_| !chrome.read_only) else {
        return html! {};
    };
    html! {
        form.inline method="post" action=(url) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="back" value=(back);
            button type="submit" class=[danger.then_some("danger")] { (label) }
        }
    }
}

/// An error as a page, with its HTTP status.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<flotilla_admin::AdminError> for PageError {
    fn from(e: flotilla_admin::AdminError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status: StatusCode = self.0.status();
        let chrome = Chrome {
            viewer: None,
            read_only: false,
            flash: None,
            refresh: None,
        };
        let body = html! {
            div.banner.err { (self.0.to_string()) }
            p { a href="/" { "Back to the overview" } }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        (status, page(title, &chrome, body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_whole() {
        assert_eq!(enc("a/b c{d}"), "a%2Fb%20c%7Bd%7D");
        assert_eq!(enc("1700-0"), "1700-0");
    }
}
