//! One connection of a segmented download: take a claim from the scheduler, fetch it with a
//! ranged GET, check the reply, write the bytes it owns at their offsets, retry from the last
//! byte written, and ask for more work until there is none.
//!
//! A reply is checked before any of its bytes is written: status 206, `Content-Range` exactly
//! as asked, length as promised, validators unchanged. A server that breaks these rules never
//! gets a byte written; the file falls back to fewer connections (see [`Stop`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};

use crate::body::{self, Body};
use crate::error::Error;
use crate::events::Level;
use crate::failure::{self, Decision, Place, Retries};
use crate::http::{self, Ranged, Validators};
use crate::limits::Permit;
use crate::output::Pending;
use crate::range::ByteRange;
use crate::redact::SafeUrl;
use crate::scheduler::{Claim, How, Next};
use crate::transfer::{Source, Transfer};

/// How often a connection measures its speed and asks whether it should give way.
const SPEED_PERIOD: Duration = Duration::from_millis(100);
/// How many times one connection may replace itself for being slow.
const MAX_REPLACEMENTS: u32 = 3;

/// Why a connection stopped working on its claim early.
enum Stop {
    /// The connection leaves; the file continues with the others.
    Shed(Error),
    /// The file cannot go on this way.
    Fail(Error),
}

/// Runs one connection until the scheduler has no more work for it. `first` is the probe's
/// reply with the claim it already covers.
/// The connection holds `_permit` (its share of the run's connection budget) until it ends.
pub(crate) async fn run(
    t: Arc<Transfer>,
    first: Option<(Claim, Body)>,
    _permit: Permit,
    source: Source,
) -> Result<(), Error> {
    let result = work(&t, first, source).await;
    if result.is_err() {
        t.sched.leave();
    }
    result
}

/// Ok only when the scheduler let this connection go (it has already left).
async fn work(
    t: &Transfer,
    mut first: Option<(Claim, Body)>,
    mut source: Source,
) -> Result<(), Error> {
    let mut replacements = 0;
    loop {
        let (claim, reply) = match first.take() {
            Some((claim, reply)) => (claim, Some(reply)),
            None => match t.sched.next() {
                Next::Work(claim) => (claim, None),
                Next::Wait => {
                    t.sched.wait().await;
                    continue;
                }
                Next::Done => return Ok(()),
            },
        };
        if claim.how != How::Hole {
            t.log(
                Level::Debug,
                format!("{:?} bytes {}-{}", claim.how, claim.start, claim.end - 1).to_lowercase(),
            );
        }
        let outcome = fetch(t, &claim, reply, &mut replacements, &mut source).await;
        t.sched.release(&claim);
        match outcome {
            Ok(()) => {}
            Err(Stop::Shed(e)) => {
                t.log(
                    Level::Warning,
                    format!("{e}; continuing with fewer connections"),
                );
                return Ok(());
            }
            Err(Stop::Fail(e)) => return Err(e),
        }
    }
}

/// What ended reading a reply.
enum ReadEnd {
    /// Nothing more to read for this claim (end reached, shortened by a steal, or race lost).
    Done,
    /// The reply ended where it was asked to (`--http-chunk-size`); the claim goes on.
    More,
    /// This connection is this many times slower than its peers: give the rest back.
    Yield(f64),
}

/// Fetches a claim, retrying from the slot's current position after transient failures.
async fn fetch(
    t: &Transfer,
    claim: &Claim,
    mut reply: Option<Body>,
    replacements: &mut u32,
    source: &mut Source,
) -> Result<(), Stop> {
    let mut retries = Retries::new(&t.ctx.options.retry);
    loop {
        let Some(ByteRange { start: from, end }) = t.sched.position(claim) else {
            return Ok(());
        };
        // The probe asked for the same: `--http-chunk-size` bytes from its start, or all.
        let asked = t
            .ctx
            .options
            .http_chunk_size
            .map_or(end, |c| end.min(from + c));
        // The probe's reply comes checked and bounded; one to our own request holds exactly
        // `from..asked`.
        let reply = match reply.take() {
            Some(body) => Ok(body),
            None => request(t, from, asked, *source)
                .await
                .and_then(|r| Body::new(r, Some(asked.min(t.size) - from))),
        };
        let may_yield = *replacements < MAX_REPLACEMENTS;
        let result = match reply {
            Ok(body) => read(t, claim, body, (from, asked), may_yield).await,
            Err(e) => Err((e, false)),
        };
        let (err, progressed) = match result {
            Ok(ReadEnd::Done) => return Ok(()),
            Ok(ReadEnd::More) => {
                retries.reset();
                continue;
            }
            Ok(ReadEnd::Yield(factor)) => {
                *replacements += 1;
                let at = t.sched.position(claim).map_or(end, |r| r.start);
                t.log(
                    Level::Debug,
                    format!(
                        "connection {factor:.1}x slower than its peers at byte {at}: replacing it"
                    ),
                );
                return Ok(());
            }
            Err(e) => e,
        };
        if progressed {
            retries.reset();
        }
        let mut place = Place::Connection {
            others: t.sched.has_peers(),
            mirror: matches!(*source, Source::Mirror(_)),
        };
        loop {
            let decision = failure::decide(&t.ctx, Some(t.id), &mut retries, &err, place);
            match decision {
                Decision::DropSource => {
                    if let Source::Mirror(i) = *source {
                        let mirror = &t.mirrors[i];
                        mirror.dead.store(true, Ordering::Relaxed);
                        t.log(
                            Level::Warning,
                            format!("mirror {}: {err}; not using it", mirror.url),
                        );
                    }
                    *source = Source::Primary;
                }
                Decision::OneStream if t.sched.stop_splitting() => return Err(Stop::Shed(err)),
                Decision::Shed if t.sched.shed() => return Err(Stop::Shed(err)),
                // The others left meanwhile: this is the last connection now.
                Decision::Shed => {
                    place = Place::Connection {
                        others: false,
                        mirror: false,
                    };
                    continue;
                }
                Decision::Retry(delay) => {
                    t.log(
                        Level::Debug,
                        format!(
                            "{err}; retry {} in {:.1}s from byte {}",
                            retries.failures(),
                            delay.as_secs_f64(),
                            t.sched.position(claim).map_or(end, |r| r.start)
                        ),
                    );
                    tokio::time::sleep(delay).await;
                }
                Decision::OneStream | Decision::Restart | Decision::Fail => {
                    return Err(Stop::Fail(err))
                }
            }
            break;
        }
    }
}

/// Sends a ranged GET for `from..end` and checks the reply before anything is read from it.
async fn request(t: &Transfer, from: u64, end: u64, source: Source) -> Result<Response, Error> {
    let range = Ranged {
        start: from,
        end: Some(end),
        if_range: t.source_validators(source).and_then(Validators::if_range),
    };
    let trace = |line| t.log(Level::Debug, line);
    let url = t.source_url(source);
    let (resp, _) = http::get(&t.ctx.client, &t.ctx.options.http, url, Some(range), &trace).await?;
    check_reply(t, &resp, from, end, source)?;
    if let Source::Mirror(i) = source {
        // Its first good reply tells the mirror's own validators; later ones must match them.
        let _ = t.mirrors[i]
            .validators
            .set(Validators::from_headers(resp.headers()));
    }
    Ok(resp)
}

/// The checks of the module docs, in order of how much they say about the server.
fn check_reply(
    t: &Transfer,
    resp: &Response,
    from: u64,
    end: u64,
    source: Source,
) -> Result<(), Error> {
    let url = SafeUrl::new(t.source_url(source));
    let validators = t.source_validators(source);
    if let Some(detail) =
        validators.and_then(|v| v.difference(&Validators::from_headers(resp.headers())))
    {
        return Err(Error::Changed { url, detail });
    }
    let violation = |detail: String| Error::RangeViolation {
        url: url.clone(),
        detail,
    };
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            body::check_range_reply(resp, from, Some(end), Some(t.size)).map_err(violation)?;
            let want = end.min(t.size) - from;
            match resp.content_length() {
                Some(len) if len != want => Err(violation(format!(
                    "Content-Length {len} for a range of {want} bytes"
                ))),
                _ => Ok(()),
            }
        }
        StatusCode::OK => match resp.content_length() {
            // If-Range answered with the whole (different) file.
            Some(len) if len != t.size => Err(Error::Changed {
                url,
                detail: format!("size was {}, now {len}", t.size),
            }),
            _ if validators.and_then(Validators::if_range).is_none() => {
                Err(violation("server ignored Range (HTTP 200)".into()))
            }
            // Same validators, so If-Range would have matched: the server ignores Range.
            _ => Err(violation(
                "server ignored Range (HTTP 200, same validators)".into(),
            )),
        },
        other => Err(violation(format!(
            "unexpected HTTP {} to a range request",
            other.as_u16()
        ))),
    }
}

/// Streams a reply for bytes `from..asked` into the file. On failure, reports whether any
/// byte was written (so the retry budget can start over).
async fn read(
    t: &Transfer,
    claim: &Claim,
    mut body: Body,
    (from, asked): (u64, u64),
    may_yield: bool,
) -> Result<ReadEnd, (Error, bool)> {
    let _live = Live::new(t);
    let mut buf = Pending::default();
    let mut at = from;
    let mut wrote = false;
    let started = Instant::now();
    let (mut last, mut bytes_since, mut speed) = (started, 0u64, 0.0f64);
    loop {
        let chunk = match body.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                if body.overflowed() {
                    t.log(
                        Level::Debug,
                        format!(
                            "the reply for bytes {from}-{} went on past its end; the extra bytes \
                             were dropped",
                            asked - 1
                        ),
                    );
                }
                let more = flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
                if !more {
                    return Ok(ReadEnd::Done);
                }
                if at == asked {
                    return Ok(ReadEnd::More);
                }
                let err = Error::Truncated {
                    url: SafeUrl::new(&t.url),
                    got: at - from,
                    expected: t.sched.position(claim).map_or(at, |r| r.end) - from,
                };
                return Err((err, true));
            }
            Err(e) => {
                // The bytes received before the failure are good: keep them.
                let kept = !buf.is_empty();
                flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
                return Err((e, wrote || kept));
            }
        };
        t.ctx.throttle(chunk.len()).await;
        // A steal may have lowered our end, or a racing peer finished the slot: stop at once
        // rather than at the next flush.
        if t.sched.is_over(claim, at + buf.len() as u64) {
            flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
            return Ok(ReadEnd::Done);
        }
        bytes_since += chunk.len() as u64;
        buf.push(chunk);
        if buf.is_full() {
            let more = flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
            wrote = true;
            if !more {
                return Ok(ReadEnd::Done);
            }
        }
        let dt = last.elapsed();
        if dt >= SPEED_PERIOD {
            let now = bytes_since as f64 / dt.as_secs_f64();
            speed = if speed == 0.0 {
                now
            } else {
                0.5 * speed + 0.5 * now
            };
            (last, bytes_since) = (Instant::now(), 0);
            t.sched.report_speed(claim, speed);
            if t.sched.race_is_hopeless(claim, speed, started.elapsed()) {
                flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
                t.log(
                    Level::Debug,
                    format!(
                        "a fresh connection was no faster at byte {at} ({:.0} KiB/s): the server \
                         is the limit, continuing at its pace",
                        speed / 1024.0
                    ),
                );
                return Ok(ReadEnd::Done);
            }
            let slower = t.sched.should_yield(claim, speed, started.elapsed());
            if let Some(factor) = slower.filter(|_| may_yield && !t.part.write_bound()) {
                flush(t, claim, &mut buf, &mut at).map_err(|e| (e, wrote))?;
                return Ok(ReadEnd::Yield(factor));
            }
        }
    }
}

/// Writes the part of `buf` this connection owns; false when it should stop reading.
fn flush(t: &Transfer, claim: &Claim, buf: &mut Pending, at: &mut u64) -> Result<bool, Error> {
    if buf.is_empty() {
        return Ok(t.sched.position(claim).is_some());
    }
    let len = buf.len() as u64;
    let commit = t.sched.commit(claim, *at, len);
    if let Some(w) = commit.write {
        t.part
            .write_pending(buf, (w.start - *at) as usize, w.len() as usize, w.start)?;
        t.sched.written(w);
        t.counters.downloaded.fetch_add(w.len(), Ordering::Relaxed);
    }
    buf.clear();
    *at += len;
    Ok(commit.more)
}

/// Counts a connection as live while it receives a body.
struct Live<'a>(&'a Transfer);

impl<'a> Live<'a> {
    fn new(t: &'a Transfer) -> Live<'a> {
        t.counters.connections.fetch_add(1, Ordering::Relaxed);
        Live(t)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }
}
