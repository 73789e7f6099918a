//! The first request of a download and what its reply says: a range reply (the file can be
//! split; its body becomes the first segment), a whole-file reply (one stream), or a bad range
//! reply (a plain GET instead). While a slow probe is in flight, the file's extra connections
//! open ([`warm_up`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use url::Url;

use crate::context::Context;
use crate::error::Error;
use crate::events::Level;
use crate::failure::{self, retry_wait, Decision, Place, Retries};
use crate::http::{self, Ranged, Validators};
use crate::limits::Permit;
use crate::redact::SafeUrl;

/// A probe still unanswered after this long means a distant server: time to [`warm_up`].
pub(crate) const WARM_UP_AFTER: Duration = Duration::from_millis(10);

/// How long segments wait for early connections still opening before they open their own.
const WARM_UP_PATIENCE: Duration = Duration::from_secs(2);

/// The first reply of a download.
pub(crate) struct Probe {
    pub resp: Response,
    pub url: Url,
    pub validators: Validators,
    pub(crate) kind: ProbeKind,
    /// Where the reply's body starts.
    pub(crate) start: u64,
}

impl Probe {
    /// The file's size, when the server supports ranges (a 206 with its total).
    pub fn total(&self) -> Option<u64> {
        match self.kind {
            ProbeKind::Ranged { total, .. } => Some(total),
            ProbeKind::Full { .. } => None,
        }
    }

    /// The file's size, if the server said.
    pub fn size(&self) -> Option<u64> {
        match self.kind {
            ProbeKind::Ranged { total, .. } => Some(total),
            ProbeKind::Full { size } => size,
        }
    }
}

pub(crate) enum ProbeKind {
    /// 206 with a correct `Content-Range`: segmented download of `total` bytes, of which the
    /// reply holds those up to `end` (exclusive).
    Ranged { total: u64, end: u64 },
    /// 200: the whole file in one stream, of this length if known.
    Full { size: Option<u64> },
}

pub(crate) fn check_filesize_max(ctx: &Context, url: &Url, received: u64) -> Result<(), Error> {
    match ctx.options.filesize.1 {
        Some(max) if received > max => check_filesize(ctx, url, received),
        _ => Ok(()),
    }
}

/// `--min-filesize` and `--max-filesize` against a size (announced, or received so far).
pub(crate) fn check_filesize(ctx: &Context, url: &Url, size: u64) -> Result<(), Error> {
    let detail = match ctx.options.filesize {
        (Some(min), _) if size < min => format!("{size} bytes is less than --min-filesize {min}"),
        (_, Some(max)) if size > max => format!("{size} bytes is more than --max-filesize {max}"),
        _ => return Ok(()),
    };
    Err(Error::FileSize {
        url: SafeUrl::new(url),
        detail,
    })
}

/// The first request: `Range: bytes=start-` (or up to `end`, exclusive, when the caller knows
/// where the bytes it needs stop), retried like any other.
pub(crate) async fn probe(
    ctx: &Context,
    id: usize,
    url: &Url,
    (start, end): (u64, Option<u64>),
    if_range: Option<&str>,
) -> Result<Probe, Error> {
    let mut retries = Retries::new(&ctx.options.retry);
    let end = match (end, ctx.options.http_chunk_size) {
        (Some(end), Some(c)) => Some(end.min(start + c)),
        (end, c) => end.or(c.map(|c| start + c)),
    };
    loop {
        let range = Ranged {
            start,
            end,
            if_range,
        };
        let err = match http::get(
            &ctx.client,
            &ctx.options.http,
            url,
            Some(range),
            &ctx.tracer(id),
        )
        .await
        {
            Ok((resp, final_url)) => {
                return classify_probe(ctx, id, url, resp, final_url, (start, end)).await
            }
            Err(e) => e,
        };
        match failure::decide(ctx, Some(id), &mut retries, &err, Place::Probe { start }) {
            // An empty file (some servers answer 416 to `bytes=0-`): a plain GET settles it.
            Decision::OneStream => {
                let (resp, final_url) = plain_get(ctx, id, url).await?;
                return Ok(full_probe(resp, final_url));
            }
            // Our partial file is longer than the current one: it changed.
            Decision::Restart => {
                return Err(Error::Changed {
                    url: SafeUrl::new(url),
                    detail: "it is now shorter than the part already downloaded".into(),
                });
            }
            Decision::Retry(delay) => failure::pause(ctx, id, &retries, &err, delay).await?,
            _ => return Err(err),
        }
    }
}

pub(crate) async fn classify_probe(
    ctx: &Context,
    id: usize,
    url: &Url,
    resp: Response,
    final_url: Url,
    (start, end): (u64, Option<u64>),
) -> Result<Probe, Error> {
    if resp.status() != StatusCode::PARTIAL_CONTENT {
        return Ok(full_probe(resp, final_url));
    }
    match crate::body::check_range_reply(&resp, start, end, None) {
        Ok(total) => Ok(Probe {
            validators: Validators::from_headers(resp.headers()),
            resp,
            url: final_url,
            kind: ProbeKind::Ranged {
                total,
                end: end.map_or(total, |e| e.min(total)),
            },
            start,
        }),
        Err(detail) => {
            ctx.events.log(
                Some(id),
                Level::Warning,
                format!("{final_url}: server sent a bad range reply ({detail}); downloading over a single connection"),
            );
            let (resp, final_url) = plain_get(ctx, id, url).await?;
            Ok(full_probe(resp, final_url))
        }
    }
}

pub(crate) fn full_probe(resp: Response, url: Url) -> Probe {
    Probe {
        validators: Validators::from_headers(resp.headers()),
        kind: ProbeKind::Full {
            size: crate::body::file_bytes(&resp),
        },
        resp,
        url,
        start: 0,
    }
}

/// A GET without `Range`, retried.
pub(crate) async fn plain_get(
    ctx: &Context,
    id: usize,
    url: &Url,
) -> Result<(Response, Url), Error> {
    let mut retries = Retries::new(&ctx.options.retry);
    loop {
        match http::get(&ctx.client, &ctx.options.http, url, None, &ctx.tracer(id)).await {
            Ok(ok) => return Ok(ok),
            Err(e) => retry_wait(ctx, id, &mut retries, e).await?,
        }
    }
}

/// Connections opened while a slow probe was in flight ([`warm_up`]): their permits, for the
/// segments to take over, and a signal each time one is ready.
#[derive(Default)]
pub(crate) struct Warm {
    pub(crate) permits: std::sync::Mutex<Vec<Permit>>,
    /// Connections still opening: the segments wait for them rather than open others...
    pub(crate) opening: std::sync::atomic::AtomicUsize,
    /// ...for a while after the first request went out ([`WARM_UP_PATIENCE`]).
    pub(crate) since: std::sync::OnceLock<Instant>,
    pub(crate) ready: tokio::sync::Notify,
}

impl Warm {
    /// A permit for the next segment: an early connection's when one is ready; none while some
    /// are still opening (a server that stalls them gets new ones after a while); else a new one
    /// if the limits allow.
    pub(crate) fn permit(&self, ctx: &Context, host: &str) -> Option<Permit> {
        let ready = self.permits.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let patient = self
            .since
            .get()
            .is_some_and(|t| t.elapsed() < WARM_UP_PATIENCE);
        match ready {
            Some(p) => Some(p),
            None if patient && self.opening.load(Ordering::Acquire) > 0 => None,
            None => ctx.limits.try_acquire(host),
        }
    }
}

/// Opens the file's extra connections while its probe is still in flight, once that has taken
/// longer than [`WARM_UP_AFTER`] (a distant server): each sends `Range: bytes=0-0` and goes back
/// to the pool with its permit, so when the probe's reply says how to split the file the segments'
/// requests go out on open connections, a round trip sooner. Best effort: failures are ignored,
/// and only free connection permits are used.
pub(crate) fn warm_up(ctx: &Arc<Context>, id: usize, url: &Url, warm: &Arc<Warm>) {
    let _ = warm.since.set(Instant::now());
    let host = url.host_str().unwrap_or_default();
    for _ in 1..ctx.options.connections {
        let Some(permit) = ctx.limits.try_acquire(host) else {
            break;
        };
        let (ctx, url, warm) = (Arc::clone(ctx), url.clone(), Arc::clone(warm));
        warm.opening.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let range = Ranged {
                start: 0,
                end: Some(1),
                if_range: None,
            };
            let trace = ctx.tracer(id);
            let reply = http::get(&ctx.client, &ctx.options.http, &url, Some(range), &trace);
            if let Ok((resp, _)) = reply.await {
                // One byte: read it, and the connection is reusable. A server that ignores the
                // range would send the whole file: that connection is dropped instead.
                if resp.status() == StatusCode::PARTIAL_CONTENT && resp.bytes().await.is_ok() {
                    // The pool takes the connection back in a task of its own: let it run first,
                    // or the segment this permit goes to would open a new connection.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            warm.permits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(permit);
            warm.opening.fetch_sub(1, Ordering::AcqRel);
            warm.ready.notify_one();
        });
    }
}
