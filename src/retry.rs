//! How long to wait before trying again, and when to stop trying.
//!
//! The schedule is tokio-retry's exponential strategy with full jitter (`--retry-delay` doubling
//! up to `--max-retry-delay`); a server's `Retry-After` replaces the computed delay. Whether an
//! error deserves a retry at all is decided by [`Error::is_transient`], not here.
//!
//! The loop itself lives with the caller (segment workers, the probe), because only the caller
//! knows when bytes have flowed and the budget should start over.

use std::time::{Duration, SystemTime};

use tokio_retry::strategy::{jitter, ExponentialBackoff};

use crate::error::Error;

/// The user's retry settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one; `None` retries forever.
    pub retries: Option<u32>,
    /// Delay before the first retry; each later one doubles it (before jitter).
    pub delay: Duration,
    /// Upper bound for one delay, including one asked for by `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: Some(10),
            delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The retry state of one request sequence (one probe, one segment).
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    strategy: ExponentialBackoff,
}

impl Backoff {
    /// A fresh budget.
    pub fn new(policy: &RetryPolicy) -> Backoff {
        Backoff {
            policy: policy.clone(),
            failures: 0,
            strategy: strategy(policy),
        }
    }

    /// The wait before retrying after `err`, or `None` if `err` is final or the budget is spent.
    pub fn next_delay(&mut self, err: &Error) -> Option<Duration> {
        if !err.is_transient() {
            return None;
        }
        self.failures += 1;
        if self.policy.retries.is_some_and(|n| self.failures > n) {
            return None;
        }
        let computed = jitter(self.strategy.next().unwrap_or(self.policy.max_delay));
        let delay = err.retry_after().unwrap_or(computed);
        Some(delay.min(self.policy.max_delay))
    }

    /// Starts the budget over; called once a retry has delivered bytes, so a long download on a
    /// flaky link is not failed by failures spread over hours.
    pub fn reset(&mut self) {
        if self.failures > 0 {
            self.failures = 0;
            self.strategy = strategy(&self.policy);
        }
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

fn strategy(policy: &RetryPolicy) -> ExponentialBackoff {
    // from_millis(2).factor(f) yields 2f, 4f, 8f...: start at `delay`.
    let half = (policy.delay.as_millis() as u64 / 2).max(1);
    ExponentialBackoff::from_millis(2)
        .factor(half)
        .max_delay(policy.max_delay)
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past
/// means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Error {
        Error::Status {
            url: "u".into(),
            status: 503,
            retry_after: None,
        }
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = RetryPolicy {
            retries: Some(6),
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let mut b = Backoff::new(&policy);
        for _ in 0..6 {
            let d = b.next_delay(&transient()).expect("within budget");
            assert!(d <= Duration::from_millis(500), "{d:?}");
        }
        assert_eq!(b.next_delay(&transient()), None, "budget of 6 is spent");
        b.reset();
        assert!(
            b.next_delay(&transient()).is_some(),
            "reset restores the budget"
        );
    }

    #[test]
    fn unjittered_schedule_doubles_from_the_base() {
        let policy = RetryPolicy {
            retries: None,
            delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
        };
        let got: Vec<_> = strategy(&policy).take(5).map(|d| d.as_millis()).collect();
        assert_eq!(got, vec![500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy {
            retries: Some(3),
            delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(10),
        };
        let mut b = Backoff::new(&policy);
        let err = |secs| Error::Status {
            url: "u".into(),
            status: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(b.next_delay(&err(3)), Some(Duration::from_secs(3)));
        assert_eq!(b.next_delay(&err(600)), Some(Duration::from_secs(10)));
    }

    #[test]
    fn final_errors_are_not_retried() {
        let mut b = Backoff::new(&RetryPolicy::default());
        let e = Error::Status {
            url: "u".into(),
            status: 404,
            retry_after: None,
        };
        assert_eq!(b.next_delay(&e), None);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any Retry-After value: a delay or `None`, never a panic.
        #[test]
        fn retry_after_never_panics(s in "\\PC{0,40}") {
            let _ = parse_retry_after(&s, SystemTime::now());
        }

        /// Seconds and HTTP dates round-trip.
        #[test]
        fn retry_after_round_trips(secs in 0u64..1 << 40, ahead in 1u64..100_000) {
            prop_assert_eq!(parse_retry_after(&secs.to_string(), SystemTime::now()), Some(Duration::from_secs(secs)));
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let date = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
            prop_assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(ahead)));
        }
    }
}
