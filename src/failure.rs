//! The one decision after any failure: retry after a delay, shed the connection, fall back to one
//! stream, stop using a mirror, start the file over, or fail. Every place that can fail asks
//! [`Retries::decide`] with where it is ([`Place`]); what it may do about it is decided here, by
//! one table, and every decision is logged at debug level (`-v`).
//!
//! Whether an error is worth retrying at all is [`Error::is_transient`]; how long to wait is the
//! backoff's ([`crate::retry`]).

use std::time::Duration;

use crate::context::Context;
use crate::error::Error;
use crate::events::Level;
use crate::retry::{Backoff, RetryPolicy};

/// Retries of a 403 on a file's last connection. The server served this file moments ago, so a
/// 403 now is more likely a connection limit than a denial; an expired signed URL still fails
/// fast.
const FORBIDDEN_RETRIES: u32 = 2;

/// A file that changes on the server more often than this while we download it is an error.
const MAX_RESTARTS: u32 = 2;

/// Where a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// One connection of a segmented file; `others` when the file has more connections,
    /// `mirror` when this one fetched from a mirror.
    Connection { others: bool, mirror: bool },
    /// The first request of a file, for its bytes from `start`.
    Probe { start: u64 },
    /// A piece of a joined download; `whole` once it asks for the whole resource.
    Piece { whole: bool },
    /// A request that can only be tried again: a plain GET, one stream, a remote read.
    Request,
    /// Every connection of a segmented file has given up.
    Segments,
    /// The file as a whole, after `restarts` starts over; `mirrors_left` when another source
    /// of it is still untried.
    File { restarts: u32, mirrors_left: bool },
}

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send the same request again after this delay.
    Retry(Duration),
    /// This connection leaves; the file goes on with the others.
    Shed,
    /// Ranges from this server cannot be trusted: one plain stream for the file, the whole
    /// resource for a piece, a plain GET for a probe.
    OneStream,
    /// Stop using this source (a mirror); the others go on.
    DropSource,
    /// The file changed on the server: start it over from byte 0.
    Restart,
    /// Give up: the error is the result.
    Fail,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Retry(d) => write!(f, "retry in {:.1}s", d.as_secs_f64()),
            Decision::Shed => f.write_str("drop this connection"),
            Decision::OneStream => f.write_str("fall back to one plain stream"),
            Decision::DropSource => f.write_str("stop using this source"),
            Decision::Restart => f.write_str("start the file over"),
            Decision::Fail => f.write_str("give up"),
        }
    }
}

/// The retry state of one request sequence (a connection, a probe, a piece, a file).
#[derive(Debug)]
pub(crate) struct Retries {
    backoff: Backoff,
    delay: Duration,
    forbidden: u32,
}

impl Retries {
    pub(crate) fn new(policy: &RetryPolicy) -> Retries {
        Retries {
            backoff: Backoff::new(policy),
            delay: policy.delay,
            forbidden: 0,
        }
    }

    /// Starts the budget over: bytes have flowed since the last failure.
    pub(crate) fn reset(&mut self) {
        self.backoff.reset();
    }

    /// Failures since the last reset (for messages).
    pub(crate) fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// What to do about `err` at `place`. See the module docs.
    pub(crate) fn decide(&mut self, err: &Error, place: Place) -> Decision {
        use Decision::*;
        if matches!(err, Error::Interrupted) {
            return Fail;
        }
        let status = match err {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        };
        match place {
            // A mirror that fails is not worth retrying: the file's own server is there.
            Place::Connection { mirror: true, .. } => return DropSource,
            Place::Connection { others, .. } => match err {
                Error::RangeViolation { .. } => return OneStream,
                // A server refusing an *extra* connection is a limit, not a failure.
                _ if others && matches!(status, Some(403 | 429 | 503)) => return Shed,
                _ if status == Some(403) && self.forbidden < FORBIDDEN_RETRIES => {
                    self.forbidden += 1;
                    return Retry(self.delay);
                }
                _ => {}
            },
            // 416 to a probe from byte 0 is how some servers answer for an empty file; from
            // further on, the file is now shorter than the part already downloaded.
            Place::Probe { start } if status == Some(416) => {
                return if start == 0 { OneStream } else { Restart };
            }
            Place::Piece { whole: false } if matches!(err, Error::RangeViolation { .. }) => {
                return OneStream
            }
            Place::Segments => {
                return match err {
                    Error::RangeViolation { .. } => OneStream,
                    _ => Fail,
                }
            }
            Place::File {
                restarts,
                mirrors_left,
            } => {
                return match err {
                    Error::Changed { .. } if restarts < MAX_RESTARTS => Restart,
                    Error::Status { .. } | Error::Transport { .. } | Error::Redirect { .. }
                        if mirrors_left =>
                    {
                        DropSource
                    }
                    _ => Fail,
                }
            }
            _ => {}
        }
        self.backoff.next_delay(err).map_or(Fail, Retry)
    }
}

/// [`Retries::decide`], logged at debug level for download `id`.
pub(crate) fn decide(
    ctx: &Context,
    id: Option<usize>,
    retries: &mut Retries,
    err: &Error,
    place: Place,
) -> Decision {
    let decision = retries.decide(err, place);
    if !matches!(decision, Decision::Fail | Decision::Shed) {
        ctx.retried
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    ctx.events
        .log(id, Level::Debug, format!("after \"{err}\": {decision}"));
    decision
}

/// Sleeps `delay` before a retry, unless the run is stopped first.
pub(crate) async fn wait(ctx: &Context, delay: Duration) -> Result<(), Error> {
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    }
}

/// For a request that can only be retried: sleeps before the retry of `err`, or returns `err`
/// when it is final or retries are spent.
pub(crate) async fn retry_wait(
    ctx: &Context,
    id: usize,
    retries: &mut Retries,
    err: Error,
) -> Result<(), Error> {
    match decide(ctx, Some(id), retries, &err, Place::Request) {
        Decision::Retry(delay) => pause(ctx, id, retries, &err, delay).await,
        _ => Err(err),
    }
}

/// Says that download `id` retries after `err`, then waits `delay` ([`wait`]).
pub(crate) async fn pause(
    ctx: &Context,
    id: usize,
    retries: &Retries,
    err: &Error,
    delay: Duration,
) -> Result<(), Error> {
    ctx.events.log(
        Some(id),
        Level::Info,
        format!(
            "{err}; retry {} in {:.1}s",
            retries.failures(),
            delay.as_secs_f64()
        ),
    );
    wait(ctx, delay).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Error {
        Error::Status {
            url: "u".into(),
            status: code,
            retry_after: None,
        }
    }

    fn violation() -> Error {
        Error::RangeViolation {
            url: "u".into(),
            detail: "d".into(),
        }
    }

    fn changed() -> Error {
        Error::Changed {
            url: "u".into(),
            detail: "d".into(),
        }
    }

    #[test]
    fn the_decision_table() {
        use Decision::*;
        let extra = Place::Connection {
            others: true,
            mirror: false,
        };
        let last = Place::Connection {
            others: false,
            mirror: false,
        };
        let mirror = Place::Connection {
            others: true,
            mirror: true,
        };
        let file = Place::File {
            restarts: 0,
            mirrors_left: true,
        };
        let retry = |d: Decision| matches!(d, Retry(_));
        for (err, place, want) in [
            (status(503), mirror, DropSource),
            (status(503), extra, Shed),
            (status(429), extra, Shed),
            (status(403), extra, Shed),
            (violation(), extra, OneStream),
            (violation(), last, OneStream),
            (status(404), last, Fail),
            (status(416), Place::Probe { start: 0 }, OneStream),
            (status(416), Place::Probe { start: 10 }, Restart),
            (status(404), Place::Probe { start: 0 }, Fail),
            (violation(), Place::Piece { whole: false }, OneStream),
            (violation(), Place::Piece { whole: true }, Fail),
            (violation(), Place::Segments, OneStream),
            (status(404), Place::Segments, Fail),
            (changed(), file, Restart),
            (status(404), file, DropSource),
            (
                status(404),
                Place::File {
                    restarts: 0,
                    mirrors_left: false,
                },
                Fail,
            ),
            (
                changed(),
                Place::File {
                    restarts: MAX_RESTARTS,
                    mirrors_left: false,
                },
                Fail,
            ),
            (Error::Interrupted, extra, Fail),
        ] {
            let mut r = Retries::new(&RetryPolicy::default());
            assert_eq!(r.decide(&err, place), want, "{err} at {place:?}");
        }
        let mut r = Retries::new(&RetryPolicy::default());
        assert!(
            retry(r.decide(&status(503), last)),
            "the last connection retries"
        );
        assert!(retry(r.decide(&status(503), Place::Request)));
        // A 403 on the last connection: two quick retries, then it is final.
        let mut r = Retries::new(&RetryPolicy::default());
        assert!(retry(r.decide(&status(403), last)));
        assert!(retry(r.decide(&status(403), last)));
        assert_eq!(r.decide(&status(403), last), Fail);
    }

    #[test]
    fn retries_end_when_the_budget_is_spent() {
        let policy = RetryPolicy {
            retries: Some(2),
            ..RetryPolicy::default()
        };
        let mut r = Retries::new(&policy);
        assert!(matches!(
            r.decide(&status(500), Place::Request),
            Decision::Retry(_)
        ));
        assert!(matches!(
            r.decide(&status(500), Place::Request),
            Decision::Retry(_)
        ));
        assert_eq!(r.decide(&status(500), Place::Request), Decision::Fail);
        r.reset();
        assert!(matches!(
            r.decide(&status(500), Place::Request),
            Decision::Retry(_)
        ));
    }
}
