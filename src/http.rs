//! The HTTP client and the one function that sends a request: headers, range, `If-Range`, and
//! redirects followed by hand.
//!
//! Redirects are ours, not reqwest's, for two reasons: a redirect may only lead to http or https,
//! and credentials the user gave (`Authorization`, `Cookie`, `Proxy-Authorization`) must never be
//! sent to an origin other than the one they were given for.
//!
//! What a reply *means* (is this 206 the range we asked for?) is decided by the caller; this
//! module only turns non-success statuses into [`Error::Status`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use url::Url;

use crate::error::Error;
use crate::range::range_header;
use crate::redact::SafeUrl;
use crate::retry::parse_retry_after;

/// At most this many redirects per request, like curl's and browsers' defaults.
const MAX_REDIRECTS: usize = 10;

/// Request headers that carry credentials and must stay with the origin they were given for.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Everything about *how* to talk to servers, shared by every request of a run.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Extra request headers, in order (`-H`).
    pub headers: Vec<(String, String)>,
    /// `User-Agent`, unless `headers` sets one.
    pub user_agent: String,
    /// `Referer`, unless `headers` sets one.
    pub referer: Option<String>,
    /// Proxy URL; `Some("")` means "no proxy, ignore the environment".
    pub proxy: Option<String>,
    /// Skip TLS certificate verification (`--no-check-certificate`).
    pub insecure: bool,
    /// A PEM file of CA certificates trusted besides the system's (`--ca-certificate`).
    pub ca_certificate: Option<PathBuf>,
    /// Local address to connect from (`--source-address`).
    pub source_address: Option<IpAddr>,
    /// Limit for connecting (TCP + TLS).
    pub connect_timeout: Duration,
    /// Limit for one read to deliver anything: the stall detector. There is no total deadline.
    pub timeout: Duration,
    /// Cookies (`--cookies`), matched against every request and every redirect hop.
    pub cookies: Option<std::sync::Arc<crate::cookies::CookieJar>>,
    /// Requests per second to one host, at most (`pacer.rs`).
    pub pacer: Option<std::sync::Arc<crate::pacer::Pacer>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            headers: Vec::new(),
            user_agent: concat!("fastdl/", env!("CARGO_PKG_VERSION")).to_string(),
            referer: None,
            proxy: None,
            insecure: false,
            ca_certificate: None,
            source_address: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            cookies: None,
            pacer: None,
        }
    }
}

/// Builds the client every request of a run shares, so keep-alive connections are reused.
///
/// HTTP/1.1 only: over HTTP/2 reqwest multiplexes every range request to a host onto one TCP
/// connection, which defeats the point of parallel ranges (style-and-crates.md §4).
pub fn client(opts: &HttpOptions) -> Result<Client, Error> {
    // reqwest panics at build time when no rustls crypto provider is installed; installing twice
    // is harmless (the second call returns Err and changes nothing).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let extra = opts
        .ca_certificate
        .as_deref()
        .map(ca_certificates)
        .transpose()?;
    let built = match &extra {
        None => builder(opts)?.build(),
        Some(certs) => builder(opts)?.tls_certs_merge(certs.clone()).build(),
    };
    let built = match (built, extra) {
        // The system's verifier with extra roots needs a chain-engine option not every Windows
        // crypt32 has (wine's refuses it): then rustls checks against the system's roots, read
        // once, plus the file's.
        (Err(_), Some(extra)) if !opts.insecure => builder(opts)?
            .tls_certs_only(system_roots().into_iter().chain(extra))
            .build(),
        (built, _) => built,
    };
    built.map_err(|e| {
        // reqwest's own text is only "builder error"; the cause (the TLS verifier, the system's
        // certificate store) is in its sources.
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            why.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Error::Invalid(format!(
            "cannot set up the HTTP client: {why} (is the ca-certificates package installed?)"
        ))
    })
}

/// Every setting of the client but the extra roots.
fn builder(opts: &HttpOptions) -> Result<reqwest::ClientBuilder, Error> {
    let usage = |what: &str, e: &dyn std::fmt::Display| Error::Invalid(format!("{what}: {e}"));
    let mut b = Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .tls_danger_accept_invalid_certs(opts.insecure)
        .tls_danger_accept_invalid_hostnames(opts.insecure);
    match opts.proxy.as_deref() {
        Some("") => b = b.no_proxy(),
        Some(p) => {
            let proxy =
                reqwest::Proxy::all(p).map_err(|e| usage(&format!("bad --proxy {p:?}"), &e))?;
            b = b.proxy(proxy);
        }
        None => {}
    }
    if let Some(addr) = opts.source_address {
        b = b.local_address(addr);
    }
    Ok(b)
}

/// The operating system's trusted roots (the certificate store, the keychain, the CA bundle);
/// the ones it cannot read are left out, as the system's own verifier would.
fn system_roots() -> Vec<reqwest::Certificate> {
    rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect()
}

/// The certificates of a `--ca-certificate` PEM file; a file without any is a mistake worth
/// reporting, not an empty trust list.
fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let bad =
        |detail: String| Error::Invalid(format!("--ca-certificate {}: {detail}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Checks a URL the user (or a server's redirect) gave us: only http and https are fetched.
pub fn parse_url(s: &str) -> Result<Url, Error> {
    let url = Url::parse(s).map_err(|e| Error::Invalid(format!("{s}: not a valid URL ({e})")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(Error::Invalid(format!("{s}: URL has no host"))),
        other => Err(Error::Invalid(format!(
            "{s}: unsupported scheme {other:?}; only http and https are downloaded"
        ))),
    }
}

/// The validators that identify one version of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// Reads `ETag` and `Last-Modified` from a reply.
    pub fn from_headers(h: &HeaderMap) -> Validators {
        let get = |name| {
            h.get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Validators {
            etag: get(header::ETAG),
            last_modified: get(header::LAST_MODIFIED),
        }
    }

    /// The `If-Range` value, if any: a strong ETag, else Last-Modified (RFC 9110 §13.1.5 forbids
    /// weak ETags there).
    pub fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(e) if !e.starts_with("W/") => Some(e),
            _ => self.last_modified.as_deref(),
        }
    }

    /// Describes how `other` differs from `self`, when it visibly does. A validator missing on
    /// one side proves nothing.
    pub fn difference(&self, other: &Validators) -> Option<String> {
        fn differs(a: &Option<String>, b: &Option<String>) -> bool {
            matches!((a, b), (Some(a), Some(b)) if a != b)
        }
        if differs(&self.etag, &other.etag) {
            return Some(format!(
                "ETag was {}, now {}",
                self.etag.as_deref().unwrap_or_default(),
                other.etag.as_deref().unwrap_or_default()
            ));
        }
        if differs(&self.last_modified, &other.last_modified) {
            return Some(format!(
                "Last-Modified was {}, now {}",
                self.last_modified.as_deref().unwrap_or_default(),
                other.last_modified.as_deref().unwrap_or_default()
            ));
        }
        None
    }
}

/// A byte range to ask for: `start..end`, or `start..` when `end` is `None`.
#[derive(Clone, Copy, Debug)]
pub struct Ranged<'a> {
    pub start: u64,
    pub end: Option<u64>,
    /// Sent as `If-Range`, so a changed resource answers 200 instead of mixing versions.
    pub if_range: Option<&'a str>,
}

/// Sends a GET for `url` (optionally ranged), following redirects. Returns the successful reply
/// and the URL that produced it. Non-2xx statuses become [`Error::Status`]. `trace` receives one
/// line per request and per reply (shown with `-v`).
pub async fn get(
    client: &Client,
    opts: &HttpOptions,
    url: &Url,
    range: Option<Ranged<'_>>,
    trace: &(dyn Fn(String) + Sync),
) -> Result<(Response, Url), Error> {
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let same_origin = current.origin() == url.origin();
        let mut req = client
            .get(current.clone())
            .headers(request_headers(opts, same_origin));
        if let Some(cookie) = opts
            .cookies
            .as_ref()
            .and_then(|jar| jar.header_for(&current))
        {
            req = req.header(header::COOKIE, cookie);
        }
        let mut line = format!("GET {current}");
        if let Some(r) = range {
            let value = range_header(r.start, r.end);
            line.push_str(&format!(" Range: {value}"));
            req = req.header(header::RANGE, value);
            if let Some(v) = r.if_range {
                line.push_str(&format!(" If-Range: {v}"));
                req = req.header(header::IF_RANGE, v);
            }
        }
        if let Some(pacer) = &opts.pacer {
            pacer.wait(current.host_str().unwrap_or_default()).await;
        }
        trace(line);
        let resp = req
            .send()
            .await
            .map_err(|source| Error::transport(&current, source))?;
        trace(describe(&resp));
        let status = resp.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            current = redirect_target(&current, &resp)?;
            continue;
        }
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Err(Error::Status {
                url: SafeUrl::new(&current),
                status: status.as_u16(),
                retry_after,
            });
        }
        return Ok((resp, current));
    }
    Err(Error::Redirect {
        url: SafeUrl::new(url),
        detail: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// `HTTP 206 Content-Range: bytes 0-99/1000 Content-Length: 100 ETag: "x"`, for `-v`.
fn describe(resp: &Response) -> String {
    let mut line = format!("HTTP {}", resp.status().as_u16());
    for name in [
        header::CONTENT_RANGE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::ETAG,
        header::LOCATION,
        header::RETRY_AFTER,
    ] {
        if let Some(v) = resp.headers().get(&name).and_then(|v| v.to_str().ok()) {
            line.push_str(&format!(" {name}: {v}"));
        }
    }
    line
}

fn redirect_target(from: &Url, resp: &Response) -> Result<Url, Error> {
    let bad = |detail: String| Error::Redirect {
        url: SafeUrl::new(from),
        detail,
    };
    let location = resp.headers().get(header::LOCATION).ok_or_else(|| {
        bad(format!(
            "HTTP {} redirect without Location",
            resp.status().as_u16()
        ))
    })?;
    let location = location
        .to_str()
        .map_err(|_| bad("redirect Location is not valid text".into()))?;
    let next = from
        .join(location)
        .map_err(|e| bad(format!("bad redirect Location {location:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!("refusing to follow a redirect to {next}")));
    }
    Ok(next)
}

/// The headers for one hop. Credentials only go to the origin they were given for.
fn request_headers(opts: &HttpOptions, same_origin: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_str(&opts.user_agent).unwrap_or(HeaderValue::from_static("fastdl")),
    );
    if let Some(r) = opts
        .referer
        .as_deref()
        .and_then(|r| HeaderValue::from_str(r).ok())
    {
        h.insert(header::REFERER, r);
    }
    // Ask for the bytes as stored: a compressed reply would make ranges meaningless.
    h.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    for (name, value) in &opts.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue; // rejected when the options were parsed; never sent half-valid
        };
        if !same_origin && CREDENTIAL_HEADERS.contains(&name) {
            continue;
        }
        if name == header::ACCEPT_ENCODING || name == header::RANGE || name == header::IF_RANGE {
            continue; // ours to set
        }
        // A user header replaces our default of the same name.
        if name == header::USER_AGENT || name == header::REFERER {
            h.insert(name, value);
        } else {
            h.append(name, value);
        }
    }
    h
}

/// Checks a header given by the user: a valid name, and a value without control characters
/// (which could split the request).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::Invalid(format!("bad header {name:?}: {why}"));
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid header name"))?;
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad("control characters in the value"));
    }
    HeaderValue::from_str(value).map_err(|_| bad("invalid header value"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_with_their_origin() {
        let opts = HttpOptions {
            headers: vec![
                ("Authorization".into(), "Bearer x".into()),
                ("Cookie".into(), "a=b".into()),
                ("X-Other".into(), "kept".into()),
            ],
            ..HttpOptions::default()
        };
        let same = request_headers(&opts, true);
        assert!(same.contains_key(header::AUTHORIZATION) && same.contains_key(header::COOKIE));
        let other = request_headers(&opts, false);
        assert!(!other.contains_key(header::AUTHORIZATION));
        assert!(!other.contains_key(header::COOKIE));
        assert_eq!(other["x-other"], "kept");
    }

    #[test]
    fn user_agent_can_be_replaced() {
        let opts = HttpOptions {
            headers: vec![("User-Agent".into(), "yt-dlp".into())],
            ..HttpOptions::default()
        };
        let h = request_headers(&opts, true);
        assert_eq!(h.get_all(header::USER_AGENT).iter().count(), 1);
        assert_eq!(h[header::USER_AGENT], "yt-dlp");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(parse_url("https://example.com/a").is_ok());
        for bad in ["file:///etc/passwd", "ftp://x/y", "notaurl", "http://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_checked() {
        assert!(check_header("X-A", "b c").is_ok());
        assert!(check_header("X-A", "b\r\nEvil: 1").is_err());
        assert!(check_header("Bad Name", "v").is_err());
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        let v = |e: Option<&str>, lm: Option<&str>| Validators {
            etag: e.map(Into::into),
            last_modified: lm.map(Into::into),
        };
        assert_eq!(v(Some("\"a\""), Some("d")).if_range(), Some("\"a\""));
        assert_eq!(v(Some("W/\"a\""), Some("d")).if_range(), Some("d"));
        assert_eq!(v(Some("W/\"a\""), None).if_range(), None);
        assert!(v(Some("\"a\""), None)
            .difference(&v(Some("\"b\""), None))
            .is_some());
        assert!(v(Some("\"a\""), None)
            .difference(&v(None, Some("d")))
            .is_none());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text given as a URL: an http(s) URL with a host, or a typed error.
        #[test]
        fn urls_are_http_with_a_host_or_refused(s in "((https?|ftp|file|javascript):(//)?)?\\PC{0,40}") {
            if let Ok(u) = parse_url(&s) {
                prop_assert!(matches!(u.scheme(), "http" | "https") && u.host().is_some());
            }
        }

        /// Header arguments that pass the check cannot split a request.
        #[test]
        fn checked_headers_cannot_split_requests(name in "\\PC{0,12}", value in "\\PC{0,20}") {
            if check_header(&name, &value).is_ok() {
                prop_assert!(!value.contains(['\r', '\n']) && !name.contains(['\r', '\n', ':']));
            }
        }
    }
}
