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
    }
    msg
}

/// True when the server's TLS certificate was rejected: not something a retry can change.
fn is_certificate_error(err: &reqwest::Error) -> bool {
    use std::error::Error as _;
    let mut cause: Option<&dyn std::error::Error> = err.source();
    while let Some(c) = cause {
        // An io::Error's `source()` skips the error it wraps, and rustls's arrives wrapped in
        // two of them: unwrap those by hand.
        let mut inner = c;
        while let Some(wrapped) = inner
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            inner = wrapped;
        }
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        cause = c.source();
    }
    false
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

/// A transport failure is transient unless it is about the certificate or the request itself.
/// Timeouts, resets, refused connections and early EOFs all are: the server may be restarting.
/// (uv's `retryable_on_request_failure` walks the same chain; see style-and-crates.md §1.4.)
fn transport_is_transient(err: &reqwest::Error) -> bool {
    !(err.is_builder() || err.is_redirect() || is_certificate_error(err))
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
