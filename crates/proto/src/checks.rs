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

/// The latest time a job may be set to run, in ms since the Unix epoch:
/// 3000-01-01T00:00:00Z. Every time and duration a script works with stays below 2^53,
/// where Lua's numbers are exact integers, and below 10^14, which Lua prints as digits
/// rather than in exponent form, so the scripts' arithmetic and the values they store
/// stay whole numbers that every reader parses.
pub const MAX_RUN_AT_MS: u64 = 32_503_680_000_000;

/// The longest duration a job may name, in ms: ten years (3 650 days). It bounds a delay,
/// a timeout, each backoff delay, a unique key's hold and a handler's Retry-After.
pub const MAX_DURATION_MS: u64 = 315_360_000_000;

/// How far ahead of the clock an entry id may be, in ms: a day. Only Redis chooses entry
/// ids (`XADD *`), from its clock; one further ahead was chosen by hand, and pushes the
/// stream's last id where Redis hands out no more.
pub const MAX_ID_AHEAD_MS: i64 = 86_400_000;

/// What a duration may be, for error messages.
pub const DURATION_RULE: &str = "at most 315360000000 ms (ten years)";

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

/// What [`check_job_id`] accepts beyond [`NAME_RULE`], for error messages.
pub const JOB_ID_RULE: &str = "1-256 printable characters without spaces, braces or control \
     characters, and not of the form <digits>-<digits> or <queue>:<digits>-<digits>: those are a \
     stream entry id and the full id of one, which name the jobs that have no id of their own";

/// Whether `id` is a stream entry id (`<ms>-<seq>`, each a whole number Redis can hold).
/// Such an id names a job without an id of its own (its entry's), so no producer may give
/// it to a job: the two kinds of id never share a name, and one job cannot shadow another.
pub fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        let whole =
            |part: &str| part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u64>().is_ok();
        whole(ms) && whole(seq)
    })
}

/// Whether `id` names a job without an id of its own: an entry id ([`is_entry_id`]) or
/// the full id of one (`<queue>:<entry id>`, see [`crate::full_id`]).
pub fn names_entry(id: &str) -> bool {
    is_entry_id(id)
        || id
            .rsplit_once(':')
            .is_some_and(|(_, entry)| is_entry_id(entry))
}

/// Checks an id a producer gives its job: a valid name that names no job without an id
/// of its own ([`names_entry`]).
pub fn check_job_id(id: &str) -> Result<(), ProtoError> {
    if check_name(crate::field::ID, id).is_err() || names_entry(id) {
        return Err(ProtoError::BadField {
            field: crate::field::ID,
            value: id.to_owned(),
            expected: JOB_ID_RULE,
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
/// so a record always shows the timeout that applies; ten years is the most.
pub fn check_timeout_ms(timeout_ms: u64) -> Result<u64, ProtoError> {
    if timeout_ms == 0 {
        return Err(ProtoError::BadField {
            field: crate::field::TIMEOUT,
            value: "0".to_owned(),
            expected: "a duration of at least 1ms (there is no \"no timeout\"; use a long one)",
        });
    }
    check_duration_ms(crate::field::TIMEOUT, timeout_ms)
}

/// Checks a duration a job names (a delay, a timeout, a unique key's hold): at most
/// [`MAX_DURATION_MS`].
pub fn check_duration_ms(field: &'static str, ms: u64) -> Result<u64, ProtoError> {
    if ms > MAX_DURATION_MS {
        return Err(ProtoError::BadField {
            field,
            value: ms.to_string(),
            expected: DURATION_RULE,
        });
    }
    Ok(ms)
}

/// Checks a time a job is set to run at: at most [`MAX_RUN_AT_MS`].
pub fn check_run_at_ms(ms: u64) -> Result<u64, ProtoError> {
    if ms > MAX_RUN_AT_MS {
        return Err(ProtoError::BadField {
            field: crate::field::RUN_AT,
            value: ms.to_string(),
            expected: "milliseconds since the Unix epoch, at most 32503680000000 (the year 3000)",
        });
    }
    Ok(ms)
}

/// Checks a time a job expires at (`expires_at`, protocol 2.16): at most
/// [`MAX_RUN_AT_MS`], as a run time.
pub fn check_expires_at_ms(ms: u64) -> Result<u64, ProtoError> {
    if ms > MAX_RUN_AT_MS {
        return Err(ProtoError::BadField {
            field: crate::field::EXPIRES_AT,
            value: ms.to_string(),
            expected: EXPIRES_AT_RULE,
        });
    }
    Ok(ms)
}

/// What an `expires_at` must be.
pub(crate) const EXPIRES_AT_RULE: &str =
    "milliseconds since the Unix epoch, at most 32503680000000 (the year 3000)";

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
    fn own_ids_never_take_the_form_of_an_entry_id() {
        for reserved in [
            "1900000000000-0",
            "0-1",
            "18446744073709551615-18446744073709551615",
        ] {
            assert!(is_entry_id(reserved), "{reserved}");
            let err = check_job_id(reserved).expect_err(reserved).to_string();
            assert!(err.contains("stream entry id"), "{err}");
        }
        for own in [
            "1900000000000",
            "order-17",
            "1-2-3",
            "-1",
            "1-",
            "a1-2",
            "1-2a",
            "nightly@1700000000000",
            "order:17",
            "mail:1-2-3",
            "1-0:x",
        ] {
            assert!(!is_entry_id(own), "{own}");
            assert!(check_job_id(own).is_ok(), "{own}");
        }
        assert!(check_job_id("a b").is_err());
    }

    #[test]
    fn own_ids_never_take_the_form_of_a_full_id() {
        for reserved in ["mail:1900000000000-0", "a:b:0-1", ":1-0"] {
            assert!(!is_entry_id(reserved), "{reserved}");
            assert!(names_entry(reserved), "{reserved}");
            let err = check_job_id(reserved).expect_err(reserved).to_string();
            assert!(err.contains("full id"), "{err}");
        }
    }

    #[test]
    fn times_and_durations_are_bounded() {
        assert_eq!(check_run_at_ms(MAX_RUN_AT_MS).ok(), Some(MAX_RUN_AT_MS));
        assert_eq!(
            check_duration_ms("delay", MAX_DURATION_MS).ok(),
            Some(MAX_DURATION_MS)
        );
        for absurd in [MAX_RUN_AT_MS + 1, u64::MAX] {
            let err = check_run_at_ms(absurd).expect_err("refused").to_string();
            assert!(err.contains("the year 3000"), "{err}");
        }
        for absurd in [MAX_DURATION_MS + 1, u64::MAX] {
            assert!(check_duration_ms("delay", absurd).is_err());
            assert!(check_timeout_ms(absurd).is_err());
        }
        // Below 2^53 and 10^14: exact in Lua, and printed as digits.
        const { assert!(MAX_RUN_AT_MS + MAX_DURATION_MS < 100_000_000_000_000) };
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
