//! [`RemoteFile`]: a remote file read like a local one, fetching only what is read.
//!
//! The file is cut into blocks of [`BLOCK`] bytes. A read served from cached blocks needs no
//! request; a read that misses fetches a *window* from its position: the missing blocks only
//! (a byte is never fetched twice while it is cached), as ranges split over several connections
//! when the window is large. Sequential reads double the window up to [`MAX_WINDOW`]; a seek
//! elsewhere starts small again, so reading a zip's directory and one member costs a few
//! requests, not the archive. The cache holds at most [`CACHE`] bytes, least recently used
//! blocks first out.
//!
//! The first reply pins the version: every later request carries `If-Range` with its ETag (or
//! Last-Modified) and is checked against its size and validators, so a file replaced on the
//! server gives [`Error::Changed`], never bytes of two versions. Failures are retried like any
//! download's, from the last byte received.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use url::Url;

use crate::body::{self, Body};
use crate::context::Context;
use crate::error::Error;
use crate::failure::{self, Decision, Place, Retries};
use crate::http::{self, Ranged, Validators};
use crate::redact::SafeUrl;

/// Bytes per cached block, and the first window.
pub const BLOCK: u64 = 64 << 10;
/// The largest read-ahead window.
pub const MAX_WINDOW: u64 = 8 << 20;
/// Bytes of fetched blocks kept, at most.
pub const CACHE: u64 = 32 << 20;
/// A window is split into parts of at least this size, one per connection.
const MIN_PART: u64 = 1 << 20;

type Fetch = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// A remote file opened with [`Downloader::open`](crate::Downloader::open): `AsyncRead +
/// AsyncSeek`, fetching only what is read (see the module docs of `remote.rs`).
/// [`into_blocking`](RemoteFile::into_blocking) gives `std::io::Read + Seek` for sync code
/// such as the `zip` crate.
pub struct RemoteFile {
    shared: Arc<Shared>,
    pos: u64,
    /// Where the last fetched window ended: a miss there is a sequential read.
    window_end: u64,
    window: u64,
    /// The fetch the current read waits for.
    pending: Option<Fetch>,
    /// The target of a seek in progress.
    seek_to: Option<u64>,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFile")
            .field("url", &crate::redact::redact(self.shared.url.as_str()))
            .field("len", &self.shared.size)
            .field("pos", &self.pos)
            .finish()
    }
}

/// What a file's reads and fetches share.
struct Shared {
    ctx: Arc<Context>,
    /// The URL after redirects.
    url: Url,
    size: u64,
    validators: Validators,
    cache: Mutex<Cache>,
    /// Body bytes received, for callers measuring what a read cost.
    fetched: AtomicU64,
}

/// Fetched blocks by index, with a use stamp for eviction.
#[derive(Default)]
struct Cache {
    blocks: HashMap<u64, (Bytes, u64)>,
    bytes: u64,
    clock: u64,
    /// Use stamp → block, to find the least recently used.
    order: BTreeMap<u64, u64>,
}

impl Cache {
    fn touch(&mut self, index: u64) -> Option<Bytes> {
        self.clock += 1;
        let (data, stamp) = self.blocks.get_mut(&index)?;
        self.order.remove(stamp);
        *stamp = self.clock;
        self.order.insert(self.clock, index);
        Some(data.clone())
    }

    fn has(&self, index: u64) -> bool {
        self.blocks.contains_key(&index)
    }

    fn insert(&mut self, index: u64, data: Bytes) {
        if self.touch(index).is_some() {
            return;
        }
        self.clock += 1;
        self.bytes += data.len() as u64;
        self.blocks.insert(index, (data, self.clock));
        self.order.insert(self.clock, index);
        while self.bytes > CACHE {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((data, _)) = self.blocks.remove(&oldest) {
                self.bytes -= data.len() as u64;
            }
        }
    }
}

impl RemoteFile {
    /// Opens `url`: one ranged request for the first block, which tells the size and pins the
    /// version.
    pub(crate) async fn open(ctx: Arc<Context>, url: &str) -> Result<RemoteFile, Error> {
        let url = http::parse_url(url)?;
        let mut retries = Retries::new(&ctx.options.retry);
        let trace = |line| ctx.events.log(None, crate::events::Level::Debug, line);
        let host = url.host_str().unwrap_or_default().to_string();
        let (resp, final_url) = loop {
            let _permit = ctx.limits.acquire(&host).await;
            let range = Ranged {
                start: 0,
                end: Some(BLOCK),
                if_range: None,
            };
            match http::get(&ctx.client, &ctx.options.http, &url, Some(range), &trace).await {
                Ok(ok) => break ok,
                Err(e) => match failure::decide(&ctx, None, &mut retries, &e, Place::Request) {
                    Decision::Retry(delay) => failure::wait(&ctx, delay).await?,
                    _ => return Err(e),
                },
            }
        };
        let violation = |detail: String| Error::RangeViolation {
            url: SafeUrl::new(&final_url),
            detail,
        };
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(violation(format!(
                "the server does not serve ranges (HTTP {}), so the file cannot be read in parts",
                resp.status().as_u16()
            )));
        }
        let size = body::check_range_reply(&resp, 0, Some(BLOCK), None).map_err(violation)?;
        let shared = Arc::new(Shared {
            validators: Validators::from_headers(resp.headers()),
            url: final_url,
            size,
            ctx,
            cache: Mutex::default(),
            fetched: AtomicU64::new(0),
        });
        let first = BLOCK.min(size);
        let mut body = Body::new(resp, Some(first))?;
        let mut data = BytesMut::new();
        while let Some(chunk) = body.chunk().await? {
            data.extend_from_slice(&chunk);
        }
        shared
            .fetched
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if data.len() as u64 == first {
            shared.lock().insert(0, data.freeze());
        }
        Ok(RemoteFile {
            shared,
            pos: 0,
            window_end: BLOCK,
            window: BLOCK,
            pending: None,
            seek_to: None,
        })
    }

    /// The file's size.
    pub fn len(&self) -> u64 {
        self.shared.size
    }

    pub fn is_empty(&self) -> bool {
        self.shared.size == 0
    }

    /// Body bytes received from the server so far (what the reads cost).
    pub fn bytes_fetched(&self) -> u64 {
        self.shared.fetched.load(Ordering::Relaxed)
    }

    /// A `std::io::Read + Seek` view for synchronous code, which runs each read on `handle`'s
    /// runtime. Use it from a thread that is not one of that runtime's (e.g. inside
    /// `spawn_blocking`, or after `Runtime::block_on` returned).
    pub fn into_blocking(self, handle: tokio::runtime::Handle) -> BlockingRemoteFile {
        BlockingRemoteFile { file: self, handle }
    }

    /// Copies cached bytes at the current position into `buf`; how many.
    fn copy_cached(&mut self, buf: &mut ReadBuf<'_>) -> usize {
        let mut copied = 0;
        let mut cache = self.shared.lock();
        while buf.remaining() > 0 && self.pos < self.shared.size {
            let index = self.pos / BLOCK;
            let Some(block) = cache.touch(index) else {
                break;
            };
            let offset = (self.pos - index * BLOCK) as usize;
            let n = (block.len().saturating_sub(offset)).min(buf.remaining());
            if n == 0 {
                break;
            }
            buf.put_slice(&block[offset..offset + n]);
            self.pos += n as u64;
            copied += n;
        }
        copied
    }

    /// The fetch of the window at the current position: its missing blocks, in parts.
    fn fetch_window(&self) -> Fetch {
        let shared = Arc::clone(&self.shared);
        let first = self.pos / BLOCK;
        let end = (self.pos + self.window)
            .min(shared.size)
            .div_ceil(BLOCK)
            .max(first + 1);
        let cache = shared.lock();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for index in first..end {
            if cache.has(index) {
                continue;
            }
            match runs.last_mut() {
                Some(run) if run.1 == index => run.1 += 1,
                _ => runs.push((index, index + 1)),
            }
        }
        drop(cache);
        let connections = shared.ctx.options.connections.max(1) as u64;
        let part_blocks = (MIN_PART / BLOCK).max(1);
        let mut parts = Vec::new();
        for (a, b) in runs {
            let per = ((b - a).div_ceil(connections)).max(part_blocks);
            let mut at = a;
            while at < b {
                parts.push((at, (at + per).min(b)));
                at += per;
            }
        }
        Box::pin(async move {
            let mut set = tokio::task::JoinSet::new();
            for (a, b) in parts {
                let shared = Arc::clone(&shared);
                set.spawn(async move { shared.fetch_blocks(a, b).await });
            }
            while let Some(done) = set.join_next().await {
                done.expect("fetches do not panic")?;
            }
            Ok(())
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches blocks `a..b` into the cache, retrying from the last byte received.
    async fn fetch_blocks(&self, a: u64, b: u64) -> Result<(), Error> {
        let (start, end) = (a * BLOCK, (b * BLOCK).min(self.size));
        let host = self.url.host_str().unwrap_or_default();
        let _permit = self.ctx.limits.acquire(host).await;
        let mut retries = Retries::new(&self.ctx.options.retry);
        let mut data = BytesMut::with_capacity((end - start) as usize);
        loop {
            let at = start + data.len() as u64;
            match self.fetch_range(at, end, &mut data).await {
                Ok(()) => break,
                Err((e, progressed)) => {
                    if progressed {
                        retries.reset();
                    }
                    match failure::decide(&self.ctx, None, &mut retries, &e, Place::Request) {
                        Decision::Retry(delay) => failure::wait(&self.ctx, delay).await?,
                        _ => return Err(e),
                    }
                }
            }
        }
        let data = data.freeze();
        let mut cache = self.lock();
        for index in a..b {
            let from = ((index - a) * BLOCK) as usize;
            let to = (from + BLOCK as usize).min(data.len());
            cache.insert(index, data.slice(from..to));
        }
        Ok(())
    }

    /// One request for `from..end`, appended to `data`; on failure, whether bytes arrived.
    async fn fetch_range(
        &self,
        from: u64,
        end: u64,
        data: &mut BytesMut,
    ) -> Result<(), (Error, bool)> {
        let range = Ranged {
            start: from,
            end: Some(end),
            if_range: self.validators.if_range(),
        };
        let trace = |line| self.ctx.events.log(None, crate::events::Level::Debug, line);
        let (resp, _) = http::get(
            &self.ctx.client,
            &self.ctx.options.http,
            &self.url,
            Some(range),
            &trace,
        )
        .await
        .map_err(|e| (e, false))?;
        let url = SafeUrl::new(&self.url);
        if let Some(detail) = self
            .validators
            .difference(&Validators::from_headers(resp.headers()))
        {
            return Err((Error::Changed { url, detail }, false));
        }
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            // If-Range did not match: the whole, new file.
            let detail = "the server sent the whole file to a range request".into();
            return Err((Error::Changed { url, detail }, false));
        }
        let violation = |detail: String| {
            let e = Error::RangeViolation {
                url: url.clone(),
                detail,
            };
            (e, false)
        };
        body::check_range_reply(&resp, from, Some(end), Some(self.size)).map_err(violation)?;
        let before = data.len();
        let mut body = Body::new(resp, Some(end - from)).map_err(|e| (e, false))?;
        loop {
            match body.chunk().await {
                Ok(Some(chunk)) => {
                    self.fetched
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err((e, data.len() > before)),
            }
        }
        let got = (data.len() - before) as u64;
        if got < end - from {
            let e = Error::Truncated {
                url,
                got,
                expected: end - from,
            };
            return Err((e, got > 0));
        }
        Ok(())
    }
}

impl AsyncRead for RemoteFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut fetched = false;
        loop {
            if this.pos >= this.shared.size || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let copied = this.copy_cached(buf);
            if copied == 0 && fetched {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the fetched range did not hold the bytes asked for",
                )));
            }
            if copied > 0 {
                this.pending = None;
                return Poll::Ready(Ok(()));
            }
            if this.pending.is_none() {
                // A miss right where the last window ended is a sequential read: widen the
                // window. A miss anywhere else is a new place: start small.
                this.window = match this.pos == this.window_end {
                    true => (this.window * 2).min(MAX_WINDOW),
                    false => BLOCK,
                };
                this.window_end = (this.pos + this.window).min(this.shared.size);
                this.pending = Some(this.fetch_window());
            }
            let fetch = this.pending.as_mut().expect("set above");
            match fetch.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    this.pending = None;
                    result.map_err(io::Error::other)?;
                    // The blocks are cached now (the window never exceeds the cache).
                    fetched = true;
                }
            }
        }
    }
}

impl AsyncSeek for RemoteFile {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let size = self.shared.size as i128;
        let target = match position {
            io::SeekFrom::Start(n) => n as i128,
            io::SeekFrom::End(d) => size + d as i128,
            io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        }
        self.seek_to = Some(target.min(u64::MAX as i128) as u64);
        Ok(())
    }

    fn poll_complete(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<u64>> {
        if let Some(to) = self.seek_to.take() {
            if to != self.pos {
                self.pending = None;
            }
            self.pos = to;
        }
        Poll::Ready(Ok(self.pos))
    }
}

/// [`RemoteFile`] as `std::io::Read + Seek` ([`RemoteFile::into_blocking`]).
#[derive(Debug)]
pub struct BlockingRemoteFile {
    file: RemoteFile,
    handle: tokio::runtime::Handle,
}

impl BlockingRemoteFile {
    /// The async file back.
    pub fn into_inner(self) -> RemoteFile {
        self.file
    }

    pub fn get_ref(&self) -> &RemoteFile {
        &self.file
    }
}

impl io::Read for BlockingRemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.handle.block_on(self.file.read(buf))
    }
}

impl io::Seek for BlockingRemoteFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        use tokio::io::AsyncSeekExt;
        self.handle.block_on(self.file.seek(pos))
    }
}
