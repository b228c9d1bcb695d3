//! Redis URLs with their secrets hidden, for every place a URL is shown to a person
//! (errors, logs, the demo and the bench).

/// Query parameters of a `redis+unix://` URL that carry a secret.
const SECRET_PARAMS: [&str; 2] = ["pass", "password"];

/// `url` with its password (and a lone userinfo, which may be one) replaced by `***`.
///
/// Works on text that is not a valid URL too: anything before the last `@` of what looks
/// like the authority is treated as userinfo, so a malformed URL is never echoed whole.
///
/// ```
/// use flotilla_proto::redact_url;
/// assert_eq!(redact_url("redis://:hunter2@db:6379/0"), "redis://:***@db:6379/0");
/// assert_eq!(redact_url("redis://app:hunter2@db"), "redis://app:***@db");
/// assert_eq!(redact_url("redis+unix:///run/r.sock?pass=hunter2"), "redis+unix:///run/r.sock?pass=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        // Not a URL: where it ends is anyone's guess, so everything before the last `@`
        // is hidden.
        None => {
            return match url.rfind('@') {
                Some(at) => format!("***{}", &url[at..]),
                None => url.to_owned(),
            };
        }
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => format!("***{host}"),
            }
        }
        None => authority.to_owned(),
    };
    format!("{scheme}{authority}{}", redact_query(tail))
}

fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name)) => {
                format!("{name}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn secrets_never_survive() {
        for url in [
            "redis://:s3cret@127.0.0.1:6379",
            "rediss://user:s3cret@host/2",
            "redis://s3cret@host",
            "redis//:s3cret@host",
            ":s3cret@host:6379",
            "redis+unix:///tmp/r.sock?db=1&password=s3cret",
            "redis://:s3c@ret@host",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("s3c"), "{url} shown as {shown}");
        }
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis+unix:///tmp/r.sock",
            "redis://host/0?protocol=resp3",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
