//! What every download of a run shares ([`Context`]): the HTTP client, the settings, the
//! connection limits, the transfer slots, the rate limits, the events and the stop signal; and
//! the output paths being written, so two downloads never write one file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;

use crate::error::Error;
use crate::events::{Events, Level};
use crate::http::{self, HttpOptions};
use crate::limits::{Limits, Permit};
use crate::output::{self, PartFile};
use crate::ratelimit::RateLimiter;
use crate::request::Request;
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;

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
    /// Compute each file's SHA-256 as it is written (`digest.rs`).
    pub sha256: bool,
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
            sha256: false,
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
    /// Failed requests of this job tried again in some way (retried, restarted, another
    /// source): the job's attempts are one more. Each job counts its own ([`Context::for_job`]).
    pub(crate) retried: Arc<std::sync::atomic::AtomicU32>,
    /// Output paths being written by this run.
    pub(crate) claimed: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
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
            retried: Default::default(),
            claimed: Default::default(),
            options,
            events,
            shutdown,
        })
    }

    /// This context with a job's own settings applied (same client, limits and signal).
    pub(crate) fn for_job(&self, job: &Request) -> Result<Context, Error> {
        let mut ctx = self.clone();
        ctx.retried = Default::default();
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

/// The right to write one output: no other download of this run writes it (the run's set of
/// paths), and no other process does (a lock on its `FILE.part`, held until this is dropped).
/// Taken before anything on disk changes.
pub(crate) struct OutputClaim {
    claimed: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    path: PathBuf,
    part_path: PathBuf,
    part: Arc<std::fs::File>,
    /// The `.part` is new and nothing has written it yet: it needs no emptying.
    empty: std::sync::atomic::AtomicBool,
    /// Hash what is written (`Options::sha256`).
    hash: bool,
}

impl OutputClaim {
    pub(crate) async fn take(ctx: &Context, path: &Path) -> Result<OutputClaim, Error> {
        {
            let mut set = ctx.claimed.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(path.to_owned()) {
                return Err(Error::Invalid(format!(
                    "{}: another download of this run writes the same file",
                    path.display()
                )));
            }
        }
        let claim = |(part, created): (std::fs::File, bool)| OutputClaim {
            claimed: Arc::clone(&ctx.claimed),
            path: path.to_owned(),
            part_path: output::part_path(path),
            part: Arc::new(part),
            empty: created.into(),
            hash: ctx.options.sha256,
        };
        match output::lock_part(&output::part_path(path)).await {
            Ok(locked) => Ok(claim(locked)),
            Err(e) => {
                let mut set = ctx.claimed.lock().unwrap_or_else(|e| e.into_inner());
                set.remove(path);
                Err(e)
            }
        }
    }

    /// The `.part`, opened for writing; `keep` keeps its bytes ([`PartFile::open`]).
    pub(crate) fn part(&self, keep: bool) -> Result<PartFile, Error> {
        // Keeping the bytes of a file known to be empty is emptying it, without the call.
        let empty = self.empty.swap(false, std::sync::atomic::Ordering::Relaxed);
        PartFile::open(
            &self.part_path,
            Arc::clone(&self.part),
            keep || empty,
            self.hash,
        )
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        let mut set = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.path);
    }
}
