//! The checks applied to names and numbers that come from outside (a producer in any
//! language, the command line, a settings file), written once so the Rust producer and the
//! worker's decoder accept exactly the same jobs.

use crate::ProtoError;

/// Most attempts a job may have. With the default backoff capped at 10 minutes this is
/// weeks of retrying: a larger number is a mistake, not a policy.
pub const MAX_ATTEMPTS: u32 = 10_000;

/// Longest job id, type, queue name or unique key, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// What [`check_name`] accepts, for error messages.
pub const NAME_RULE: &str =
    "1-256 printable characters without spaces, braces or control characters";

/// What [`check_max_attempts`] accepts, for error messages.
pub const MAX_ATTEMPTS_RULE: &str = "a whole number from 1 to 10000";

/// Checks a job id, type, queue name or unique key. Ids, queues and unique keys become
/// parts of key names, where a brace would break the Cluster hash tag; every name is
/// written into logs, where a control character (CR, LF) could forge a line.
pub fn check_name(field: &'static str, name: &str) -> Result<(), ProtoError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '{' || c == '}');
    if bad {
        return Err(ProtoError::BadField {
            field,
            value: name.to_owned(),
            expected: NAME_RULE,
        });
    }
    Ok(())
}

/// Checks a job's number of attempts.
pub fn check_max_attempts(attempts: u64) -> Result<u32, ProtoError> {
    u32::try_from(attempts)
        .ok()
        .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
        .ok_or_else(|| ProtoError::BadField {
            field: crate::field::MAX_ATTEMPTS,
            value: attempts.to_string(),
            expected: MAX_ATTEMPTS_RULE,
        })
}

/// Checks an attempt timeout: zero is refused rather than read as "none" or "default",
/// so a record always shows the timeout that applies.
pub fn check_timeout_ms(timeout_ms: u64) -> Result<u64, ProtoError> {
    if timeout_ms == 0 {
        return Err(ProtoError::BadField {
            field: crate::field::TIMEOUT,
            value: "0".to_owned(),
            expected: "a duration of at least 1ms (there is no \"no timeout\"; use a long one)",
        });
    }
    Ok(timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_control_characters_or_braces_are_refused() {
        for bad in ["", "a\r\nb", "a b", "{q}", "\u{7f}", &"x".repeat(257)] {
            let err = check_name("id", bad).expect_err(bad);
            // The message shows the value escaped, never raw.
            assert!(!err.to_string().contains('\n'));
        }
        for good in ["send_email", "01H-ab.c:d@e", &"x".repeat(256)] {
            assert!(check_name("type", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn attempts_state_their_range() {
        assert_eq!(check_max_attempts(5).ok(), Some(5));
        for bad in [0, 10_001, u64::from(u32::MAX) + 1] {
            let err = check_max_attempts(bad)
                .expect_err("out of range")
                .to_string();
            assert!(err.contains("from 1 to 10000"), "{err}");
        }
    }
}
