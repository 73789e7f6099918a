//! The library's error type and the one place that decides what is worth retrying.
//!
//! Messages are lowercase, name the URL or path they are about, and say what to do where there is
//! something to do. The binary prints them as `fastdl: error: {message}`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::redact::SafeUrl;
use std::time::Duration;

/// Everything that can make a download fail. Cheap to clone: sources are shared.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or request is not valid (a URL that is not http(s), a bad header, an
    /// unreadable CA file, two downloads writing one file). Nothing was downloaded.
    #[error("{0}")]
    Invalid(String),

    /// The server answered with a status that is not a success.
    #[error("{url}: server answered HTTP {status}{}", reason_suffix(*status))]
    Status {
        url: SafeUrl,
        status: u16,
        /// What the server's `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },

    /// The connection failed: refused, reset, timed out, TLS, DNS...
    #[error("{url}: {}", transport_message(source))]
    Transport {
        url: SafeUrl,
        #[source]
        source: Arc<reqwest::Error>,
    },

    /// The body ended before the promised length.
    #[error("{url}: connection closed after {got} of {expected} bytes")]
    Truncated {
        url: SafeUrl,
        got: u64,
        expected: u64,
    },

    /// The server broke the rules of range requests (wrong `Content-Range`, ignored `Range`...).
    /// Its bytes were not written.
    #[error("{url}: server sent a range we did not ask for: {detail}")]
    RangeViolation { url: SafeUrl, detail: String },

    /// The server compressed the file in a way fastdl cannot undo, or the compressed body is
    /// corrupt. Nothing was kept.
    #[error("{url}: {detail}")]
    Encoding { url: SafeUrl, detail: String },

    /// The resource is not the one we started with (new ETag, Last-Modified or size).
    #[error("{url}: the file changed on the server ({detail})")]
    Changed { url: SafeUrl, detail: String },

    /// A redirect we refuse to follow, or too many of them.
    #[error("{url}: {detail}")]
    Redirect { url: SafeUrl, detail: String },

    /// Reading or writing a local file failed.
    #[error("{}: {source}{}", path.display(), io_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    /// The output file exists and we were not asked to replace it.
    #[error("{}: already exists; pass --overwrite to replace it or -o to choose another name", path.display())]
    Exists { path: PathBuf },

    /// Another process (another fastdl) is downloading this output now.
    #[error("{}: another fastdl is downloading this file now; wait for it to end, or choose another name (-o)", path.display())]
    Busy { path: PathBuf },

    /// The finished file does not match the expected digest or length.
    #[error("{}: {detail}; the file was not kept", path.display())]
    Integrity { path: PathBuf, detail: String },

    /// The file's size is outside `--min-filesize`/`--max-filesize`; nothing was written.
    #[error("{url}: {detail}; not downloaded")]
    FileSize { url: SafeUrl, detail: String },

    /// The download was interrupted by Ctrl-C or SIGTERM; its state is saved for resuming.
    #[error("interrupted; run the same command again to resume")]
    Interrupted,
}

/// What the user can do about the common local failures.
fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; free some space, then run the same command again to resume"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; choose a directory you can write to (-d DIR or -o PATH)"
        }
        _ => "",
    }
}

fn reason_suffix(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// reqwest's own message is the outer layer only ("error sending request"); the useful part is
/// at the bottom of the chain ("Connection refused").
fn transport_message(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "connection failed".to_string()
    };
    let mut cause: Option<&dyn std::error::Error> = err.source();
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    if let Some(last) = last {
        msg.push_str(": ");
        msg.push_str(&last);
    }
    if is_certificate_error(err) {
        msg.push_str(" (--ca-certificate FILE trusts a CA of your own)");
    } else if is_unknown_host(err) {
        msg.push_str(" (no such host: check the URL's host name)");
    }
    msg
}

/// Every error in `err`'s chain, with what each `io::Error` wraps: an io::Error's `source()`
/// skips the error it wraps, and rustls's arrives wrapped in two of them.
fn causes(err: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    use std::error::Error as _;
    type Cause<'a> = &'a (dyn std::error::Error + 'static);
    std::iter::successors(err.source(), |&c: &Cause| c.source()).flat_map(|c| {
        std::iter::successors(Some(c), |&inner: &Cause| {
            inner
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .map(|e| e as Cause)
        })
    })
}

/// True when the server's TLS certificate was rejected: not something a retry can change.
fn is_certificate_error(err: &reqwest::Error) -> bool {
    causes(err)
        .find_map(|c| c.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

/// True when the resolver answered that the host name does not exist (a typo, a dead domain):
/// asking again gives the same answer, so retrying only made a wrong URL take 90 s to fail.
/// "Temporary failure in name resolution" (no resolver reachable) is not this, and is retried.
/// std passes the resolver's text only, so it is matched: glibc, musl, macOS; Windows gives
/// WSAHOST_NOT_FOUND.
fn is_unknown_host(err: &reqwest::Error) -> bool {
    const ANSWERS: [&str; 4] = [
        "Name or service not known",
        "No address associated with hostname",
        "Name does not resolve",
        "nodename nor servname provided, or not known",
    ];
    causes(err)
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|e| {
            let text = e.to_string();
            (cfg!(windows) && e.raw_os_error() == Some(11001))
                || ANSWERS.iter().any(|a| text.contains(a))
        })
}

impl Error {
    /// True when trying the same request again may succeed. This is the only retry decision in
    /// fastdl: connection-level failures, stalls, truncated bodies, and the statuses that mean
    /// "not now" (408, 425, 429, 5xx). Other 4xx, TLS certificate errors and range violations
    /// are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Status { status, .. } => {
                matches!(status, 408 | 425 | 429) || (500..600).contains(status)
            }
            Error::Transport { source, .. } => transport_is_transient(source),
            Error::Truncated { .. } => true,
            _ => false,
        }
    }

    /// The server's `Retry-After`, if it sent one with this error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Wraps a failed request to `url`.
    pub(crate) fn transport(url: impl AsRef<str>, source: reqwest::Error) -> Error {
        Error::Transport {
            url: SafeUrl::new(url),
            source: Arc::new(source),
        }
    }
}

/// A transport failure is transient unless it is about the certificate, a host name that does not
/// exist, or the request itself. Timeouts, resets, refused connections and early EOFs all are:
/// the server may be restarting.
/// (uv's `retryable_on_request_failure` walks the same chain; see style-and-crates.md §1.4.)
fn transport_is_transient(err: &reqwest::Error) -> bool {
    !(err.is_builder() || err.is_redirect() || is_certificate_error(err) || is_unknown_host(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Error {
        Error::Status {
            url: SafeUrl::new("u"),
            status: code,
            retry_after: None,
        }
    }

    #[test]
    fn statuses_that_mean_not_now_are_transient() {
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 416, 451] {
            assert!(!status(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn local_and_integrity_errors_are_final() {
        assert!(!Error::Interrupted.is_transient());
        assert!(!Error::io("x", io::Error::other("disk full")).is_transient());
        assert!(!Error::RangeViolation {
            url: SafeUrl::new("u"),
            detail: "d".into()
        }
        .is_transient());
        assert!(Error::Truncated {
            url: SafeUrl::new("u"),
            got: 1,
            expected: 2
        }
        .is_transient());
    }

    /// A real reqwest error from a resolver that answers as the system's does, for a host name
    /// that does not exist and for one that cannot be looked up now. No DNS server is asked.
    #[tokio::test]
    async fn a_host_that_does_not_exist_is_final_a_lookup_that_failed_is_not() {
        struct Answer(&'static str);
        impl reqwest::dns::Resolve for Answer {
            fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
                let text = format!("failed to lookup address information: {}", self.0);
                Box::pin(async move { Err(Box::new(io::Error::other(text)) as _) })
            }
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        for (answer, transient) in [
            ("Name or service not known", false),
            ("Name does not resolve", false),
            ("Temporary failure in name resolution", true),
        ] {
            let client = reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(std::sync::Arc::new(Answer(answer)))
                .build()
                .unwrap();
            let url = "http://files.example.test/f";
            let err = Error::transport(url, client.get(url).send().await.unwrap_err());
            assert_eq!(err.is_transient(), transient, "{answer}: {err}");
            assert_eq!(
                err.to_string().contains("no such host"),
                !transient,
                "{answer}: {err}"
            );
        }
    }

    #[test]
    fn errors_clone_with_their_sources() {
        let e = Error::io("f", io::Error::other("disk on fire"));
        assert_eq!(e.clone().to_string(), e.to_string());
    }

    #[test]
    fn messages_name_the_url() {
        assert_eq!(
            status(404).to_string(),
            "u: server answered HTTP 404 (Not Found)"
        );
    }
}
