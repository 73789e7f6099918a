//! What to download ([`Request`]) and how it went ([`Outcome`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWrite;

use crate::checksum::Checksum;
use crate::range::ByteRange;

/// One thing to download: a URL (and mirrors of it), where its bytes go, and what they must be.
///
/// By default the file is saved in the current directory under the name the server gives
/// (`Content-Disposition`) or the last part of the URL, made safe. The builder methods change
/// that and add checks:
///
/// ```
/// use fastdl::{Checksum, Request};
///
/// let request = Request::new("https://example.com/big.iso")
///     .dir("downloads")
///     .mirror("https://mirror.example.org/big.iso")
///     .checksum("sha-256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".parse::<Checksum>()?)
///     .max_size(8 << 30);
/// # Ok::<(), fastdl::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub(crate) url: String,
    /// Other URLs of the same file: extra connections use them, and they are tried in order
    /// when the one before fails.
    pub(crate) mirrors: Vec<String>,
    /// Exact output path; otherwise a name from the server or URL.
    pub(crate) output: Option<PathBuf>,
    /// Directory for the output (`output` is relative to it).
    pub(crate) dir: Option<PathBuf>,
    /// Bytes in order to a writer or callback instead of a file.
    pub(crate) writer: Option<Writer>,
    pub(crate) checksums: Vec<Checksum>,
    /// Headers for this request only, after the downloader's.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) referer: Option<String>,
    pub(crate) user_agent: Option<String>,
    /// Connections for this file, instead of the downloader's.
    pub(crate) connections: Option<usize>,
    /// Bytes per second for this file (on top of the downloader's shared limit).
    pub(crate) limit_rate: Option<u64>,
    /// Files announced outside these bounds are not downloaded.
    pub(crate) size_bounds: (Option<u64>, Option<u64>),
    /// When not empty, the output is these pieces joined in order (HLS/DASH fragments); `url`
    /// is then the first piece's, for messages.
    pub(crate) pieces: Vec<Piece>,
    /// A joined download leaves out pieces that fail for good instead of failing.
    pub(crate) skip_failed_pieces: bool,
}

impl Request {
    /// A request for `url` (http or https; checked when the download starts).
    pub fn new(url: impl Into<String>) -> Request {
        Request {
            url: url.into(),
            ..Request::default()
        }
    }

    /// The output joined from `pieces`, fetched at once and written in order: HLS or DASH
    /// fragments, or byte ranges of one resource. Needs [`output`](Request::output) or a
    /// writer.
    pub fn joined(pieces: Vec<Piece>) -> Request {
        Request {
            url: pieces.first().map(|p| p.url.clone()).unwrap_or_default(),
            pieces,
            ..Request::default()
        }
    }

    /// The URL this request downloads (for a joined request, its first piece's).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Saves to exactly `path` (relative to [`dir`](Request::dir), if given).
    pub fn output(mut self, path: impl Into<PathBuf>) -> Request {
        self.output = Some(path.into());
        self
    }

    /// Saves into `dir`, under the name the server gives or the URL's.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Request {
        self.dir = Some(dir.into());
        self
    }

    /// Sends the bytes, in order, to `writer` instead of a file. Several connections still
    /// fetch ahead (within a memory budget); nothing is written to disk and nothing resumes.
    pub fn writer(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Request {
        let writer: Box<dyn AsyncWrite + Send + Unpin> = Box::new(writer);
        self.writer = Some(Writer::Async(Arc::new(tokio::sync::Mutex::new(writer))));
        self
    }

    /// Calls `f` with the bytes, in order, instead of writing a file (parallel_requests'
    /// `stream_callback`). An error from `f` ends the download with [`Error::Io`](crate::Error).
    pub fn on_bytes(
        mut self,
        f: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Request {
        self.writer = Some(Writer::Callback(Arc::new(Mutex::new(Box::new(f)))));
        self
    }

    /// Another URL of the same file.
    pub fn mirror(mut self, url: impl Into<String>) -> Request {
        self.mirrors.push(url.into());
        self
    }

    /// A digest the file must have; a mismatch leaves no file ([`Error::Integrity`]).
    ///
    /// [`Error::Integrity`]: crate::Error::Integrity
    pub fn checksum(mut self, checksum: Checksum) -> Request {
        self.checksums.push(checksum);
        self
    }

    /// A header for this request (after the downloader's; `User-Agent` and `Referer` replace
    /// them). Checked when the download starts.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn referer(mut self, referer: impl Into<String>) -> Request {
        self.referer = Some(referer.into());
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Request {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Connections for this file, instead of the downloader's per-file number.
    pub fn connections(mut self, n: usize) -> Request {
        self.connections = Some(n.clamp(1, 256));
        self
    }

    /// Bytes per second for this file, on top of the downloader's shared limit.
    pub fn limit_rate(mut self, bytes_per_sec: u64) -> Request {
        self.limit_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// A file announced (or found) larger than this is not downloaded ([`Error::FileSize`]).
    ///
    /// [`Error::FileSize`]: crate::Error::FileSize
    pub fn max_size(mut self, bytes: u64) -> Request {
        self.size_bounds.1 = Some(bytes);
        self
    }

    /// A file announced smaller than this is not downloaded.
    pub fn min_size(mut self, bytes: u64) -> Request {
        self.size_bounds.0 = Some(bytes);
        self
    }

    /// For a joined request: leave out pieces that fail for good (as yt-dlp skips unavailable
    /// fragments) instead of failing, as long as one arrives.
    pub fn skip_failed_pieces(mut self, skip: bool) -> Request {
        self.skip_failed_pieces = skip;
        self
    }

    /// Where the file will be saved, as far as it is known before any request: the output
    /// path, or the URL's name (a server's `Content-Disposition` may still choose another).
    /// `None` for a writer.
    pub fn planned_path(&self) -> Option<PathBuf> {
        if self.writer.is_some() {
            return None;
        }
        let name = match &self.output {
            Some(out) => out.clone(),
            None => PathBuf::from(crate::naming::file_name(
                None,
                &crate::http::parse_url(&self.url).ok()?,
            )),
        };
        Some(self.place(&name))
    }

    /// `name` under the request's directory.
    pub(crate) fn place(&self, name: &Path) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join(name),
            None => name.to_owned(),
        }
    }
}

/// One piece of a joined download: a URL, or some bytes of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub(crate) url: String,
    pub(crate) range: Option<ByteRange>,
}

impl Piece {
    /// The whole resource at `url`.
    pub fn new(url: impl Into<String>) -> Piece {
        Piece {
            url: url.into(),
            range: None,
        }
    }

    /// Bytes `start..end` (end exclusive) of the resource at `url`.
    pub fn range(url: impl Into<String>, start: u64, end: u64) -> Piece {
        Piece {
            url: url.into(),
            range: Some(ByteRange::new(start, end.max(start))),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The piece's byte range, `(start, end)` with `end` exclusive, if it is one.
    pub fn byte_range(&self) -> Option<(u64, u64)> {
        self.range.map(|r| (r.start, r.end))
    }
}

/// A callback receiving a download's bytes in order.
type BytesCallback = Box<dyn FnMut(&[u8]) -> std::io::Result<()> + Send>;

/// Where the bytes of a request with a writer go.
#[derive(Clone)]
pub(crate) enum Writer {
    Async(Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>),
    Callback(Arc<Mutex<BytesCallback>>),
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Writer::Async(_) => "Writer::Async",
            Writer::Callback(_) => "Writer::Callback",
        })
    }
}

/// A finished download.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// The file written; `None` when the bytes went to a writer.
    pub path: Option<PathBuf>,
    /// Bytes in the output.
    pub bytes: u64,
    /// Bytes reused from an earlier, interrupted run.
    pub resumed: u64,
    pub elapsed: Duration,
    /// True when the file was already complete (fastdl's completion record, or every
    /// checksum matched) and nothing was downloaded.
    pub skipped: bool,
    /// The output's SHA-256 in hex, with [`DownloaderBuilder::sha256`](crate::DownloaderBuilder::sha256)
    /// (for a skipped file, from its completion record).
    pub sha256: Option<String>,
    /// Tries it took: 1, plus every failed request tried again (a retry, a restart, another
    /// source).
    pub attempts: u32,
}
