//! Entry points for the coverage-guided fuzz targets in `integration/fuzz` (built only with the
//! `fuzzing` feature; not part of the API). Each takes raw input, runs one private parser and
//! panics if a property every answer must have is broken, which is what the fuzzer looks for.

use std::time::{Duration, SystemTime};

use crate::range::{parse_content_range, ContentRange};

/// `Content-Range`: a parsed range is never empty or past its total.
pub fn content_range(value: &str) {
    if let Some(ContentRange::Bytes { range, total }) = parse_content_range(value) {
        assert!(range.start < range.end, "{value:?} gave an empty range");
        if let Some(total) = total {
            assert!(range.end <= total, "{value:?} ends past its total");
        }
    }
}

/// `Content-Disposition` (and the URL path when it gives nothing): always one plain name that
/// cannot leave the output directory.
pub fn content_disposition(value: &str, path: &str) {
    let url = url::Url::parse("http://h/")
        .and_then(|base| base.join(path))
        .unwrap_or_else(|_| url::Url::parse("http://h/f").unwrap());
    let name = crate::naming::file_name(Some(value), &url);
    assert!(
        !name.is_empty() && name != "." && name != "..",
        "{value:?} gave {name:?}"
    );
    assert!(
        !name.contains(['/', '\\', '\0']),
        "{value:?} gave a path: {name:?}"
    );
    assert!(
        name.len() <= 255,
        "{value:?} gave a name of {} bytes",
        name.len()
    );
    assert!(
        !name.starts_with('.') && !name.ends_with(['.', ' ']),
        "{value:?} gave {name:?}"
    );
    assert_eq!(
        crate::naming::sanitize(&name).as_deref(),
        Some(name.as_str()),
        "not stable"
    );
}

/// `Retry-After`: seconds or a date, never a panic (a date far in the future included).
pub fn retry_after(value: &str) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = crate::retry::parse_retry_after(value, now);
}

/// Digest headers (`Repr-Digest`, `Digest`, `Content-MD5`, `x-goog-hash`), given as
/// `name: value` lines: every digest found has its algorithm's length.
pub fn digest_headers(text: &str) {
    let mut headers = reqwest::header::HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
            reqwest::header::HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    for full_body in [false, true] {
        for sum in crate::checksum::from_headers(&headers, full_body) {
            let shown = sum.to_string();
            let again: crate::Checksum = shown.parse().expect("a digest found reads back");
            assert_eq!(again.to_string(), shown);
        }
    }
}

/// URLs: any text goes through `redact` without a panic; a URL `parse_url` accepts shows no
/// password and no value of a secret query parameter once redacted, however it is spelled.
pub fn url(text: &str) {
    let _ = crate::redact(text);
    let Ok(url) = crate::parse_url(text) else {
        return;
    };
    let shown = crate::redact(url.as_str());
    let again = url::Url::parse(&shown).expect("a redacted URL is still a URL");
    assert!(
        again.password().is_none_or(|p| p == "***"),
        "{url} shown as {shown}"
    );
    for (name, value) in again.query_pairs() {
        if crate::redact::is_secret(&name) {
            assert!(value == "***" || value.is_empty(), "{url} shown as {shown}");
        }
    }
}
