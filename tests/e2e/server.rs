//! A small HTTP/1.1 server on raw tokio TCP, so it can misbehave byte-exactly: reset or close
//! mid-body, stall, ignore `Range`, lie in `Content-Range`, answer 503/429 with `Retry-After`,
//! change the file between requests. It also caps speed per TCP connection (held across
//! keep-alive requests) and delays every reply, for the benchmark. [`Server::start_tls`] serves
//! the same over HTTPS with a certificate made at start-up.
//!
//! Shared by the e2e tests and `integration/bench/server.rs` (via `#[path]`).

#![allow(dead_code)] // each user needs a different part

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What to do to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Send the headers and this many body bytes, then reset the connection (RST).
    ResetAfter(u64),
    /// Send the headers and this many body bytes, then close cleanly (FIN): a truncated body.
    CloseAfter(u64),
    /// Send the headers and this many body bytes, then go silent.
    StallAfter(u64),
    /// Answer 200 with the whole body, ignoring `Range`.
    IgnoreRange,
    /// Answer 206 but with a `Content-Range` (and bytes) shifted by this many bytes.
    ShiftRange(u64),
    /// Answer this status with an empty body and optional `Retry-After`.
    Status(u16, Option<String>),
    /// Send the body at this many bytes per second.
    Throttle(u64),
    /// Send this many bytes of junk after the body (inside the chunked framing when the
    /// resource is chunked; past `Content-Length` otherwise).
    ExtraBytes(u64),
    /// `Content-Encoding: gzip` whatever the client asked for: the reply's bytes (the range
    /// asked for, or all) compressed, with `Content-Range` still naming the plain bytes, as
    /// misconfigured servers and CDNs do.
    Gzip,
    /// A `Content-Range` whose total is one byte more than the file.
    WrongTotal,
    /// A `Content-Length` this many bytes off the body actually sent (after it, the connection
    /// closes).
    LengthOff(i64),
    /// A second, conflicting `Content-Range` and `ETag`.
    DuplicateHeaders,
    /// This reply chunked, with a bogus chunk-size line half-way.
    BadChunk,
    /// This reply chunked (well-formed).
    Chunked,
    /// `302` to this very path.
    RedirectToSelf,
}

/// A resource that misbehaves on its own: each request draws a fault from a seeded generator
/// ([`Hostile::draw`]), and once the resource may be replaced by a second version.
#[derive(Clone, Debug)]
pub struct Hostile {
    state: u64,
    /// The second version (body, ETag), served from the moment the generator says so.
    pub replacement: Option<(Arc<Vec<u8>>, String)>,
}

impl Hostile {
    pub fn new(seed: u64, replacement: Option<Vec<u8>>) -> Hostile {
        Hostile {
            state: seed.wrapping_mul(0x9E3779B97F4A7C15) | 1,
            replacement: replacement.map(|b| {
                let etag = format!("\"v2-{:016x}\"", fnv(&b));
                (Arc::new(b), etag)
            }),
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// This request's fault, and whether the resource is replaced from now on.
    fn draw(&mut self, len: u64) -> (Fault, bool) {
        let r = self.next();
        let n = (r >> 8) % len.max(1);
        let odd_retry_after = [
            "0",
            "1",
            "-1",
            "abc",
            "99999999",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "",
        ];
        let ra = odd_retry_after[(r >> 32) as usize % odd_retry_after.len()].to_string();
        let fault = match r % 40 {
            0..=17 => Fault::None,
            18 => Fault::ResetAfter(n),
            19 => Fault::CloseAfter(n),
            20 => Fault::StallAfter(n),
            21 => Fault::IgnoreRange,
            22 => Fault::ShiftRange(1 + n % 4096),
            23 => Fault::Status(503, Some(ra)),
            24 => Fault::Status(429, Some(ra)),
            25 => Fault::Status(500, None),
            26 => Fault::Status(416, None),
            27 => Fault::Gzip,
            28 => Fault::ExtraBytes(1 + n % 3),
            29 => Fault::WrongTotal,
            30 => Fault::LengthOff(if r & (1 << 40) == 0 { -7 } else { 7 }),
            31 => Fault::DuplicateHeaders,
            32 => Fault::BadChunk,
            33 => Fault::Chunked,
            34 => Fault::RedirectToSelf,
            35 => Fault::Throttle(256 << 10),
            36 => Fault::Status(502, Some(ra)),
            37 => Fault::Status(403, None),
            _ => Fault::None,
        };
        let replace = r.is_multiple_of(97) && self.replacement.is_some();
        (fault, replace)
    }
}

/// One file served at a path.
#[derive(Clone, Debug, Default)]
pub struct Resource {
    pub body: Arc<Vec<u8>>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When false, `Range` is ignored (always 200).
    pub ranges: bool,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Faults for the next requests to this path, in order.
    pub faults: VecDeque<Fault>,
    /// Send `Transfer-Encoding: chunked` with no length.
    pub chunked: bool,
    /// Answer with a redirect to this location instead.
    pub redirect: Option<String>,
    /// The first reply whose range starts in `from..to` is sent at `rate` bytes per second, from
    /// its first byte: one slow path (an overloaded cache node), which a new request avoids.
    pub trickle: Option<Trickle>,
    /// Misbehave at random, from a seed (after the queued `faults` run out).
    pub hostile: Option<Hostile>,
}

/// See [`Resource::trickle`].
#[derive(Clone, Copy, Debug)]
pub struct Trickle {
    pub from: u64,
    pub to: u64,
    pub rate: u64,
}

impl Resource {
    /// A resource with a strong ETag and range support.
    pub fn new(body: Vec<u8>) -> Resource {
        let etag = format!("\"{:016x}\"", fnv(&body));
        Resource {
            body: Arc::new(body),
            etag: Some(etag),
            last_modified: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
            ranges: true,
            ..Resource::default()
        }
    }
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    /// The host a request in absolute form named (`GET http://host/path`, as sent to an HTTP
    /// proxy): the server then answers as that proxy would, from its own files.
    pub proxied_host: Option<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub headers: Vec<(String, String)>,
    pub connection: u64,
    pub status: u16,
    pub at: std::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whole-server behaviour, for the benchmark.
#[derive(Clone, Debug, Default)]
pub struct Shaping {
    /// Bytes per second per TCP connection, across all its requests.
    pub rate_per_connection: Option<u64>,
    /// Delay before each reply's headers and before serving a new connection (an RTT stand-in).
    pub latency: Duration,
    /// Every n-th connection runs at rate / divisor: `(n, divisor)`.
    pub slow_every: Option<(u64, u64)>,
}

#[derive(Default)]
pub struct State {
    pub files: Mutex<HashMap<String, Resource>>,
    pub seen: Mutex<Vec<Seen>>,
    /// Body bytes written to sockets.
    pub body_bytes: AtomicU64,
    pub connections: AtomicU64,
    /// Connections open now, and the most ever open at once.
    pub open: AtomicU64,
    pub max_open: AtomicU64,
    pub shaping: Mutex<Shaping>,
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    /// For HTTPS: the server's self-signed certificate (PEM), which a client must trust.
    pub cert_pem: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

/// A connection the server answers on: plain TCP, or TLS over it.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP connection underneath (for its socket options).
    fn tcp(&self) -> &TcpStream;
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Conn for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1 and localhost, and that
/// certificate in PEM.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls;
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let made = rcgen::generate_simple_self_signed(names).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("TLS config");
    (Arc::new(config).into(), made.cert.pem())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> Server {
        Server::start_on("127.0.0.1:0").await
    }

    /// Starts a test server: a small, fixed send buffer (no autotuning) makes the bytes it
    /// counts as sent close to the bytes the client really took, even for dropped connections.
    pub async fn start_on(addr: &str) -> Server {
        Server::start_with(addr, Some(128 * 1024)).await
    }

    /// Starts an HTTPS server on 127.0.0.1 (see [`Server::cert_pem`]).
    pub async fn start_tls() -> Server {
        Server::start_tls_with("127.0.0.1:0", Some(128 * 1024)).await
    }

    /// Starts an HTTPS server on `addr`, with the kernel's send buffer unless `sndbuf` is given.
    pub async fn start_tls_with(addr: &str, sndbuf: Option<u32>) -> Server {
        let (acceptor, pem) = tls_acceptor();
        let mut srv = Server::listen(addr, sndbuf, Some(acceptor)).await;
        srv.cert_pem = Some(pem);
        srv
    }

    /// Starts a server with the kernel's send buffer (autotuned) unless `sndbuf` is given.
    pub async fn start_with(addr: &str, sndbuf: Option<u32>) -> Server {
        Server::listen(addr, sndbuf, None).await
    }

    async fn listen(
        addr: &str,
        sndbuf: Option<u32>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Server {
        let addr: SocketAddr = addr.parse().expect("socket address");
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        if let Some(size) = sndbuf {
            socket.set_send_buffer_size(size).expect("sndbuf");
        }
        socket.bind(addr).expect("bind");
        let listener = socket.listen(1024).expect("listen");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let n = st.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let st = Arc::clone(&st);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let now = st.open.fetch_add(1, Ordering::SeqCst) + 1;
                    st.max_open.fetch_max(now, Ordering::SeqCst);
                    let _ = match tls {
                        None => serve(sock, Arc::clone(&st), n).await,
                        // A client that rejects the certificate ends the handshake: nothing to serve.
                        Some(tls) => match tls.accept(sock).await {
                            Ok(sock) => serve(sock, Arc::clone(&st), n).await,
                            Err(e) => Err(e),
                        },
                    };
                    st.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server {
            addr,
            state,
            cert_pem: None,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{}", self.addr, path)
    }

    pub fn add(&self, path: &str, r: Resource) {
        self.state.files.lock().unwrap().insert(path.to_string(), r);
    }

    /// Changes a served resource in place.
    pub fn update(&self, path: &str, f: impl FnOnce(&mut Resource)) {
        f(self
            .state
            .files
            .lock()
            .unwrap()
            .get_mut(path)
            .expect("known path"));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn body_bytes(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Caps every connection at `bytes_per_sec` (and nothing else).
    pub fn cap(&self, bytes_per_sec: u64) {
        self.shape(Shaping {
            rate_per_connection: Some(bytes_per_sec),
            ..Shaping::default()
        });
    }

    pub fn shape(&self, s: Shaping) {
        *self.state.shaping.lock().unwrap() = s;
    }
}

/// A per-connection pacer: the rate holds across keep-alive requests, and time spent idle
/// between requests earns no burst (unlike nginx's `limit_rate`, see measuring.md).
struct Bucket {
    rate: Option<u64>,
    next: tokio::time::Instant,
}

impl Bucket {
    /// A reply starts now: the time its request took to arrive (the simulated latency) was not
    /// time spent sending, so it earns no burst. Without this, every request's latency would be
    /// repaid as an instant burst at the start of its reply, a head start real links do not give.
    fn start_reply(&mut self) {
        self.next = self.next.max(tokio::time::Instant::now());
    }

    async fn pace(&mut self, n: u64) {
        if let Some(rate) = self.rate {
            // Timer lateness is caught up; only a real idle gap (>50 ms) restarts the schedule,
            // so idling earns at most 50 ms worth of burst.
            let now = tokio::time::Instant::now();
            if now > self.next + Duration::from_millis(50) {
                self.next = now;
            }
            self.next += Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::time::sleep_until(self.next).await;
        }
    }
}

async fn serve(mut sock: impl Conn, st: Arc<State>, conn: u64) -> std::io::Result<()> {
    sock.tcp().set_nodelay(true)?;
    let shaping = st.shaping.lock().unwrap().clone();
    if !shaping.latency.is_zero() {
        tokio::time::sleep(shaping.latency).await; // the handshake's round trip
    }
    let rate = shaping
        .rate_per_connection
        .map(|r| match shaping.slow_every {
            Some((n, div)) if conn.is_multiple_of(n) => r / div,
            _ => r,
        });
    let mut bucket = Bucket {
        rate,
        next: tokio::time::Instant::now(),
    };
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one request head.
        let head = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.drain(..end + 4);
                break head;
            }
            let mut tmp = [0u8; 4096];
            let n = sock.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default();
        let (proxied_host, path) = match target.strip_prefix("http://") {
            Some(rest) => {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (Some(host.to_string()), path.to_string())
            }
            None => (None, target.to_string()),
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if !shaping.latency.is_zero() {
            tokio::time::sleep(shaping.latency).await; // request + first byte
        }
        // Take this request's fault and a snapshot of the resource.
        let found = {
            let mut files = st.files.lock().unwrap();
            files.get_mut(&path).map(|r| {
                let mut fault = r.faults.pop_front().unwrap_or(Fault::None);
                let len = r.body.len() as u64;
                if let Some(h) = r.hostile.as_mut() {
                    let (drawn, replace) = h.draw(len);
                    fault = drawn;
                    if replace {
                        let (body, etag) = h.replacement.take().expect("drawn only if some");
                        r.body = body;
                        r.etag = Some(etag);
                        r.last_modified = Some("Thu, 22 Oct 2026 07:28:00 GMT".into());
                    }
                }
                (r.clone(), fault)
            })
        };
        let mut seen = Seen {
            path: path.clone(),
            proxied_host,
            range: get("range"),
            if_range: get("if-range"),
            headers: headers.clone(),
            connection: conn,
            status: 0,
            at: std::time::Instant::now(),
        };
        let Some((res, fault)) = found else {
            seen.status = 404;
            st.seen.lock().unwrap().push(seen);
            send(
                &mut sock,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            )
            .await?;
            continue;
        };
        if fault == Fault::RedirectToSelf {
            seen.status = 302;
            st.seen.lock().unwrap().push(seen);
            let r =
                format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
            send(&mut sock, r.as_bytes()).await?;
            continue;
        }
        if let Some(loc) = &res.redirect {
            seen.status = 302;
            st.seen.lock().unwrap().push(seen);
            let r = format!("HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n");
            send(&mut sock, r.as_bytes()).await?;
            continue;
        }
        if let Fault::Status(code, retry_after) = &fault {
            seen.status = *code;
            st.seen.lock().unwrap().push(seen);
            let mut r = format!("HTTP/1.1 {code} Fault\r\nContent-Length: 0\r\n");
            if let Some(ra) = retry_after {
                r.push_str(&format!("Retry-After: {ra}\r\n"));
            }
            r.push_str("\r\n");
            send(&mut sock, r.as_bytes()).await?;
            continue;
        }
        let len = res.body.len() as u64;
        // If-Range: a validator that does not match means "send the whole thing".
        let if_range_ok = match get("if-range") {
            None => true,
            Some(v) => Some(&v) == res.etag.as_ref() || Some(&v) == res.last_modified.as_ref(),
        };
        let range = get("range")
            .filter(|_| res.ranges && if_range_ok && fault != Fault::IgnoreRange)
            .and_then(|r| parse_range(&r, len));
        let mut out = String::new();
        let (status, start, end) = match range {
            Some(Err(())) => {
                seen.status = 416;
                st.seen.lock().unwrap().push(seen);
                let r = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n");
                send(&mut sock, r.as_bytes()).await?;
                continue;
            }
            Some(Ok((s, e))) => {
                let shift = if let Fault::ShiftRange(d) = fault {
                    d
                } else {
                    0
                };
                let (s2, e2) = ((s + shift).min(len), (e + shift).min(len));
                let total = len + u64::from(fault == Fault::WrongTotal);
                out.push_str(&format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{total}\r\n",
                    s2,
                    e2.saturating_sub(1)
                ));
                if fault == Fault::DuplicateHeaders {
                    out.push_str(&format!(
                        "Content-Range: bytes {}-{}/{total}\r\n",
                        s2 + 1,
                        e2.saturating_sub(1)
                    ));
                }
                (206, s2, e2)
            }
            None => {
                out.push_str("HTTP/1.1 200 OK\r\n");
                (200, 0, len)
            }
        };
        seen.status = status;
        st.seen.lock().unwrap().push(seen);
        let plain = &res.body[start as usize..end as usize];
        let mut data = std::borrow::Cow::Borrowed(plain);
        let gzipped = fault == Fault::Gzip;
        if gzipped {
            data = std::borrow::Cow::Owned(gzip(plain));
            out.push_str("Content-Encoding: gzip\r\n");
        }
        if let Fault::ExtraBytes(n) = fault {
            data.to_mut().extend(std::iter::repeat_n(0xEE, n as usize));
        }
        let body_len = data.len() as u64;
        let chunked = res.chunked || matches!(fault, Fault::BadChunk | Fault::Chunked);
        if chunked {
            out.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            let announced = if gzipped { body_len } else { end - start };
            // A whole-file reply whose body runs past its Content-Length cannot be told from a
            // shorter file by any client: only range replies get that lie.
            let announced = match fault {
                Fault::LengthOff(d) if status == 200 => announced + d.unsigned_abs(),
                Fault::LengthOff(d) => announced.saturating_add_signed(d),
                _ => announced,
            };
            out.push_str(&format!("Content-Length: {announced}\r\n"));
        }
        if fault == Fault::DuplicateHeaders {
            out.push_str("ETag: \"conflicting\"\r\n");
        }
        if res.ranges {
            out.push_str("Accept-Ranges: bytes\r\n");
        }
        if let Some(e) = &res.etag {
            out.push_str(&format!("ETag: {e}\r\n"));
        }
        if let Some(lm) = &res.last_modified {
            out.push_str(&format!("Last-Modified: {lm}\r\n"));
        }
        for (k, v) in &res.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        send(&mut sock, out.as_bytes()).await?;
        if method == "HEAD" {
            continue;
        }
        let cut = match fault {
            Fault::ResetAfter(n) | Fault::CloseAfter(n) | Fault::StallAfter(n) => {
                Some(n.min(body_len))
            }
            _ => None,
        };
        let trickled = res.trickle.filter(|t| (t.from..t.to).contains(&start));
        if trickled.is_some() {
            if let Some(r) = st.files.lock().unwrap().get_mut(&path) {
                r.trickle = None;
            }
        }
        let throttle = match fault {
            Fault::Throttle(r) => Some(r),
            _ => trickled.map(|t| t.rate),
        };
        let stop = cut.unwrap_or(body_len);
        let mut at = 0;
        bucket.start_reply();
        let t0 = tokio::time::Instant::now();
        while at < stop {
            // A throttled reply goes out in tenths of a second's worth, not bursts.
            let most = [throttle, bucket.rate]
                .into_iter()
                .flatten()
                .fold(64 * 1024, |most, r| most.min((r / 10).max(1)));
            let n = (stop - at).min(most);
            let piece = &data[at as usize..(at + n) as usize];
            if fault == Fault::BadChunk && at >= body_len / 2 {
                send(&mut sock, b"zz\r\n").await?;
                return Ok(());
            }
            if chunked {
                send(&mut sock, format!("{n:x}\r\n").as_bytes()).await?;
                send(&mut sock, piece).await?;
                send(&mut sock, b"\r\n").await?;
            } else {
                send(&mut sock, piece).await?;
            }
            st.body_bytes.fetch_add(n, Ordering::SeqCst);
            at += n;
            bucket.pace(n).await;
            if let Some(rate) = throttle {
                let due = t0 + Duration::from_secs_f64(at as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
        }
        match fault {
            Fault::ResetAfter(_) => {
                sock.tcp().set_zero_linger()?;
                return Ok(());
            }
            Fault::CloseAfter(_) => return Ok(()),
            Fault::StallAfter(_) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            _ => {}
        }
        if chunked {
            send(&mut sock, b"0\r\n\r\n").await?;
        }
        if matches!(fault, Fault::LengthOff(_)) {
            return Ok(()); // the framing is broken: nothing after it can be trusted
        }
    }
}

/// `bytes=a-b` / `bytes=a-` / `bytes=-n` → `[start, end)`; Err if unsatisfiable.
fn parse_range(h: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multi-range: answer 200
    }
    let (a, b) = spec.split_once('-')?;
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        return Some(Ok((len.saturating_sub(n), len)));
    }
    let a: u64 = a.parse().ok()?;
    if a >= len {
        return Some(Err(()));
    }
    let e = if b.is_empty() {
        len
    } else {
        (b.parse::<u64>().ok()? + 1).min(len)
    };
    Some(Ok((a, e)))
}

/// `data` compressed as gzip.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data.iter().step_by(97) {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    h ^ data.len() as u64
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for a GiB.
/// Writes `bytes` and pushes them onto the wire: TLS holds written data in its own buffer until
/// a flush, which would leave the end of a reply undelivered (on plain TCP a flush is free).
async fn send(sock: &mut impl Conn, bytes: &[u8]) -> std::io::Result<()> {
    sock.write_all(bytes).await?;
    sock.flush().await
}

pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A SOCKS5 proxy (no authentication, CONNECT only) that sends every connection to `upstream`
/// whatever it asks for, and records the destinations asked for (`host:port`).
pub struct Socks5 {
    pub addr: SocketAddr,
    pub asked: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Socks5 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Socks5 {
    pub async fn start(upstream: SocketAddr) -> Socks5 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let _ = socks5_session(client, upstream, log).await;
                });
            }
        });
        Socks5 { addr, asked, task }
    }

    pub fn url(&self) -> String {
        format!("socks5h://{}", self.addr)
    }
}

async fn socks5_session(
    mut client: TcpStream,
    upstream: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let bad = || std::io::Error::other("not a SOCKS5 CONNECT");
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        return Err(bad());
    }
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    if req[..2] != [5, 1] {
        return Err(bad());
    }
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Err(bad()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    log.lock()
        .unwrap()
        .push(format!("{host}:{}", u16::from_be_bytes(port)));
    let mut server = TcpStream::connect(upstream).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
