//! One file, start to finish: probe, name, decide whether earlier bytes can be reused, fetch
//! (segmented over many connections, or as one stream when the server cannot do ranges), verify,
//! and only then rename `FILE.part` to `FILE`.
//!
//! The probe is the first segment: a `GET` with `Range: bytes=S-` that learns size, validators
//! and range support from its headers and then keeps streaming its body into the file while the
//! other connections start. There is no HEAD round trip.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{header, Client, Response, StatusCode};
use tokio::task::JoinSet;
use url::Url;

use crate::body::Body;
use crate::checksum::{self, Checksum};
use crate::error::Error;
use crate::events::{self, Counters, Events, Level, Progress};
use crate::http::{self, HttpOptions, Ranged, Validators};
use crate::limits::{Limits, Permit};
use crate::naming;
use crate::output::{self, part_path, PartFile, Pending};
use crate::range::{check_content_range, RangeSet};
use crate::ratelimit::RateLimiter;
use crate::request::{Outcome, Request};
use crate::resume::{self, state_path, ResumeState};
use crate::retry::{Backoff, RetryPolicy};
use crate::scheduler::{Next, Scheduler};
use crate::segment;
use crate::shutdown::Shutdown;

/// How often the resume state is saved while downloading.
const SAVE_EVERY: Duration = Duration::from_millis(250);
/// A probe still unanswered after this long means a distant server: time to [`warm_up`].
const WARM_UP_AFTER: Duration = Duration::from_millis(10);
/// How long segments wait for early connections still opening before they open their own.
const WARM_UP_PATIENCE: Duration = Duration::from_secs(2);
/// A file that changes on the server more often than this while we download it is an error.
const MAX_RESTARTS: u32 = 2;

/// Settings for every download of a run (built by `DownloaderBuilder`).
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub http: HttpOptions,
    /// Connections per file (`-x`).
    pub connections: usize,
    /// Smallest range worth splitting off to another connection (`--chunk-size`).
    pub min_split: u64,
    pub retry: RetryPolicy,
    /// Bytes per second for each file (`--limit-rate`).
    pub limit_rate: Option<u64>,
    /// Most bytes one request may ask for (`--http-chunk-size`).
    pub http_chunk_size: Option<u64>,
    /// `--min-filesize`, `--max-filesize`: files announced outside these are not downloaded.
    pub filesize: (Option<u64>, Option<u64>),
    /// Reuse the bytes of an interrupted download (default; `--no-continue` clears it).
    pub resume: bool,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Set a finished file's modification time from the server's `Last-Modified`.
    pub remote_time: bool,
    /// Time between two progress events of one file.
    pub progress_interval: Duration,
    /// Files downloaded at the same time (`-j`).
    pub concurrent_downloads: usize,
    /// Connections of the whole run, at most.
    pub max_connections: usize,
    /// Connections to one host, at most.
    pub max_connections_per_host: usize,
    /// Open the extra connections while a slow probe is in flight ([`warm_up`]): for a run of
    /// one file, where they will be used (a batch reuses its connections anyway).
    pub warm_up: bool,
    /// A failed file does not fail the run (HLS/DASH fragments, unless
    /// `--abort-on-unavailable-fragment`: yt-dlp skips missing pieces).
    pub failures_allowed: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http: HttpOptions::default(),
            connections: 8,
            min_split: 1 << 20,
            retry: RetryPolicy::default(),
            limit_rate: None,
            http_chunk_size: None,
            filesize: (None, None),
            resume: true,
            overwrite: false,
            remote_time: false,
            progress_interval: Duration::from_millis(500),
            concurrent_downloads: 16,
            max_connections: 64,
            max_connections_per_host: 16,
            failures_allowed: false,
            warm_up: false,
        }
    }
}

/// What every download of a run shares: one HTTP client (so connections are reused), the
/// options, the progress channel and the stop signal.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub client: Client,
    pub options: Options,
    pub events: Events,
    pub shutdown: Shutdown,
    /// Connection permits, shared by every download of the run.
    pub limits: Arc<Limits>,
    /// Files transferring at once (`-j`). A file gives its permit back when its last byte has
    /// arrived, so the next file's first request overlaps this one's sync and rename.
    pub transfers: Arc<tokio::sync::Semaphore>,
    /// `--limit-rate`: one budget shared by every connection of the run.
    pub rate: Option<Arc<RateLimiter>>,
    /// The file's own rate limit (`limit-rate=` in an input file).
    pub file_rate: Option<Arc<RateLimiter>>,
    /// Output paths being written by this run.
    claimed: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

impl Context {
    /// A `-v` logger for the requests of download `id`.
    pub fn tracer(&self, id: usize) -> impl Fn(String) + Sync + '_ {
        move |line| self.events.log(Some(id), Level::Debug, line)
    }

    /// Builds the HTTP client for `options`.
    pub fn new(options: Options, events: Events, shutdown: Shutdown) -> Result<Context, Error> {
        Ok(Context {
            client: http::client(&options.http)?,
            limits: Arc::new(Limits::new(
                options.max_connections,
                options.max_connections_per_host,
            )),
            rate: options.limit_rate.map(|r| Arc::new(RateLimiter::new(r))),
            transfers: Arc::new(tokio::sync::Semaphore::new(
                options.concurrent_downloads.max(1),
            )),
            file_rate: None,
            claimed: Default::default(),
            options,
            events,
            shutdown,
        })
    }

    /// This context with a job's own settings applied (same client, limits and signal).
    fn for_job(&self, job: &Request) -> Result<Context, Error> {
        let mut ctx = self.clone();
        let h = &mut ctx.options.http;
        for (name, value) in &job.headers {
            http::check_header(name, value)?;
        }
        h.headers.extend(job.headers.iter().cloned());
        if let Some(r) = &job.referer {
            h.referer = Some(r.clone());
        }
        if let Some(ua) = &job.user_agent {
            h.user_agent = ua.clone();
        }
        if let Some(n) = job.connections {
            ctx.options.connections = n;
        }
        ctx.options.filesize = job.size_bounds;
        ctx.options.failures_allowed = job.skip_failed_pieces;
        ctx.file_rate = job.limit_rate.map(|r| Arc::new(RateLimiter::new(r)));
        Ok(ctx)
    }

    /// Waits for a transfer slot (`-j`), then for a connection to `host`: what every download
    /// needs before its first request. The slot comes first so that files queue in order.
    pub async fn admit(&self, host: &str) -> (tokio::sync::OwnedSemaphorePermit, Permit) {
        let transfer = Arc::clone(&self.transfers)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        (transfer, self.limits.acquire(host).await)
    }

    /// Accounts for `n` received bytes against the run's and the file's rate limits.
    pub async fn throttle(&self, n: usize) {
        if let Some(r) = &self.rate {
            r.take(n).await;
        }
        if let Some(r) = &self.file_rate {
            r.take(n).await;
        }
    }
}

/// Downloads `job`; `id` tells its events apart from other downloads'. Emits `Finished` or
/// `Failed`, then `Ended`, for it.
pub(crate) async fn download(ctx: Arc<Context>, id: usize, job: Request) -> Result<Outcome, Error> {
    let result = match ctx.for_job(&job) {
        Ok(ctx) => download_inner(&Arc::new(ctx), id, &job).await,
        Err(e) => Err(e),
    };
    ctx.events.ended(id, &job.url, &result);
    result
}

/// Tries the job's URL, then each mirror while the failure is about the source (a 404, a dead
/// host), not about the file or the user.
async fn download_inner(ctx: &Arc<Context>, id: usize, job: &Request) -> Result<Outcome, Error> {
    if !job.pieces.is_empty() {
        return crate::ordered::join(ctx, id, job).await;
    }
    if let Some(writer) = &job.writer {
        return crate::ordered::to_writer(ctx, id, job, writer.clone()).await;
    }
    let mut result = download_from(ctx, id, job, &job.url).await;
    for mirror in &job.mirrors {
        match &result {
            Err(e @ (Error::Status { .. } | Error::Transport { .. } | Error::Redirect { .. })) => {
                ctx.events.log(
                    Some(id),
                    Level::Warning,
                    format!("{e}; trying mirror {mirror}"),
                );
                result = download_from(ctx, id, job, mirror).await;
            }
            _ => break,
        }
    }
    result
}

async fn download_from(
    ctx: &Arc<Context>,
    id: usize,
    job: &Request,
    url: &str,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let url = http::parse_url(url)?;
    let mut fresh = !ctx.options.resume;
    let mut restarts = 0;
    loop {
        match attempt(ctx, id, job, &url, fresh, started, true).await {
            Err(Error::Changed { url, detail }) if restarts < MAX_RESTARTS => {
                ctx.events.log(
                    Some(id),
                    Level::Warning,
                    format!("{url}: the file changed on the server ({detail}); starting over"),
                );
                restarts += 1;
                fresh = true;
            }
            other => return other,
        }
    }
}

/// Resume state for `output`, if it exists, matches its `.part`, and can be validated.
fn load_resume(ctx: &Context, id: usize, output: &Path) -> Option<ResumeState> {
    let part = part_path(output);
    let state = resume::load(&state_path(&part))?;
    let part_len = std::fs::metadata(&part).ok()?.len();
    if part_len != state.size {
        return None;
    }
    if state.validators.if_range().is_none() {
        ctx.events.log(
            Some(id),
            Level::Warning,
            format!(
                "{}: the server gave no ETag or Last-Modified, so the partial download cannot be \
                 checked against the current file; starting over",
                output.display()
            ),
        );
        return None;
    }
    Some(state)
}

/// The first reply of a download.
pub(crate) struct Probe {
    pub resp: Response,
    pub url: Url,
    pub validators: Validators,
    kind: ProbeKind,
    /// Where the reply's body starts.
    start: u64,
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

fn check_filesize_max(ctx: &Context, url: &Url, received: u64) -> Result<(), Error> {
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
        url: url.to_string(),
        detail,
    })
}

enum ProbeKind {
    /// 206 with a correct `Content-Range`: segmented download of `total` bytes, of which the
    /// reply holds those up to `end` (exclusive).
    Ranged { total: u64, end: u64 },
    /// 200: the whole file in one stream, of this length if known.
    Full { size: Option<u64> },
}

/// One pass at the file; `Changed` makes the caller start over with `fresh`.
async fn attempt(
    ctx: &Arc<Context>,
    id: usize,
    job: &Request,
    url: &Url,
    fresh: bool,
    started: Instant,
    guess_name: bool,
) -> Result<Outcome, Error> {
    let known_output = job.output.as_deref().map(|o| job.place(o));
    // Without -o the name usually comes from the URL. Guessing it before the first request
    // means a finished file needs no request at all, and an interrupted one resumes from its
    // first missing byte instead of a wasted `bytes=0-`.
    let guess = known_output
        .clone()
        .or_else(|| guess_name.then(|| job.place(Path::new(&naming::file_name(None, url)))));
    if let Some(out) = &known_output {
        if let Some(done) = existing(ctx, job, out, started)? {
            return Ok(done);
        }
    } else if let Some(done) = guess.as_deref().and_then(|g| {
        let meta = std::fs::metadata(g).ok()?;
        recorded(&job.url, g, &meta, started)
    }) {
        return Ok(done);
    }
    let mut candidate = match &guess {
        Some(out) if !fresh => load_resume(ctx, id, out),
        _ => None,
    };
    // A resumed file's probe asks for its first gap only: an open-ended range would have the
    // server send the parts already on disk until the connection closes.
    let first_gap = candidate
        .as_ref()
        .and_then(|c| c.done.gaps(c.size).first().copied());
    let (start, end) = first_gap.map_or((0, None), |g| (g.start, Some(g.end)));
    let if_range = candidate
        .as_ref()
        .and_then(|c| c.validators.if_range().map(str::to_owned));
    // Nothing is on disk yet, so a stop while waiting or probing needs no saving.
    let host = url.host_str().unwrap_or_default().to_string();
    let warm = Arc::new(Warm::default());
    let (transfer, permit, probe) = tokio::select! {
        p = async {
            let (transfer, permit) = ctx.admit(&host).await;
            let probe = probe(ctx, id, url, (start, end), if_range.as_deref());
            let warm_up = async {
                if ctx.options.warm_up {
                    tokio::time::sleep(WARM_UP_AFTER).await;
                    warm_up(ctx, id, url, &warm);
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                p = probe => (transfer, permit, p),
                _ = warm_up => unreachable!("warm_up never ends"),
            }
        } => (p.0, p.1, p.2?),
        _ = ctx.shutdown.wait() => return Err(Error::Interrupted),
    };

    if let Some(size) = probe.size() {
        check_filesize(ctx, url, size)?;
    }
    let output = match known_output {
        Some(out) => out,
        None => {
            let cd = probe
                .resp
                .headers()
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok());
            let out = job.place(Path::new(&naming::file_name(cd, &probe.url)));
            if let Some(done) = existing(ctx, job, &out, started)? {
                return Ok(done);
            }
            if guess.as_ref() != Some(&out) {
                if probe.start != 0 {
                    // We resumed under the URL's name, but the server names the file otherwise:
                    // that state is not this file's. Ask again, from byte 0, without guessing.
                    drop((probe, permit, transfer));
                    return Box::pin(attempt(ctx, id, job, url, fresh, started, false)).await;
                }
                candidate = if fresh {
                    None
                } else {
                    load_resume(ctx, id, &out)
                };
            }
            out
        }
    };

    let _claim = OutputClaim::new(ctx, &output)?;
    let mut checksums = job.checksums.clone();
    let full_body = matches!(probe.kind, ProbeKind::Full { .. });
    // The digests of a compressed reply are the compressed bytes'.
    if crate::body::is_plain(&probe.resp) {
        checksums.extend(checksum::from_headers(probe.resp.headers(), full_body));
    }
    // Every mirror but the one this attempt probed (it may be a mirror, the job's URL failing).
    let mirrors = std::iter::once(&job.url)
        .chain(&job.mirrors)
        .filter_map(|m| http::parse_url(m).ok())
        .filter(|m| m != url)
        .collect();
    let modified = probe
        .validators
        .last_modified
        .as_deref()
        .filter(|_| ctx.options.remote_time)
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let file = FileSpec {
        id,
        url: job.url.clone(),
        mirrors,
        output,
        checksums,
        started,
        modified,
    };
    let output = &file.output;

    match probe.kind {
        ProbeKind::Ranged { total, end } => {
            let done = match candidate {
                Some(c)
                    if c.size == total && c.validators.difference(&probe.validators).is_none() =>
                {
                    c.done
                }
                Some(c) => {
                    let detail = c
                        .validators
                        .difference(&probe.validators)
                        .unwrap_or_else(|| format!("size was {}, now {total}", c.size));
                    if probe.start != 0 {
                        // This reply starts mid-file; a fresh attempt needs one from byte 0.
                        return Err(Error::Changed {
                            url: url.to_string(),
                            detail,
                        });
                    }
                    ctx.events.log(
                        Some(id),
                        Level::Warning,
                        format!(
                            "{}: cannot resume ({detail}); starting over",
                            output.display()
                        ),
                    );
                    RangeSet::new()
                }
                None => RangeSet::new(),
            };
            // Early connections to the host the probe was redirected away from are no use.
            let warm = match probe.url.host_str() == url.host_str() {
                true => warm,
                false => Arc::default(),
            };
            let permits = (permit, transfer, warm);
            match segmented(ctx, &file, probe, (total, end), done, permits).await {
                // The server broke range rules with no connection left to try: one plain stream.
                Err(Error::RangeViolation { detail, .. }) => {
                    ctx.events.log(
                        Some(id),
                        Level::Warning,
                        format!("{url}: {detail}; downloading over a single connection"),
                    );
                    let (transfer, permit) = ctx.admit(&host).await;
                    let (resp, final_url) = plain_get(ctx, id, url).await?;
                    let size = crate::body::file_bytes(&resp);
                    let v = Validators::default();
                    stream(ctx, &file, resp, final_url, size, v, (permit, transfer)).await
                }
                other => other,
            }
        }
        ProbeKind::Full { size } => {
            if candidate.is_some() {
                ctx.events.log(
                    Some(id),
                    Level::Warning,
                    format!(
                        "{}: the server sent the whole file instead of the missing part (it changed \
                         or does not support ranges); starting over",
                        output.display()
                    ),
                );
            }
            let v = probe.validators;
            stream(
                ctx,
                &file,
                probe.resp,
                probe.url,
                size,
                v,
                (permit, transfer),
            )
            .await
        }
    }
}

/// What to do about an output file that already exists: skip it when fastdl can vouch that it
/// is this download, complete (its completion record matches, or every `--checksum` matches);
/// otherwise refuse to touch it unless `--overwrite`.
fn existing(
    ctx: &Context,
    job: &Request,
    output: &Path,
    started: Instant,
) -> Result<Option<Outcome>, Error> {
    if ctx.options.overwrite {
        return Ok(None);
    }
    let Ok(meta) = std::fs::metadata(output) else {
        return Ok(None);
    };
    if let Some(done) = recorded(&job.url, output, &meta, started) {
        return Ok(Some(done));
    }
    if meta.is_file()
        && !job.checksums.is_empty()
        && checksum::verify(output, &job.checksums).is_ok()
    {
        return Ok(Some(skipped(output, meta.len(), started)));
    }
    Err(Error::Exists {
        path: output.to_owned(),
    })
}

/// `output` (whose metadata is `meta`) as a skipped download, if its completion record names
/// `key` (the job's URL; a fragment adds its byte range) and the file is unchanged since.
pub(crate) fn recorded(
    key: &str,
    output: &Path,
    meta: &std::fs::Metadata,
    started: Instant,
) -> Option<Outcome> {
    if !meta.is_file() {
        return None;
    }
    let record = output::read_record(output)?;
    (record.url == crate::http::hide_passwords(key) && record.matches(meta))
        .then(|| skipped(output, meta.len(), started))
}

fn skipped(output: &Path, bytes: u64, started: Instant) -> Outcome {
    Outcome {
        path: Some(output.to_owned()),
        bytes,
        resumed: 0,
        elapsed: started.elapsed(),
        skipped: true,
    }
}

/// An output path taken by a download of this run, so two batch entries that end up with the
/// same name (say, from `Content-Disposition`) cannot write the same file. Released on drop.
pub(crate) struct OutputClaim {
    claimed: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    path: PathBuf,
}

impl OutputClaim {
    pub(crate) fn new(ctx: &Context, path: &Path) -> Result<OutputClaim, Error> {
        let mut set = ctx.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(path.to_owned()) {
            return Err(Error::Invalid(format!(
                "{}: another download of this run writes the same file",
                path.display()
            )));
        }
        Ok(OutputClaim {
            claimed: Arc::clone(&ctx.claimed),
            path: path.to_owned(),
        })
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        let mut set = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.path);
    }
}

/// Connections opened while a slow probe was in flight ([`warm_up`]): their permits, for the
/// segments to take over, and a signal each time one is ready.
#[derive(Default)]
pub(crate) struct Warm {
    permits: std::sync::Mutex<Vec<Permit>>,
    /// Connections still opening: the segments wait for them rather than open others...
    opening: std::sync::atomic::AtomicUsize,
    /// ...for a while after the first request went out ([`WARM_UP_PATIENCE`]).
    since: std::sync::OnceLock<Instant>,
    ready: tokio::sync::Notify,
}

impl Warm {
    /// A permit for the next segment: an early connection's when one is ready; none while some
    /// are still opening (a server that stalls them gets new ones after a while); else a new one
    /// if the limits allow.
    fn permit(&self, ctx: &Context, host: &str) -> Option<Permit> {
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
fn warm_up(ctx: &Arc<Context>, id: usize, url: &Url, warm: &Arc<Warm>) {
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

/// Sleeps before a retry of `err`, or returns `err` when it is final or retries are spent.
pub(crate) async fn retry_wait(
    ctx: &Context,
    id: usize,
    backoff: &mut Backoff,
    err: Error,
) -> Result<(), Error> {
    let Some(delay) = backoff.next_delay(&err) else {
        return Err(err);
    };
    ctx.events.log(
        Some(id),
        Level::Info,
        format!(
            "{err}; retry {} in {:.1}s",
            backoff.failures(),
            delay.as_secs_f64()
        ),
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    }
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
    let mut backoff = Backoff::new(&ctx.options.retry);
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
            // 416 to `bytes=0-` is how some servers answer for an empty file; a plain GET settles it.
            Err(Error::Status { status: 416, .. }) if start == 0 => {
                let (resp, final_url) = plain_get(ctx, id, url).await?;
                return Ok(full_probe(resp, final_url));
            }
            // Our partial file is longer than the current one: it changed.
            Err(Error::Status { status: 416, .. }) => {
                return Err(Error::Changed {
                    url: url.to_string(),
                    detail: "it is now shorter than the part already downloaded".into(),
                });
            }
            Err(e) => e,
        };
        retry_wait(ctx, id, &mut backoff, err).await?;
    }
}

async fn classify_probe(
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
    let cr = resp
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    let checked = match crate::body::range_problem(&resp) {
        Some(detail) => Err(detail),
        None => check_content_range(cr, start, end, None),
    };
    match checked {
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

fn full_probe(resp: Response, url: Url) -> Probe {
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
async fn plain_get(ctx: &Context, id: usize, url: &Url) -> Result<(Response, Url), Error> {
    let mut backoff = Backoff::new(&ctx.options.retry);
    loop {
        match http::get(&ctx.client, &ctx.options.http, url, None, &ctx.tracer(id)).await {
            Ok(ok) => return Ok(ok),
            Err(e) => retry_wait(ctx, id, &mut backoff, e).await?,
        }
    }
}

/// What a download produces, fixed once its name is known.
struct FileSpec {
    id: usize,
    /// The job's URL as given, for the completion record.
    url: String,
    /// Other servers of the same file, for extra connections (input lists' TAB mirrors).
    mirrors: Vec<Url>,
    output: PathBuf,
    checksums: Vec<Checksum>,
    started: Instant,
    /// The modification time to give the finished file (`--remote-time`).
    modified: Option<std::time::SystemTime>,
}

/// Shared by the connections of one segmented download.
pub(crate) struct Transfer {
    pub ctx: Arc<Context>,
    pub id: usize,
    /// The URL after the probe's redirects; every segment asks it directly.
    pub url: Url,
    pub size: u64,
    pub validators: Validators,
    /// Other servers of the same file; connections are spread over them and `url`.
    pub mirrors: Vec<Mirror>,
    next_source: std::sync::atomic::AtomicUsize,
    pub part: PartFile,
    pub sched: Scheduler,
    pub counters: Arc<Counters>,
}

/// Another server of the file. Its replies are checked like the probe's server's, against the
/// file's size and its own validators (servers' ETags differ), learned from its first reply.
/// One that fails is dropped: its connections go to the probe's server.
pub(crate) struct Mirror {
    pub url: Url,
    pub validators: std::sync::OnceLock<Validators>,
    pub dead: std::sync::atomic::AtomicBool,
}

/// Where a connection fetches from: the probe's server, or one of the mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Primary,
    Mirror(usize),
}

impl Transfer {
    /// The source for a new connection: the probe's server and the live mirrors in turn.
    pub fn pick_source(&self) -> Source {
        let live: Vec<usize> = (0..self.mirrors.len())
            .filter(|&i| !self.mirrors[i].dead.load(Ordering::Relaxed))
            .collect();
        let n = self.next_source.fetch_add(1, Ordering::Relaxed) % (live.len() + 1);
        match n {
            0 => Source::Primary,
            n => Source::Mirror(live[n - 1]),
        }
    }

    pub fn source_url(&self, source: Source) -> &Url {
        match source {
            Source::Primary => &self.url,
            Source::Mirror(i) => &self.mirrors[i].url,
        }
    }

    /// The validators `source`'s replies must carry, if known yet.
    pub fn source_validators(&self, source: Source) -> Option<&Validators> {
        match source {
            Source::Primary => Some(&self.validators),
            Source::Mirror(i) => self.mirrors[i].validators.get(),
        }
    }

    pub fn log(&self, level: Level, message: String) {
        self.ctx.events.log(Some(self.id), level, message);
    }

    /// Syncs the data, then records it: the state never claims bytes that are not on disk.
    async fn save(&self, state: &Path) -> Result<(), Error> {
        let done = self.sched.done();
        self.part.sync().await?;
        let s = ResumeState::new(self.url.as_str(), self.size, self.validators.clone(), done);
        let path = state.to_owned();
        tokio::task::spawn_blocking(move || resume::save(&path, &s))
            .await
            .expect("state save does not panic")
    }
}

async fn segmented(
    ctx: &Arc<Context>,
    file: &FileSpec,
    probe: Probe,
    (total, reply_end): (u64, u64),
    done: RangeSet,
    (permit, transfer, warm): (Permit, tokio::sync::OwnedSemaphorePermit, Arc<Warm>),
) -> Result<Outcome, Error> {
    let part_file = part_path(&file.output);
    let state = state_path(&part_file);
    let resumed = done.len();
    let part = PartFile::open(&part_file, Some(total), resumed > 0).await?;
    let counters = Arc::new(Counters::default());
    counters.downloaded.store(resumed, Ordering::Relaxed);
    let t = Arc::new(Transfer {
        ctx: Arc::clone(ctx),
        id: file.id,
        url: probe.url.clone(),
        size: total,
        validators: probe.validators.clone(),
        mirrors: file
            .mirrors
            .iter()
            .map(|url| Mirror {
                url: url.clone(),
                validators: Default::default(),
                dead: Default::default(),
            })
            .collect(),
        next_source: Default::default(),
        part,
        sched: Scheduler::new(total, done, ctx.options.min_split, ctx.options.connections),
        counters: Arc::clone(&counters),
    });
    // No state is written before the first save tick: a file that finishes within it (most
    // files of a batch) never needs one, and two fsyncs per file would dominate a batch.
    let files = (file.output.as_path(), part_file.as_path());
    let base = ctx
        .events
        .start(file.id, probe.url.as_str(), files, Some(total), resumed);
    let sampler = events::spawn_sampler(
        ctx.events.clone(),
        Arc::clone(&counters),
        base.clone(),
        ctx.options.progress_interval,
    );

    // The probe's body covers the first hole: hand both to the first connection before any other
    // connection can take that hole.
    let mut workers = JoinSet::new();
    if t.sched.join() {
        let first = match t.sched.next() {
            Next::Work(claim) if claim.start == probe.start => {
                let body = Body::new(probe.resp, Some(reply_end - probe.start))?;
                Some((claim, body))
            }
            Next::Work(claim) => {
                t.sched.release(&claim);
                None
            }
            _ => None,
        };
        workers.spawn(segment::run(Arc::clone(&t), first, permit, Source::Primary));
    }
    grow(&t, &mut workers, &warm);

    let mut saver = tokio::time::interval(SAVE_EVERY);
    saver.tick().await;
    let mut failure = None;
    // Set once every byte is on disk. The branch below must then be disabled: its future is
    // ready at once from then on, and a loop that never waits starves the runtime threads that
    // the aborted connections need to wind down (a livelock seen with two files on two cores).
    let mut finished = false;
    while !workers.is_empty() {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                    workers.abort_all();
                }
                Some(Err(join)) if join.is_cancelled() => {}
                Some(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            },
            _ = saver.tick() => {
                t.save(&state).await?;
                // Connections other files gave back may now be free.
                grow(&t, &mut workers, &warm);
            }
            // A connection opened early is ready for a segment.
            _ = warm.ready.notified() => grow(&t, &mut workers, &warm),
            // Every byte is on disk: connections still reading (a race's loser) are not needed.
            _ = t.sched.wait_finished(), if failure.is_none() && !finished => {
                finished = true;
                workers.abort_all();
            }
            _ = ctx.shutdown.wait(), if failure.is_none() => {
                failure = Some(Error::Interrupted);
                workers.abort_all();
            }
        }
    }
    sampler.abort();
    drop(transfer);

    if let Some(e) = failure {
        if matches!(e, Error::Changed { .. } | Error::RangeViolation { .. }) {
            resume::remove(&state);
        } else {
            t.save(&state).await?;
        }
        return Err(e);
    }
    if !t.sched.complete() {
        // Every connection left (all shed) with bytes missing: keep what we have for next time.
        t.save(&state).await?;
        return Err(Error::Truncated {
            url: t.url.to_string(),
            got: t.sched.done().len(),
            expected: total,
        });
    }
    let outcome = finish(ctx, file, &t.part, total, resumed, &base).await;
    match &outcome {
        Ok(_) => resume::remove(&state),
        Err(Error::Integrity { .. }) => {
            resume::remove(&state);
            let _ = std::fs::remove_file(&part_file);
        }
        Err(_) => {}
    }
    outcome
}

/// Adds connections to a running file while it has work worth splitting and permits are free
/// (never waiting for one: a file's extra connections must not hold up other files' first).
fn grow(t: &Arc<Transfer>, workers: &mut JoinSet<Result<(), Error>>, warm: &Warm) {
    while t.sched.wants_more() {
        let source = t.pick_source();
        let host = t.source_url(source).host_str().unwrap_or_default();
        let permit = match source {
            Source::Primary => warm.permit(&t.ctx, host),
            Source::Mirror(_) => t.ctx.limits.try_acquire(host),
        };
        let Some(permit) = permit else {
            return;
        };
        if !t.sched.join() {
            return;
        }
        workers.spawn(segment::run(Arc::clone(t), None, permit, source));
    }
}

/// One connection, front to back: servers without ranges or without a known size.
///
/// A retry asks for the rest with `Range` + `If-Range` when the server gave a validator; any
/// answer but a matching 206 restarts the file from byte 0 with that reply, so bytes from two
/// versions are never mixed.
async fn stream(
    ctx: &Arc<Context>,
    file: &FileSpec,
    resp: Response,
    url: Url,
    size: Option<u64>,
    validators: Validators,
    permits: (Permit, tokio::sync::OwnedSemaphorePermit),
) -> Result<Outcome, Error> {
    let part_file = part_path(&file.output);
    resume::remove(&state_path(&part_file));
    let part = PartFile::open(&part_file, None, false).await?;
    let counters = Arc::new(Counters::default());
    let base = ctx
        .events
        .start(file.id, url.as_str(), (&file.output, &part_file), size, 0);
    let sampler = events::spawn_sampler(
        ctx.events.clone(),
        Arc::clone(&counters),
        base.clone(),
        ctx.options.progress_interval,
    );
    let result = async {
        let mut backoff = Backoff::new(&ctx.options.retry);
        let mut pos = 0u64;
        let mut reply = Some(resp);
        loop {
            let resp = match reply.take() {
                Some(r) => r,
                None => {
                    let range = validators.if_range().filter(|_| pos > 0).map(|v| Ranged {
                        start: pos,
                        end: None,
                        if_range: Some(v),
                    });
                    match http::get(
                        &ctx.client,
                        &ctx.options.http,
                        &url,
                        range,
                        &ctx.tracer(file.id),
                    )
                    .await
                    {
                        Ok((r, _)) => r,
                        Err(e) => {
                            retry_wait(ctx, file.id, &mut backoff, e).await?;
                            continue;
                        }
                    }
                }
            };
            let continues = resp.status() == StatusCode::PARTIAL_CONTENT
                && crate::body::is_plain(&resp)
                && check_content_range(
                    resp.headers()
                        .get(header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok()),
                    pos,
                    None,
                    size,
                )
                .is_ok();
            if !continues && resp.status() == StatusCode::PARTIAL_CONTENT {
                // A range reply we cannot use: ask again for the whole file.
                pos = 0;
                part.reset(None)?;
                counters.downloaded.store(0, Ordering::Relaxed);
                retry_wait(
                    ctx,
                    file.id,
                    &mut backoff,
                    Error::Truncated {
                        url: url.to_string(),
                        got: 0,
                        expected: 0,
                    },
                )
                .await?;
                continue;
            }
            if !continues && pos > 0 {
                pos = 0;
                part.reset(None)?;
                counters.downloaded.store(0, Ordering::Relaxed);
            }
            let body = Body::new(resp, size.map(|s| s.saturating_sub(pos)))?;
            match read_stream(ctx, &part, body, &mut pos, &counters, &url).await {
                Ok(()) => match size {
                    Some(s) if pos != s => {
                        let e = Error::Truncated {
                            url: url.to_string(),
                            got: pos,
                            expected: s,
                        };
                        retry_wait(ctx, file.id, &mut backoff, e).await?;
                    }
                    _ => return Ok(pos),
                },
                Err((e, progressed)) => {
                    if progressed {
                        backoff.reset();
                    }
                    retry_wait(ctx, file.id, &mut backoff, e).await?;
                }
            }
        }
    };
    let result = tokio::select! {
        r = result => r,
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    };
    sampler.abort();
    drop(permits); // the transfer is over: the next file may start while this one finishes
    if matches!(result, Err(Error::FileSize { .. })) {
        let _ = std::fs::remove_file(&part_file);
    }
    let total = result?;
    part.set_len(total)?;
    let outcome = finish(
        ctx,
        file,
        &part,
        total,
        0,
        &Progress {
            total_bytes: Some(total),
            ..base
        },
    )
    .await;
    if matches!(outcome, Err(Error::Integrity { .. })) {
        let _ = std::fs::remove_file(&part_file);
    }
    outcome
}

/// Appends a reply's body at `pos`. On failure, says whether any byte was written.
async fn read_stream(
    ctx: &Context,
    part: &PartFile,
    mut body: Body,
    pos: &mut u64,
    counters: &Counters,
    url: &Url,
) -> Result<(), (Error, bool)> {
    let start = *pos;
    let mut buf = Pending::default();
    counters.connections.store(1, Ordering::Relaxed);
    let result = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => {
                ctx.throttle(chunk.len()).await;
                // No announced size: --max-filesize is checked as the bytes come.
                if let Err(e) =
                    check_filesize_max(ctx, url, *pos + (buf.len() + chunk.len()) as u64)
                {
                    break Err(e);
                }
                buf.push(chunk);
                if buf.is_full() {
                    if let Err(e) = write_buf(part, &mut buf, pos, counters) {
                        break Err(e);
                    }
                }
            }
            Ok(None) => break write_buf(part, &mut buf, pos, counters),
            Err(e) => {
                let _ = write_buf(part, &mut buf, pos, counters);
                break Err(e);
            }
        }
    };
    counters.connections.store(0, Ordering::Relaxed);
    result.map_err(|e| (e, *pos > start))
}

fn write_buf(
    part: &PartFile,
    buf: &mut Pending,
    pos: &mut u64,
    counters: &Counters,
) -> Result<(), Error> {
    let len = buf.len();
    part.write_pending(buf, 0, len, *pos)?;
    *pos += len as u64;
    counters.downloaded.fetch_add(len as u64, Ordering::Relaxed);
    Ok(())
}

/// Syncs, checks length and digests, renames into place, and reports.
async fn finish(
    ctx: &Context,
    file: &FileSpec,
    part: &PartFile,
    total: u64,
    resumed: u64,
    base: &Progress,
) -> Result<Outcome, Error> {
    part.sync().await?;
    let len = part.len()?;
    if len != total {
        return Err(Error::Integrity {
            path: file.output.clone(),
            detail: format!("length is {len} bytes, expected {total}"),
        });
    }
    if !file.checksums.is_empty() {
        let (path, expected) = (part.path().to_owned(), file.checksums.clone());
        tokio::task::spawn_blocking(move || checksum::verify(&path, &expected))
            .await
            .expect("checksum does not panic")
            .map_err(|e| match e {
                Error::Integrity { detail, .. } => Error::Integrity {
                    path: file.output.clone(),
                    detail,
                },
                other => other,
            })?;
    }
    output::finish(part, &file.output, &file.url, file.modified).await?;
    let elapsed = file.started.elapsed();
    ctx.events.finish(base, total, resumed, elapsed);
    Ok(Outcome {
        path: Some(file.output.clone()),
        bytes: total,
        resumed,
        elapsed,
        skipped: false,
    })
}
