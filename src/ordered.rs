//! Pieces fetched over several connections at once and written to one output *in order*:
//! HLS/DASH fragments joined straight into their output (yt-dlp then skips its own
//! read-everything-again pass), and a request's writer (`-o -`) fed over `-x` connections.
//!
//! The piece at the head of the output streams straight through to it. The pieces after it,
//! already being fetched, wait in memory within a byte budget ([`BUDGET`]); when the budget is
//! spent they stop reading their connections (TCP pushes back on the server) until the head
//! moves on. So memory stays bounded whatever the number or size of the pieces, and a file sink
//! is written front to back, never seeked.
//!
//! Bytes written cannot be taken back from a pipe, so a retry asks for the rest of its piece
//! (`Range` with `If-Range`), a reply with the whole resource has the part already written
//! skipped, and a piece that changed on the server fails rather than mixing versions.
//!
//! A joined file records its progress beside the `.part` (`FILE.part.fastdl`: pieces complete
//! and their bytes), saved after the data is synced; a rerun truncates to that point and goes
//! on from the next piece.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::body::Body;
use crate::context::{Context, OutputClaim};
use crate::error::Error;
use crate::events::{self, Counters, Event, Level, Progress};
use crate::failure::{self, Decision, Place, Retries};
use crate::finish::recorded;
use crate::http::{self, Ranged, Validators};
use crate::output::{self, part_path, PartFile};
use crate::range::ByteRange;
use crate::redact::SafeUrl;
use crate::request::{Outcome, Piece, Request, Writer};
use crate::resume::{self, state_path};

/// Bytes of later pieces held in memory while the head piece is still arriving.
pub const BUDGET: usize = 32 << 20;
/// Piece size for a writer over several connections (or `--chunk-size`, if larger): big enough
/// that a request's round trip is a small part of its time, small enough that `-x` of them fit
/// in [`BUDGET`].
const WRITER_PIECE: u64 = 4 << 20;
/// How often a joined file's progress is saved.
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// Where the pieces go.
enum Sink {
    File(PartFile),
    Writer(Writer),
}

/// The resume state of a joined file: the first `done` of its `pieces` pieces are the first
/// `bytes` bytes of the `.part`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct JoinState {
    version: u32,
    pieces: usize,
    done: usize,
    bytes: u64,
}

/// Format version of [`JoinState`] (`resume::ResumeState` has no `pieces`, so neither is
/// mistaken for the other).
const JOIN_VERSION: u32 = 1;

/// What the piece fetchers of one ordered download share.
struct Shared {
    ctx: Arc<Context>,
    id: usize,
    memory: Memory,
    counters: Arc<Counters>,
}

enum Msg {
    /// Bytes of the piece, holding their share of the budget until written.
    Data(Bytes, Option<OwnedSemaphorePermit>),
    /// The piece is complete (or failed for good).
    End(Result<(), Error>),
}

/// Downloads `job.pieces` joined, in order, into `job.output` (through `.part`, renamed when
/// complete). Pieces that fail are skipped with a warning when the run allows it (HLS/DASH:
/// yt-dlp skips unavailable fragments), as long as at least one piece arrives.
pub(crate) async fn join(ctx: &Arc<Context>, id: usize, job: &Request) -> Result<Outcome, Error> {
    let started = Instant::now();
    // Known when every piece has a byte range (DASH), else estimated as fragments arrive.
    let total = job.pieces.iter().map(|p| p.range.map(|r| r.len())).sum();
    if let Some(writer) = &job.writer {
        let _transfer = transfer_slot(ctx).await?;
        let to = Path::new("-");
        let base = start(ctx, id, job, (to, to), total, 0);
        let written = Run::new(ctx, id, job, 0, None)
            .write(Sink::Writer(writer.clone()), base.clone(), 0, None)
            .await?;
        return Ok(finished(ctx, &base, None, written, 0, started));
    }
    let Some(out) = job.output.as_deref().map(|o| job.place(o)) else {
        return Err(Error::Invalid(format!(
            "{}: a joined download needs an output path or a writer",
            job.url
        )));
    };
    let key = record_key(job);
    if let Ok(meta) = std::fs::metadata(&out) {
        if let Some(done) = recorded(ctx, &key, &out, &meta, started) {
            return Ok(done);
        }
        if !ctx.options.overwrite {
            return Err(Error::Exists { path: out });
        }
    }
    let claim = OutputClaim::take(ctx, &out).await?;
    let part_file = part_path(&out);
    let state_file = state_path(&part_file);
    let state = resume_state(ctx, &part_file, &state_file, job.pieces.len());
    let (first, resumed) = state.as_ref().map_or((0, 0), |s| (s.done, s.bytes));
    let part = claim.part(resumed > 0)?;
    if resumed > 0 {
        part.set_len(resumed)?;
        ctx.events.log(
            Some(id),
            Level::Info,
            format!("resuming at piece {first} of {}", job.pieces.len()),
        );
    }
    let _transfer = transfer_slot(ctx).await?;
    let base = start(ctx, id, job, (&out, &part_file), total, resumed);
    let written = Run::new(ctx, id, job, first, Some(&state_file))
        .write(Sink::File(part.clone()), base.clone(), resumed, None)
        .await?;
    resume::remove(&state_file);
    let sha256 = part.sha256(written).await?;
    let place = (out.as_path(), ctx.options.overwrite);
    output::finish(&part, part.metadata()?, place, &key, None, sha256.clone()).await?;
    let mut outcome = finished(ctx, &base, Some(out), written, resumed, started);
    outcome.sha256 = sha256;
    Ok(outcome)
}

/// A request with a writer (the binary's `-o -`): the file streams to it in order while it
/// downloads, over `-x` connections when the server supports ranges (pieces of
/// [`WRITER_PIECE`]), else over one.
pub(crate) async fn to_writer(
    ctx: &Arc<Context>,
    id: usize,
    job: &Request,
    writer: Writer,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let url = http::parse_url(&job.url)?;
    let _transfer = transfer_slot(ctx).await?;
    let host = url.host_str().unwrap_or_default().to_string();
    let permit = tokio::select! {
        p = ctx.limits.acquire(&host) => p,
        _ = ctx.shutdown.wait() => return Err(Error::Interrupted),
    };
    let probe = tokio::select! {
        p = crate::probe::probe(ctx, id, &url, (0, None), None) => p?,
        _ = ctx.shutdown.wait() => return Err(Error::Interrupted),
    };
    drop(permit); // piece 0's fetcher takes its own
    if let Some(size) = probe.size() {
        crate::probe::check_filesize(ctx, &url, size)?;
    }
    let piece_size = WRITER_PIECE
        .max(ctx.options.min_split)
        .min(ctx.options.http_chunk_size.unwrap_or(u64::MAX));
    let (pieces, total) = match probe.total() {
        Some(total) => {
            let pieces = (0..total.div_ceil(piece_size))
                .map(|i| Piece {
                    url: probe.url.to_string(),
                    range: Some(ByteRange::new(
                        i * piece_size,
                        ((i + 1) * piece_size).min(total),
                    )),
                })
                .collect();
            (pieces, Some(total))
        }
        None => (
            vec![Piece {
                url: probe.url.to_string(),
                range: None,
            }],
            probe.size(),
        ),
    };
    let path = Path::new("-");
    let job = Request {
        pieces,
        ..job.clone()
    };
    let mut base = start(ctx, id, &job, (path, path), total, 0);
    base.fragment_count = None; // pieces of one file, not fragments
    let run = Run {
        concurrency: ctx.options.connections,
        ..Run::new(ctx, id, &job, 0, None)
    };
    let sink = Sink::Writer(writer);
    let written = run
        .write(sink, base.clone(), 0, Some((probe.resp, probe.validators)))
        .await?;
    if let Some(t) = total.filter(|&t| t != written) {
        return Err(Error::Truncated {
            url: SafeUrl::new(&url),
            got: written,
            expected: t,
        });
    }
    Ok(finished(ctx, &base, None, written, 0, started))
}

/// The completion record's key: the URL; a byte range or a piece count makes it unique (every
/// piece of a BYTERANGE playlist has the same URL).
fn record_key(job: &Request) -> String {
    match job.pieces.as_slice() {
        [one] => match one.range {
            Some(r) => format!("{}#bytes={}-{}", one.url, r.start, r.end),
            None => one.url.clone(),
        },
        many => format!("{}#pieces={}", job.url, many.len()),
    }
}

/// A joined file's saved progress, if it is usable: same number of pieces, bytes on disk.
fn resume_state(ctx: &Context, part: &Path, state: &Path, pieces: usize) -> Option<JoinState> {
    if !ctx.options.resume {
        resume::remove(state);
        return None;
    }
    let s: JoinState = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    let on_disk = std::fs::metadata(part).ok()?.len();
    (s.version == JOIN_VERSION && s.pieces == pieces && s.done < pieces && on_disk >= s.bytes)
        .then_some(s)
}

/// A `-j` slot: a joined file counts as one transfer, however many pieces it fetches at once.
async fn transfer_slot(ctx: &Context) -> Result<OwnedSemaphorePermit, Error> {
    tokio::select! {
        p = Arc::clone(&ctx.transfers).acquire_owned() => Ok(p.expect("never closed")),
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    }
}

/// Sends the `Start` event; returns the progress every later event builds on.
fn start(
    ctx: &Context,
    id: usize,
    job: &Request,
    files: (&Path, &Path),
    total: Option<u64>,
    resumed: u64,
) -> Progress {
    let mut base = ctx.events.start(id, &job.url, files, total, resumed);
    base.fragment_count = (job.pieces.len() > 1).then_some(job.pieces.len());
    base
}

fn finished(
    ctx: &Context,
    base: &Progress,
    path: Option<PathBuf>,
    bytes: u64,
    resumed: u64,
    started: Instant,
) -> Outcome {
    let elapsed = started.elapsed();
    ctx.events.finish(base, bytes, resumed, elapsed);
    Outcome {
        path,
        bytes,
        resumed,
        elapsed,
        skipped: false,
        sha256: None,
        attempts: 1,
    }
}

/// One ordered download in progress.
struct Run<'a> {
    ctx: &'a Arc<Context>,
    id: usize,
    pieces: &'a [Piece],
    /// The first piece to fetch (earlier ones are on disk from a previous run).
    first: usize,
    /// Pieces fetched at once.
    concurrency: usize,
    /// Where a file sink's progress is saved.
    state: Option<&'a Path>,
}

impl<'a> Run<'a> {
    /// Fetches `job`'s pieces from `first` on, `-j` (`--concurrent-fragments`) at a time.
    fn new(
        ctx: &'a Arc<Context>,
        id: usize,
        job: &'a Request,
        first: usize,
        state: Option<&'a Path>,
    ) -> Run<'a> {
        Run {
            ctx,
            id,
            pieces: &job.pieces,
            first,
            concurrency: job.connections.unwrap_or(ctx.options.concurrent_downloads),
            state,
        }
    }

    /// Fetches the pieces and writes them in order; returns the bytes in the output. `first_reply`
    /// is the reply to a probe of piece `first`, used instead of a new request.
    async fn write(
        &self,
        mut sink: Sink,
        base: Progress,
        resumed: u64,
        first_reply: Option<(Response, Validators)>,
    ) -> Result<u64, Error> {
        let ctx = self.ctx;
        let counters = Arc::new(Counters::default());
        counters.downloaded.store(resumed, Ordering::Relaxed);
        counters.fragments.store(self.first, Ordering::Relaxed);
        let sampler = events::spawn_sampler(
            ctx.events.clone(),
            Arc::clone(&counters),
            base,
            ctx.options.progress_interval,
        );
        let _sampler = AbortOnDrop(sampler);
        let (head_tx, head) = watch::channel(self.first);
        let shared = Arc::new(Shared {
            ctx: Arc::clone(ctx),
            id: self.id,
            memory: Memory::new(head, BUDGET),
            counters: Arc::clone(&counters),
        });
        let mut receivers = VecDeque::new();
        let mut senders = Vec::new();
        for _ in self.first..self.pieces.len() {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push_back(rx);
        }
        let _fetchers = AbortOnDrop(tokio::spawn(dispatch(
            Arc::clone(&shared),
            self.pieces[self.first..].to_vec(),
            self.first,
            senders,
            self.concurrency.max(1),
            first_reply,
        )));

        let mut pos = resumed;
        let (mut arrived, mut first_error) = (0usize, None);
        let mut last_save = Instant::now();
        for index in self.first..self.pieces.len() {
            let mut rx = receivers.pop_front().expect("one receiver per piece");
            let piece_start = pos;
            let result = loop {
                let msg = tokio::select! {
                    m = rx.recv() => m,
                    _ = ctx.shutdown.wait() => {
                        // What is synced and recorded is kept; the rest is fetched again.
                        self.save(&sink, index, piece_start).await?;
                        return Err(Error::Interrupted);
                    }
                };
                match msg {
                    Some(Msg::Data(bytes, _permit)) => {
                        sink.write(&bytes, pos).await?;
                        pos += bytes.len() as u64;
                        counters.downloaded.store(pos, Ordering::Relaxed);
                    }
                    Some(Msg::End(result)) => break result,
                    None => break Err(Error::Interrupted),
                }
            };
            let (status, error, bytes) = match &result {
                Ok(()) => ("done", None, pos - piece_start),
                Err(e) => ("failed", Some(e.to_string()), 0),
            };
            if self.pieces.len() > 1 && !matches!(result, Err(Error::Interrupted)) {
                ctx.events.send(Event::Fragment {
                    id: self.id,
                    index,
                    status,
                    bytes,
                    error,
                });
            }
            match result {
                Ok(()) => arrived += 1,
                Err(e @ (Error::Interrupted | Error::Io { .. })) => return Err(e),
                Err(e) if ctx.options.failures_allowed && self.pieces.len() > 1 => {
                    if pos > piece_start {
                        sink.rewind(piece_start)?;
                        pos = piece_start;
                        counters.downloaded.store(pos, Ordering::Relaxed);
                    }
                    ctx.events.log(
                        Some(self.id),
                        Level::Warning,
                        format!("skipping fragment {index}: {e}"),
                    );
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
            counters.fragments.store(index + 1, Ordering::Relaxed);
            head_tx.send_replace(index + 1);
            if last_save.elapsed() >= SAVE_EVERY {
                self.save(&sink, index + 1, pos).await?;
                last_save = Instant::now();
            }
        }
        match first_error {
            Some(e) if arrived == 0 && self.first == 0 => Err(e),
            _ => {
                sink.flush().await?;
                Ok(pos)
            }
        }
    }

    /// Records that pieces before `done` are the first `bytes` bytes of a file sink, once
    /// those bytes are on disk.
    async fn save(&self, sink: &Sink, done: usize, bytes: u64) -> Result<(), Error> {
        let (Sink::File(part), Some(path)) = (sink, self.state) else {
            return Ok(());
        };
        if done == 0 || done == self.pieces.len() {
            return Ok(());
        }
        part.sync().await?;
        let state = JoinState {
            version: JOIN_VERSION,
            pieces: self.pieces.len(),
            done,
            bytes,
        };
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || resume::save(&path, &state))
            .await
            .expect("state save does not panic")
    }
}

impl Sink {
    async fn write(&mut self, bytes: &Bytes, pos: u64) -> Result<(), Error> {
        let to_writer = |e| Error::io("the output writer", e);
        match self {
            Sink::File(part) => part.write_at(bytes, pos),
            Sink::Writer(Writer::Async(w)) => {
                w.lock().await.write_all(bytes).await.map_err(to_writer)
            }
            Sink::Writer(Writer::Callback(f)) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                f(bytes).map_err(to_writer)
            }
        }
    }

    /// Drops what was written after `pos` (a piece that failed half-way); impossible on a pipe.
    fn rewind(&mut self, pos: u64) -> Result<(), Error> {
        match self {
            Sink::File(part) => part.set_len(pos),
            Sink::Writer(_) => Err(Error::io(
                "the output writer",
                std::io::Error::other("a failed fragment was partly written already"),
            )),
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        match self {
            Sink::Writer(Writer::Async(w)) => w
                .lock()
                .await
                .flush()
                .await
                .map_err(|e| Error::io("the output writer", e)),
            _ => Ok(()),
        }
    }
}

/// Aborts a task when dropped: the fetchers and the sampler end with their download, however
/// it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the pieces' fetchers in order, `concurrency` at a time.
async fn dispatch(
    shared: Arc<Shared>,
    pieces: Vec<Piece>,
    first: usize,
    senders: Vec<mpsc::UnboundedSender<Msg>>,
    concurrency: usize,
    mut first_reply: Option<(Response, Validators)>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut fetchers = tokio::task::JoinSet::new();
    for (i, (piece, tx)) in pieces.into_iter().zip(senders).enumerate() {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("never closed");
        let shared = Arc::clone(&shared);
        let reply = first_reply.take();
        fetchers.spawn(async move {
            let result = fetch(&shared, first + i, &piece, &tx, reply).await;
            drop(slot);
            let _ = tx.send(Msg::End(result));
        });
        // Reap finished fetchers as we go, so the set does not grow with the piece count.
        while fetchers.try_join_next().is_some() {}
    }
    while fetchers.join_next().await.is_some() {}
}

/// Fetches one piece, retrying from its last byte sent, and sends its bytes to the writer.
async fn fetch(
    shared: &Shared,
    index: usize,
    piece: &Piece,
    tx: &mpsc::UnboundedSender<Msg>,
    mut reply: Option<(Response, Validators)>,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let url = http::parse_url(&piece.url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let _permit = ctx.limits.acquire(&host).await;
    let mut retries = Retries::new(&ctx.options.retry);
    let mut piece_state = PieceState {
        whole: false,
        sent: 0,
        validators: reply.as_ref().map(|(_, v)| v.clone()),
    };
    loop {
        let result = match reply.take() {
            Some((resp, _)) => {
                let until = piece.range.map(|r| r.len());
                piece_state
                    .read(shared, index, until, &url, resp, 0, tx)
                    .await
            }
            None => piece_state.attempt(shared, index, piece, &url, tx).await,
        };
        match result {
            Ok(()) if piece_state.sent < piece.range.map_or(0, |r| r.len()) => {
                retries.reset(); // a `--http-chunk-size` request done; ask for the next
            }
            Ok(()) => return Ok(()),
            Err((e, progressed)) => {
                if progressed {
                    retries.reset();
                }
                let place = Place::Piece {
                    whole: piece_state.whole,
                };
                match failure::decide(ctx, Some(shared.id), &mut retries, &e, place) {
                    // A server that cannot answer a range properly gets one chance to send the
                    // whole resource instead (its start is skipped).
                    Decision::OneStream => piece_state.whole = true,
                    Decision::Retry(delay) => {
                        failure::pause(ctx, shared.id, &retries, &e, delay).await?
                    }
                    _ => return Err(e),
                }
            }
        }
    }
}

/// How far one piece has got, across its retries.
struct PieceState {
    /// Ask for the whole resource, without `Range`: the server broke a range reply.
    whole: bool,
    /// Bytes of the piece sent to the writer.
    sent: u64,
    /// The first reply's, so a retry's `If-Range` keeps a changed resource out.
    validators: Option<Validators>,
}

impl PieceState {
    /// One request for the rest of the piece. On failure, says whether any byte arrived.
    async fn attempt(
        &mut self,
        shared: &Shared,
        index: usize,
        piece: &Piece,
        url: &Url,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<(), (Error, bool)> {
        let ctx = &shared.ctx;
        let start = piece.range.map_or(0, |r| r.start) + self.sent;
        let chunk = ctx.options.http_chunk_size.unwrap_or(u64::MAX);
        let end = piece.range.map(|r| r.end.min(start.saturating_add(chunk)));
        let if_range = self.validators.as_ref().and_then(|v| v.if_range());
        let ranged = (!self.whole && (piece.range.is_some() || self.sent > 0)).then_some(Ranged {
            start,
            end,
            if_range,
        });
        let (resp, _) = http::get(
            &ctx.client,
            &ctx.options.http,
            url,
            ranged,
            &ctx.tracer(shared.id),
        )
        .await
        .map_err(|e| (e, false))?;
        let validators = Validators::from_headers(resp.headers());
        if let Some(detail) = self
            .validators
            .as_ref()
            .and_then(|v| v.difference(&validators))
        {
            return Err((
                Error::Changed {
                    url: SafeUrl::new(url),
                    detail,
                },
                false,
            ));
        }
        self.validators.get_or_insert(validators);
        let skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
            crate::body::check_range_reply(&resp, start, end, None).map_err(|detail| {
                let e = Error::RangeViolation {
                    url: SafeUrl::new(url),
                    detail,
                };
                (e, false)
            })?;
            0
        } else {
            // The whole resource: drop what comes before the rest of the piece.
            start
        };
        let len = end.map(|e| e - piece.range.map_or(0, |r| r.start));
        self.read(shared, index, len, url, resp, skip, tx).await
    }

    /// Sends the piece's bytes from `resp` (after `skip` bytes) to the writer, up to byte
    /// `len` of the piece if given, else to the reply's end.
    #[allow(clippy::too_many_arguments)]
    async fn read(
        &mut self,
        shared: &Shared,
        index: usize,
        len: Option<u64>,
        url: &Url,
        resp: Response,
        mut skip: u64,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<(), (Error, bool)> {
        let before = self.sent;
        let expected = len.or_else(|| {
            let body = crate::body::file_bytes(&resp)?;
            Some(body.saturating_sub(skip) + self.sent)
        });
        // At most the rest of the piece (plus what is skipped) is the piece's.
        let limit = len.map(|l| l - self.sent + skip);
        let mut body = Body::new(resp, limit).map_err(|e| (e, false))?;
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let result = async {
            while let Some(chunk) = body.chunk().await? {
                let chunk = output::skip_prefix(chunk, &mut skip);
                if chunk.is_empty() {
                    continue;
                }
                shared.ctx.throttle(chunk.len()).await;
                let permit = shared.memory.reserve(index, chunk.len()).await;
                self.sent += chunk.len() as u64;
                if tx.send(Msg::Data(chunk, permit)).is_err() {
                    return Err(Error::Interrupted); // the writer has stopped
                }
            }
            match expected {
                Some(e) if self.sent < e => Err(Error::Truncated {
                    url: SafeUrl::new(url),
                    got: self.sent,
                    expected: e,
                }),
                _ => Ok(()),
            }
        }
        .await;
        shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
        result.map_err(|e| (e, self.sent > before))
    }
}

/// The memory budget of the pieces behind the head ([`BUDGET`]).
struct Memory {
    /// Index of the piece being written now: it needs no budget.
    head: watch::Receiver<usize>,
    budget: Arc<Semaphore>,
    size: usize,
}

impl Memory {
    fn new(head: watch::Receiver<usize>, size: usize) -> Memory {
        Memory {
            head,
            budget: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Memory for `n` bytes of piece `index`: none for the head piece (it is written at once,
    /// and waiting would deadlock behind pieces that wait for it), budget for the others.
    async fn reserve(&self, index: usize, n: usize) -> Option<OwnedSemaphorePermit> {
        let mut head = self.head.clone();
        loop {
            if *head.borrow_and_update() >= index {
                return None;
            }
            let want = n.min(self.size) as u32;
            tokio::select! {
                p = Arc::clone(&self.budget).acquire_many_owned(want) => return p.ok(),
                changed = head.changed() => if changed.is_err() { return None },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_behind_the_head_wait_within_the_budget() {
        let (head_tx, head) = watch::channel(0usize);
        let memory = Memory::new(head, 100);
        // The head never waits, whatever the budget holds.
        assert!(memory.reserve(0, 1000).await.is_none());
        let held = memory.reserve(1, 60).await.expect("within the budget");
        let _more = memory.reserve(2, 40).await.expect("exactly the budget");
        // The budget is spent: piece 3 waits...
        let waiting = memory.reserve(3, 10);
        tokio::pin!(waiting);
        let poll = tokio::time::timeout(Duration::from_millis(50), &mut waiting).await;
        assert!(poll.is_err(), "piece 3 must wait while the budget is spent");
        // ...until bytes are written (their permit dropped),
        drop(held);
        assert!(waiting.await.is_some());
        // and a piece that becomes the head stops waiting at once.
        let blocked = memory.reserve(4, 100);
        tokio::pin!(blocked);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut blocked)
                .await
                .is_err()
        );
        head_tx.send_replace(4);
        assert!(blocked.await.is_none(), "the head needs no budget");
    }
}
