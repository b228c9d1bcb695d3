//! Retry backoff policies and their one-line wire form, stored in a job's `backoff` field.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::ProtoError;

/// How long to wait before the next attempt after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay every time: `fixed:MS`.
    Fixed(Duration),
    /// `base × 2^(attempt-1)`, capped, with equal jitter (the delay lands in
    /// `[d/2, d]`, so a fleet that failed together does not retry together):
    /// `exponential:BASE_MS:CAP_MS`.
    Exponential {
        /// The delay after the first failed attempt, before jitter.
        base: Duration,
        /// The longest delay, before jitter.
        cap: Duration,
    },
    /// An explicit delay per retry; the last one repeats: `list:MS,MS,…`.
    List(Vec<Duration>),
}

impl Default for Backoff {
    /// 1 s doubling to at most 10 minutes.
    fn default() -> Self {
        Backoff::Exponential {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// Checks that every delay is at most [`crate::MAX_DURATION_MS`], as its wire form
    /// must be; a `Backoff` built in code can hold more.
    pub fn check(&self) -> Result<(), ProtoError> {
        let within = |d: &Duration| d.as_millis() <= u128::from(crate::MAX_DURATION_MS);
        let ok = match self {
            Backoff::Fixed(d) => within(d),
            Backoff::Exponential { base, cap } => within(base) && within(cap),
            Backoff::List(delays) => !delays.is_empty() && delays.iter().all(within),
        };
        if ok {
            Ok(())
        } else {
            Err(ProtoError::BadBackoff(self.to_string()))
        }
    }

    /// The delay after failed attempt number `attempt` (1-based). `unit` is a number in
    /// `[0, 1)` drawn by the caller, so tests can fix the jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let attempt = attempt.max(1);
        match self {
            Backoff::Fixed(delay) => *delay,
            Backoff::Exponential { base, cap } => {
                let factor = 2u32.saturating_pow((attempt - 1).min(31));
                let full = base.saturating_mul(factor).min(*cap);
                let half = full / 2;
                half + half.mul_f64(unit.clamp(0.0, 1.0))
            }
            Backoff::List(delays) => {
                let index = (attempt as usize - 1).min(delays.len().saturating_sub(1));
                delays.get(index).copied().unwrap_or_default()
            }
        }
    }

    /// The delay with jitter drawn at random.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

impl fmt::Display for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backoff::Fixed(d) => write!(f, "fixed:{}", d.as_millis()),
            Backoff::Exponential { base, cap } => {
                write!(f, "exponential:{}:{}", base.as_millis(), cap.as_millis())
            }
            Backoff::List(delays) => {
                let parts: Vec<String> = delays.iter().map(|d| d.as_millis().to_string()).collect();
                write!(f, "list:{}", parts.join(","))
            }
        }
    }
}

impl FromStr for Backoff {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ProtoError::BadBackoff(s.to_owned());
        // Each delay is whole milliseconds, at most the longest duration a job may name.
        let ms = |part: &str| {
            part.trim()
                .parse::<u64>()
                .ok()
                .filter(|&ms| ms <= crate::MAX_DURATION_MS)
                .map(Duration::from_millis)
                .ok_or_else(bad)
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "fixed" => Ok(Backoff::Fixed(ms(rest)?)),
            "exponential" => {
                let (base, cap) = rest.split_once(':').ok_or_else(bad)?;
                Ok(Backoff::Exponential {
                    base: ms(base)?,
                    cap: ms(cap)?,
                })
            }
            "list" => {
                let delays = rest.split(',').map(ms).collect::<Result<Vec<_>, _>>()?;
                if delays.is_empty() {
                    return Err(bad());
                }
                Ok(Backoff::List(delays))
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn exponential_doubles_until_the_cap() {
        let b = Backoff::Exponential {
            base: MS(100),
            cap: MS(1000),
        };
        let top: Vec<_> = (1..=6).map(|a| b.delay(a, 1.0)).collect();
        assert_eq!(
            top,
            [MS(100), MS(200), MS(400), MS(800), MS(1000), MS(1000)]
        );
        assert_eq!(b.delay(3, 0.0), MS(200));
    }

    #[test]
    fn list_repeats_its_last_delay() {
        let b: Backoff = "list:10,20,30".parse().expect("parses");
        let got: Vec<_> = (1..=5).map(|a| b.delay(a, 0.5)).collect();
        assert_eq!(got, [MS(10), MS(20), MS(30), MS(30), MS(30)]);
    }

    #[test]
    fn bad_forms_are_refused() {
        for s in ["", "fixed", "fixed:x", "exponential:1", "list:", "linear:5"] {
            assert!(s.parse::<Backoff>().is_err(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn wire_form_round_trips(kind in 0..3u8, a in 0..100_000u64, b in 0..100_000u64,
                                 list in proptest::collection::vec(0..100_000u64, 1..6)) {
            let backoff = match kind {
                0 => Backoff::Fixed(MS(a)),
                1 => Backoff::Exponential { base: MS(a), cap: MS(b) },
                _ => Backoff::List(list.into_iter().map(MS).collect()),
            };
            prop_assert_eq!(backoff.to_string().parse::<Backoff>().ok(), Some(backoff));
        }

        #[test]
        fn jitter_stays_within_half_and_full(attempt in 1..40u32, unit in 0.0..1.0f64) {
            let b = Backoff::Exponential { base: MS(50), cap: MS(60_000) };
            let d = b.delay(attempt, unit);
            let full = b.delay(attempt, 1.0);
            prop_assert!(d >= full / 2 && d <= full);
        }
    }
}
