//! What a worker passes for an attempt of a fast-path job (protocol 2: the job lives whole
//! in its stream entry and has no record), so that a script can fence the attempt by its
//! entry's delivery count and write the job's record when it must have one.

use super::{Call, StartedJob};

/// A fast-path attempt, as the scripts that may write its record need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastJob {
    /// The job as its entry carries it, with the worker's defaults filled in.
    pub job: StartedJob,
    /// When the attempt began, ms since the Unix epoch on the worker's clock.
    pub started_at_ms: u64,
}

/// Appends the block of arguments `adopt` (in `common.lua`) reads: the entry's delivery
/// count the attempt is current at (the attempt is current while its entry is pending
/// under its worker at this count), then the job; a count of 0 and empty fields for an
/// attempt that has a record.
pub(crate) fn fast_args(call: Call, delivery: u32, fast: Option<&FastJob>) -> Call {
    match fast {
        None => call.arg(0).arg(&["", "", "", "", "", "", "", "", ""][..]),
        Some(FastJob { job, started_at_ms }) => call
            .arg(delivery)
            .arg(&job.job_type)
            .arg(&job.payload)
            .arg(&job.content_type)
            .arg(job.attempt)
            .arg(job.max_attempts)
            .arg(job.timeout_ms)
            .arg(
                job.backoff
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
            .arg(&job.trace)
            .arg(*started_at_ms),
    }
}

/// The lowest and highest of the given stream entry ids, which bound the one XPENDING
/// range read that tells a script which of them are still this worker's; empty texts when
/// there are none. Ordering them here spares the script parsing every id.
pub(crate) fn entry_range<'a>(ids: impl IntoIterator<Item = &'a str>) -> (&'a str, &'a str) {
    let mut parsed = ids
        .into_iter()
        .filter_map(|id| Some((entry_order(id)?, id)));
    let Some(first) = parsed.next() else {
        return ("", "");
    };
    let (low, high) = parsed.fold((first, first), |(low, high), next| {
        (
            if next.0 < low.0 { next } else { low },
            if next.0 > high.0 { next } else { high },
        )
    });
    (low.1, high.1)
}

/// A stream entry id (`<ms>-<seq>`) as numbers, in stream order.
fn entry_order(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_orders_ids_as_numbers_not_text() {
        let ids = ["1700000000000-9", "1700000000000-10", "1699999999999-99"];
        assert_eq!(entry_range(ids), ("1699999999999-99", "1700000000000-10"));
        assert_eq!(entry_range([]), ("", ""));
    }
}
