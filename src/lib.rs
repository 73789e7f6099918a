//! fastdl: an HTTP(S) download engine that fetches one file over many range connections, never
//! writes a byte it cannot vouch for, and resumes after any interruption.
//!
//! ```no_run
//! use fastdl::{Downloader, Event, Request};
//!
//! # async fn run() -> Result<(), fastdl::Error> {
//! let downloader = Downloader::builder().connections(16).build()?;
//! let mut events = downloader.events();
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         if let Event::Progress(p) = event {
//!             eprintln!("{}: {} bytes", p.filename, p.downloaded_bytes);
//!         }
//!     }
//! });
//! let requests = ["https://example.com/a.iso", "https://example.com/b.iso"]
//!     .map(|url| Request::new(url).dir("downloads"));
//! let mut results = downloader.download_all(requests);
//! while let Some((index, result)) = results.next().await {
//!     match result {
//!         Ok(outcome) => println!("{index}: {} bytes", outcome.bytes),
//!         Err(e) if e.is_transient() => println!("{index}: {e} (worth trying again later)"),
//!         Err(e) => println!("{index}: {e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`RemoteFile`] reads a remote file as `AsyncRead + AsyncSeek`, fetching only what is read.
//!
//! # Layout
//!
//! The public surface is the handful of types re-exported here; every module is private. Data
//! flows one way:
//!
//! ```text
//! Downloader (downloader.rs: settings, download_all/_stream, events, interrupt, open)
//!   → download      one file: mirrors, restarts, name, resume decision, fallback
//!       → probe     the first request, which becomes the first segment
//!       → segmented many connections (their shared state: transfer)
//!           → scheduler  which connection fetches which bytes (holes, steals, races)
//!           → segment    one connection: ranged GET, checks, positional writes
//!       → stream    one connection front to back (servers without ranges)
//!       → finish    length and digests, sync (durable: batched), rename, completion record
//!     or → ordered  pieces fetched at once, written in order (fragments, writers)
//!   → remote        RemoteFile: reads served from a cache of fetched blocks
//! below them: context (what a run shares), failure (the one decision after any failure),
//! retry (backoff), http (client, redirects, credentials), body (which bytes of a reply are
//! the file's), range, output, durable, resume, checksum, naming, limits, ratelimit, cookies,
//! shutdown;
//! events go to every subscriber. docs/architecture.md has the table.
//! ```

mod body;
mod checksum;
mod context;
mod cookies;
mod digest;
mod download;
mod downloader;
mod durable;
mod error;
mod events;
mod failure;
mod finish;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod limits;
mod naming;
mod ordered;
mod output;
mod pacer;
mod probe;
mod range;
mod ratelimit;
mod record;
mod redact;
mod remote;
mod request;
mod resume;
mod retry;
mod scheduler;
mod segment;
mod segmented;
mod shutdown;
mod stream;
mod transfer;

pub use checksum::Checksum;
pub use cookies::CookieJar;
pub use downloader::{Downloader, DownloaderBuilder, Results};
pub use error::Error;
pub use events::{Ended, Event, EventStream, Level, Progress};
pub use http::parse_url;
pub use naming::sanitize as sanitize_file_name;
pub use redact::{redact, SafeUrl};
pub use remote::{BlockingRemoteFile, RemoteFile};
pub use request::{Outcome, Piece, Request};
pub use url::Url;
