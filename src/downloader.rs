//! The entry point: a [`Downloader`] built once from a [`DownloaderBuilder`] and shared. It owns
//! the HTTP client (connections are reused across downloads), the connection caps, the retry
//! policy, the run-wide rate limit and the event subscribers.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::context::{Context, Options};
use crate::cookies::CookieJar;
use crate::download;
use crate::error::Error;
use crate::events::{EventStream, Events};
use crate::remote::RemoteFile;
use crate::request::{Outcome, Request};
use crate::shutdown::{Shutdown, ShutdownTrigger};

/// Downloads files over many connections, resumably, never writing a byte it cannot vouch for.
///
/// Cheap to clone; clones share connections, limits and subscribers.
///
/// ```no_run
/// # async fn run() -> Result<(), fastdl::Error> {
/// let downloader = fastdl::Downloader::builder().connections(16).build()?;
/// let outcome = downloader
///     .download(fastdl::Request::new("https://example.com/big.iso").output("big.iso"))
///     .await?;
/// println!("{} bytes in {:?}", outcome.bytes, outcome.elapsed);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Downloader {
    ctx: Arc<Context>,
    trigger: Arc<ShutdownTrigger>,
    /// The id of the next download started, for its events.
    next_id: Arc<AtomicUsize>,
}

impl Downloader {
    /// A downloader with the default settings.
    pub fn new() -> Result<Downloader, Error> {
        Downloader::builder().build()
    }

    pub fn builder() -> DownloaderBuilder {
        DownloaderBuilder::default()
    }

    /// Subscribes to the events of every download from now on (see [`Event`]).
    ///
    /// [`Event`]: crate::Event
    pub fn events(&self) -> EventStream {
        self.ctx.events.subscribe()
    }

    /// Downloads one request. Its events carry the next id.
    pub async fn download(&self, request: Request) -> Result<Outcome, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        download::download(Arc::clone(&self.ctx), id, request).await
    }

    /// Downloads every request, [`concurrent_downloads`] at a time, in order of the list
    /// host by host (of the requests read ahead, the first whose host has the fewest downloads
    /// running starts next, so one slow host does not hold every slot); yields each result as
    /// it ends, with the request's position in the list. A failure stays
    /// with its request. After [`interrupt`](Downloader::interrupt), no new request starts.
    /// Dropping the stream stops the downloads.
    ///
    /// [`concurrent_downloads`]: DownloaderBuilder::concurrent_downloads
    pub fn download_all<I>(&self, requests: I) -> Results
    where
        I: IntoIterator<Item = Request>,
        I::IntoIter: Send + 'static,
    {
        self.download_stream(Iter(Box::new(requests.into_iter())))
    }

    /// [`download_all`](Downloader::download_all) for requests that arrive over time (a list
    /// read while it downloads, from a slow producer): requests are read at most eight times
    /// `concurrent_downloads` ahead of the ones running, and results go on being yielded while
    /// the next is awaited, so a list never needs to be in memory whole.
    pub fn download_stream<S>(&self, requests: S) -> Results
    where
        S: futures_core::Stream<Item = Request> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let this = self.clone();
        let task = tokio::spawn(async move { this.run_all(Box::pin(requests), tx).await });
        Results { rx, task }
    }

    async fn run_all(
        self,
        mut queue: Pin<Box<dyn futures_core::Stream<Item = Request> + Send>>,
        tx: mpsc::UnboundedSender<(usize, Result<Outcome, Error>)>,
    ) {
        let mut running = tokio::task::JoinSet::new();
        // `-j` itself is enforced by the transfer slots; twice as many tasks lets files that
        // are finishing (sync, verify, rename) overlap the next files' first requests.
        let slots = 2 * self.ctx.options.concurrent_downloads.max(1);
        let window = READ_AHEAD * slots;
        // Requests read ahead, so that a host with fewer downloads running can go first.
        let mut ahead: VecDeque<Waiting> = VecDeque::new();
        let mut per_host: HashMap<String, usize> = HashMap::new();
        let (mut index, mut more) = (0usize, true);
        let mut read = |request: Request, ahead: &mut VecDeque<Waiting>| {
            // Ids in list order, whichever starts first.
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let host = url::Url::parse(request.url())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            ahead.push_back(Waiting {
                index,
                id,
                host,
                request,
            });
            index += 1;
        };
        loop {
            let stopped = self.ctx.shutdown.is_set();
            // Read what is ready first, so that the choice below sees as far ahead as it can.
            {
                let mut now = std::task::Context::from_waker(std::task::Waker::noop());
                while more && ahead.len() < window && !stopped {
                    match queue.as_mut().poll_next(&mut now) {
                        std::task::Poll::Ready(Some(request)) => read(request, &mut ahead),
                        std::task::Poll::Ready(None) => more = false,
                        std::task::Poll::Pending => break,
                    }
                }
            }
            while running.len() < slots && !stopped {
                let Some(at) = fairest(ahead.iter().map(|w| w.host.as_str()), &per_host) else {
                    break;
                };
                let w = ahead.remove(at).expect("picked from it");
                *per_host.entry(w.host.clone()).or_default() += 1;
                let ctx = Arc::clone(&self.ctx);
                running.spawn(async move {
                    let result = download::download(ctx, w.id, w.request).await;
                    (w.host, w.index, result)
                });
            }
            let fill = more && ahead.len() < window && !stopped;
            tokio::select! {
                biased;
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    let (host, at, result) = joined.expect("download tasks do not panic");
                    if let Some(n) = per_host.get_mut(&host) {
                        *n -= 1;
                        if *n == 0 {
                            per_host.remove(&host);
                        }
                    }
                    if tx.send((at, result)).is_err() {
                        return; // nobody listens: the JoinSet's drop stops the rest
                    }
                }
                next = std::future::poll_fn(|cx| queue.as_mut().poll_next(cx)), if fill => {
                    match next {
                        Some(request) => read(request, &mut ahead),
                        None => more = false,
                    }
                }
                // Stopped while waiting: stop waiting.
                _ = self.ctx.shutdown.wait(), if !stopped && (fill || !ahead.is_empty()) => {}
                else => break,
            }
        }
        // Stopped: what was read ahead never started; it ends as interrupted, like the rest.
        for w in ahead {
            let result = Err(Error::Interrupted);
            self.ctx
                .events
                .ended((w.id, &w.request.url), &result, 1, Duration::ZERO);
            if tx.send((w.index, result)).is_err() {
                return;
            }
        }
    }

    /// Opens `url` as a [`RemoteFile`]: read and seek it like a local file; only what is read
    /// is fetched. Uses this downloader's connections, limits, retries and headers.
    pub async fn open(&self, url: &str) -> Result<RemoteFile, Error> {
        RemoteFile::open(Arc::clone(&self.ctx), url).await
    }

    /// Stops every download: each saves its progress and ends with [`Error::Interrupted`]
    /// (the same request resumes later). For Ctrl-C.
    pub fn interrupt(&self) {
        self.trigger.trigger();
    }
}

/// The results of [`Downloader::download_all`], as they come: `(position, result)`.
#[derive(Debug)]
pub struct Results {
    rx: mpsc::UnboundedReceiver<(usize, Result<Outcome, Error>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Results {
    /// The next result to end; `None` when every request has.
    pub async fn next(&mut self) -> Option<(usize, Result<Outcome, Error>)> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Results {
    type Item = (usize, Result<Outcome, Error>);

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Results {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests read ahead of those running, in task slots (twice `concurrent_downloads`): enough
/// for another host's entries a few lines further to be seen.
const READ_AHEAD: usize = 4;

/// A request read ahead, waiting for a slot.
struct Waiting {
    /// Its position in the list.
    index: usize,
    /// Its events' id.
    id: usize,
    host: String,
    request: Request,
}

/// Which waiting request starts next: the first of those whose host has the fewest downloads
/// running (`running`, by host; `hosts`: the waiting requests', in list order), so that one host
/// with a long run of entries, or a slow one, does not hold every slot while others wait. With
/// one host, list order. A run of one host's entries is looked up once, and a host with none
/// running ends the search: this runs for every file started, over hundreds waiting.
fn fairest<'a>(
    hosts: impl Iterator<Item = &'a str>,
    running: &HashMap<String, usize>,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    let mut last: Option<(&str, usize)> = None;
    for (at, host) in hosts.enumerate() {
        let n = match last {
            Some((h, n)) if h == host => n,
            _ => running.get(host).copied().unwrap_or(0),
        };
        if n == 0 {
            return Some(at);
        }
        last = Some((host, n));
        if best.is_none_or(|(fewest, _)| n < fewest) {
            best = Some((n, at));
        }
    }
    best.map(|(_, at)| at)
}

/// An iterator as a stream that is always ready ([`Downloader::download_all`]).
struct Iter(Box<dyn Iterator<Item = Request> + Send>);

impl futures_core::Stream for Iter {
    type Item = Request;

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Request>> {
        std::task::Poll::Ready(self.0.next())
    }
}

/// Settings of a [`Downloader`]; every one has a default.
#[derive(Debug, Default)]
#[must_use]
pub struct DownloaderBuilder {
    options: Options,
}

impl DownloaderBuilder {
    /// Connections per file, 1 to 256 (default 8).
    pub fn connections(mut self, n: usize) -> Self {
        self.options.connections = n.clamp(1, 256);
        self
    }

    /// The smallest range worth its own connection (default 1 MiB).
    pub fn min_split(mut self, bytes: u64) -> Self {
        self.options.min_split = bytes.max(1);
        self
    }

    /// Files transferring at once in [`Downloader::download_all`] (default 16).
    pub fn concurrent_downloads(mut self, n: usize) -> Self {
        self.options.concurrent_downloads = n.max(1);
        self
    }

    /// Connections in total, across every download (default 64).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.options.max_connections = n.max(1);
        self
    }

    /// Connections to one host, across every download (default 16).
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.options.max_connections_per_host = n.max(1);
        self
    }

    /// Retries of one request after a transient failure; `None` retries forever (default 10).
    pub fn retries(mut self, retries: Option<u32>) -> Self {
        self.options.retry.retries = retries;
        self
    }

    /// The first retry's delay, doubled each time, with full jitter (default 500 ms).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.options.retry.delay = delay;
        self
    }

    /// The longest wait between retries, `Retry-After` included (default 30 s).
    pub fn max_retry_delay(mut self, delay: Duration) -> Self {
        self.options.retry.max_delay = delay;
        self
    }

    /// How long a connection may deliver nothing before it is replaced (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.http.timeout = timeout;
        self
    }

    /// The limit for connecting, TCP and TLS (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.http.connect_timeout = timeout;
        self
    }

    /// An `http://`, `https://`, `socks5://` or `socks5h://` proxy for every request. Without
    /// one, the proxy environment variables apply; `""` ignores them.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.options.http.proxy = Some(url.into());
        self
    }

    /// A header for every request (`Authorization` and `Cookie` never follow a redirect to
    /// another origin).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.http.headers.push((name.into(), value.into()));
        self
    }

    /// `User-Agent` (default `fastdl/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.options.http.user_agent = user_agent.into();
        self
    }

    pub fn referer(mut self, referer: impl Into<String>) -> Self {
        self.options.http.referer = Some(referer.into());
        self
    }

    /// Cookies, matched against every request and every redirect hop.
    pub fn cookies(mut self, jar: CookieJar) -> Self {
        self.options.http.cookies = Some(Arc::new(jar));
        self
    }

    /// Bytes per second for every download together (0: no limit).
    pub fn limit_rate(mut self, bytes_per_sec: u64) -> Self {
        self.options.limit_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// At most this many bytes per request (servers that throttle long ranges).
    pub fn http_chunk_size(mut self, bytes: u64) -> Self {
        self.options.http_chunk_size = (bytes > 0).then_some(bytes);
        self
    }

    /// Also trust the CA certificates in this PEM file, besides the system's.
    pub fn ca_certificate(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.options.http.ca_certificate = Some(pem_file.into());
        self
    }

    /// Accepts any TLS certificate. Only for tests and hosts you trust by other means.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.options.http.insecure = accept;
        self
    }

    /// Connects from this local address.
    pub fn source_address(mut self, addr: IpAddr) -> Self {
        self.options.http.source_address = Some(addr);
        self
    }

    /// Reuses the bytes of an interrupted download, validated with `If-Range` (default true).
    pub fn resume(mut self, resume: bool) -> Self {
        self.options.resume = resume;
        self
    }

    /// Replaces an existing output file that fastdl cannot vouch for (default false: such a
    /// download fails with [`Error::Exists`]).
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.options.overwrite = overwrite;
        self
    }

    /// Gives a finished file the server's `Last-Modified` time (default false).
    pub fn remote_time(mut self, remote_time: bool) -> Self {
        self.options.remote_time = remote_time;
        self
    }

    /// Starts requests to one host at most `per_second` times a second, over the whole run:
    /// every file, connection, retry and redirect hop (default: no limit; 0 means none).
    /// Hosts are paced apart, so a slow-paced host does not hold up the others' requests.
    pub fn max_requests_per_host_per_second(mut self, per_second: f64) -> Self {
        self.options.http.pacer = crate::pacer::Pacer::new(per_second).map(Arc::new);
        self
    }

    /// Computes each written file's SHA-256 while it is written ([`Outcome::sha256`], also kept
    /// in the completion record, so a skipped file has it too). Default false: it costs up to
    /// 1 ms of CPU per MiB (0.94 s for 1 GiB measured here, with the CPU's SHA extensions).
    pub fn sha256(mut self, sha256: bool) -> Self {
        self.options.sha256 = sha256;
        self
    }

    /// Time between two progress events of one download (default 500 ms).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.options.progress_interval = interval;
        self
    }

    /// Opens a file's extra connections while a slow first reply is awaited, a round trip
    /// sooner (default false: worth it when files are downloaded one at a time).
    pub fn preconnect(mut self, preconnect: bool) -> Self {
        self.options.warm_up = preconnect;
        self
    }

    /// The downloader; [`Error::Invalid`] for a bad proxy, header or CA file.
    pub fn build(self) -> Result<Downloader, Error> {
        for (name, value) in &self.options.http.headers {
            crate::http::check_header(name, value)?;
        }
        let (trigger, shutdown) = Shutdown::new();
        let ctx = Context::new(self.options, Events::default(), shutdown)?;
        Ok(Downloader {
            ctx: Arc::new(ctx),
            trigger: Arc::new(trigger),
            next_id: Arc::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_with_the_fewest_running_goes_first_else_list_order() {
        let running: HashMap<String, usize> = [("a".into(), 2), ("b".into(), 1), ("c".into(), 1)]
            .into_iter()
            .collect();
        for (hosts, want) in [
            (vec![], None),
            (vec!["x", "y"], Some(0)),
            (vec!["a", "a", "x"], Some(2)),
            (vec!["a", "b", "c"], Some(1)),
            (vec!["a", "a", "b", "b"], Some(2)),
            (vec!["b"], Some(0)),
        ] {
            assert_eq!(fairest(hosts.iter().copied(), &running), want, "{hosts:?}");
        }
    }
}
