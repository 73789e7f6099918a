//! Which bytes of a reply are the file's: never one past the end the reply announced, whatever
//! its framing says ([`Body`]), and `Content-Encoding` on replies to requests that asked for
//! `identity` decoded or refused.
//!
//! fastdl asks every server for the bytes as stored (`Accept-Encoding: identity`), because
//! ranges of a compressed body say nothing about the file's bytes. Misconfigured servers and
//! CDNs compress anyway. What a reply's encoding means for the file is decided here, once:
//!
//! * none, or `identity`: the body is the file's bytes;
//! * an encoding that *is* the file's own format (`archive.tar.gz` served with
//!   `Content-Encoding: gzip`, Apache's `AddEncoding`): the stored file is what the user asked
//!   for, so the body is kept as it is, ranges and all (browsers do the same);
//! * `gzip` or `deflate` on anything else: a whole-file reply is decoded as it arrives
//!   ([`Decoder`]); a range reply is refused, since its bytes are not the file's;
//! * anything else (`br`, `zstd`, stacked encodings): refused with [`Error::Encoding`].

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use url::Url;

use crate::error::Error;
use crate::redact::SafeUrl;

/// What a reply's body is, relative to the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// The file's bytes, as stored.
    Plain,
    /// gzip-compressed (also `x-gzip`).
    Gzip,
    /// zlib-wrapped deflate, as HTTP's `deflate` means (a raw deflate stream is accepted too).
    Deflate,
}

impl Coding {
    /// The coding of a whole-file reply, or [`Error::Encoding`] when fastdl cannot decode it.
    pub(crate) fn of(resp: &reqwest::Response) -> Result<Coding, Error> {
        coding(resp.headers(), resp.url()).map_err(|detail| Error::Encoding {
            url: SafeUrl::new(resp.url()),
            detail,
        })
    }
}

/// True when a reply's body is the file's bytes as they are (no encoding, or the file's own).
pub(crate) fn is_plain(resp: &reqwest::Response) -> bool {
    coding(resp.headers(), resp.url()) == Ok(Coding::Plain)
}

/// Why a range reply cannot be used because of its `Content-Encoding`, if it cannot.
fn range_problem(resp: &reqwest::Response) -> Option<String> {
    match is_plain(resp) {
        true => None,
        false => Some(format!(
            "the reply is compressed (Content-Encoding: {}) although fastdl asked for identity, \
             so its bytes are not the file's",
            content_encoding(resp.headers()).join(", ")
        )),
    }
}

/// Checks a 206 reply against the request for `start..end` (`None`: to the end): its encoding
/// (the bytes must be the file's) and its `Content-Range` (exactly the range asked for, and
/// `total` if known). Returns the total; the error says what was wrong, for the log.
pub(crate) fn check_range_reply(
    resp: &reqwest::Response,
    start: u64,
    end: Option<u64>,
    total: Option<u64>,
) -> Result<u64, String> {
    if let Some(detail) = range_problem(resp) {
        return Err(detail);
    }
    let cr = resp
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    crate::range::check_content_range(cr, start, end, total)
}

/// How many of the file's bytes a reply's body holds, when the server said: `Content-Length`
/// counts the bytes on the wire, which are not the file's when they are compressed.
pub(crate) fn file_bytes(resp: &reqwest::Response) -> Option<u64> {
    resp.content_length().filter(|_| is_plain(resp))
}

/// The codings a reply names, in order, without `identity`.
fn content_encoding(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v != "identity")
        .collect()
}

/// What the body of a reply from `url` is; the reason when fastdl cannot decode it.
fn coding(headers: &HeaderMap, url: &Url) -> Result<Coding, String> {
    let unsupported = |coding: &str| {
        format!(
            "the server sent the file with Content-Encoding: {coding} although fastdl asked for \
             identity, and fastdl cannot decode that"
        )
    };
    let values = content_encoding(headers);
    let coding = match values.as_slice() {
        [] => return Ok(Coding::Plain),
        [one] => one.as_str(),
        _ => return Err(unsupported(&values.join(", "))),
    };
    if is_the_files_own(coding, headers, url) {
        return Ok(Coding::Plain);
    }
    match coding {
        "gzip" | "x-gzip" => Ok(Coding::Gzip),
        "deflate" => Ok(Coding::Deflate),
        other => Err(unsupported(other)),
    }
}

/// True when `coding` is the stored file's own format: the name ends in that format's
/// extension, or the `Content-Type` says the file is that format.
fn is_the_files_own(coding: &str, headers: &HeaderMap, url: &Url) -> bool {
    let (extensions, types): (&[&str], &[&str]) = match coding {
        "gzip" | "x-gzip" => (
            &[".gz", ".tgz", ".gzip"],
            &[
                "application/gzip",
                "application/x-gzip",
                "application/x-tgz",
            ],
        ),
        "br" => (&[".br"], &["application/x-brotli"]),
        "zstd" => (&[".zst", ".zstd"], &["application/zstd"]),
        "compress" | "x-compress" => (&[".z"], &["application/x-compress"]),
        _ => return false,
    };
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    extensions.iter().any(|e| name.ends_with(e)) || types.contains(&content_type.as_str())
}

/// A reply's body as the file's bytes: decoded when the reply is compressed, and cut at `limit`
/// bytes. A chunked 206 can carry more data than its `Content-Range` announces; those bytes
/// belong to no one and are dropped here, before anything downstream can count or write them.
pub(crate) struct Body {
    resp: reqwest::Response,
    decoder: Option<Decoder>,
    /// File bytes still allowed, when the reply announced how many it holds.
    left: Option<u64>,
    /// True once the server sent more than `limit`.
    overflowed: bool,
}

impl Body {
    /// The body of `resp`, of which at most `limit` bytes (after decoding) are the file's.
    pub(crate) fn new(resp: reqwest::Response, limit: Option<u64>) -> Result<Body, Error> {
        let decoder = Decoder::new(Coding::of(&resp)?, resp.url());
        Ok(Body {
            resp,
            decoder,
            left: limit,
            overflowed: false,
        })
    }

    /// The next bytes, `None` at the end (or at the limit).
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.left == Some(0) {
                // Anything after the limit is the server's mistake. One look, without waiting,
                // tells whether some has arrived, for the log.
                if !self.overflowed {
                    let peek = tokio::time::timeout(Duration::ZERO, self.resp.chunk()).await;
                    self.overflowed = matches!(peek, Ok(Ok(Some(c))) if !c.is_empty());
                }
                return Ok(None);
            }
            let raw = self
                .resp
                .chunk()
                .await
                .map_err(|source| Error::transport(self.resp.url(), source))?;
            let mut chunk = match (raw, &mut self.decoder) {
                (Some(raw), None) => raw,
                (Some(raw), Some(d)) => d.feed(&raw)?,
                (None, Some(d)) => {
                    let rest = d.finish()?;
                    self.decoder = None;
                    rest
                }
                (None, None) => return Ok(None),
            };
            if let Some(left) = &mut self.left {
                if chunk.len() as u64 > *left {
                    chunk.truncate(*left as usize);
                    self.overflowed = true;
                }
                *left -= chunk.len() as u64;
            }
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }

    /// True when the server sent more than the limit (the extra bytes were dropped).
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }
}

/// Decodes a compressed whole-file reply chunk by chunk, in bounded memory.
pub(crate) struct Decoder {
    inner: Inner,
    url: SafeUrl,
}

enum Inner {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    /// Waiting for the first bytes, which tell zlib-wrapped from raw deflate.
    DeflateStart(Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
}

impl Decoder {
    /// A decoder for `coding`, or `None` for plain bodies.
    pub(crate) fn new(coding: Coding, url: &Url) -> Option<Decoder> {
        let inner = match coding {
            Coding::Plain => return None,
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Inner::DeflateStart(Vec::new()),
        };
        Some(Decoder {
            inner,
            url: SafeUrl::new(url),
        })
    }

    /// The decoded bytes of `chunk` (possibly none yet).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, Error> {
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Zlib(d) => d.write_all(chunk),
            Inner::Raw(d) => d.write_all(chunk),
            Inner::DeflateStart(head) => {
                head.extend_from_slice(chunk);
                if head.len() < 2 {
                    return Ok(Bytes::new());
                }
                // RFC 1950: CMF/FLG with method 8 and a header checksum divisible by 31.
                let zlib = head[0] & 0x0f == 8 && u16::from_be_bytes([head[0], head[1]]) % 31 == 0;
                let head = std::mem::take(head);
                self.inner = if zlib {
                    Inner::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    Inner::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                return self.feed(&head);
            }
        };
        result.map_err(|e| self.corrupt(e))?;
        Ok(self.take())
    }

    /// The last decoded bytes, once the reply has ended; an error if the stream was cut short.
    pub(crate) fn finish(&mut self) -> Result<Bytes, Error> {
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::Raw(d) => d.try_finish(),
            Inner::DeflateStart(head) if head.is_empty() => Ok(()),
            Inner::DeflateStart(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        };
        result.map_err(|e| self.corrupt(e))?;
        Ok(self.take())
    }

    fn take(&mut self) -> Bytes {
        let out = match &mut self.inner {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::Raw(d) => d.get_mut(),
            Inner::DeflateStart(_) => return Bytes::new(),
        };
        Bytes::from(std::mem::take(out))
    }

    fn corrupt(&self, e: std::io::Error) -> Error {
        Error::Encoding {
            url: self.url.clone(),
            detail: format!("the compressed reply cannot be decoded ({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn what_each_encoding_means() {
        let bin = Url::parse("http://h/data.bin").unwrap();
        let tgz = Url::parse("http://h/a.tar.gz?x=1").unwrap();
        let ce = "content-encoding";
        for (h, url, want) in [
            (headers(&[]), &bin, Some(Coding::Plain)),
            (headers(&[(ce, "identity")]), &bin, Some(Coding::Plain)),
            (headers(&[(ce, "gzip")]), &bin, Some(Coding::Gzip)),
            (headers(&[(ce, "X-GZIP")]), &bin, Some(Coding::Gzip)),
            (headers(&[(ce, "deflate")]), &bin, Some(Coding::Deflate)),
            (headers(&[(ce, "gzip")]), &tgz, Some(Coding::Plain)),
            (
                headers(&[(ce, "gzip"), ("content-type", "application/x-gzip")]),
                &bin,
                Some(Coding::Plain),
            ),
            (headers(&[(ce, "br")]), &bin, None),
            (headers(&[(ce, "gzip, br")]), &tgz, None),
            (headers(&[(ce, "gzip"), (ce, "gzip")]), &bin, None),
        ] {
            assert_eq!(coding(&h, url).ok(), want, "{h:?} {url}");
        }
    }

    fn decode_all(coding: Coding, encoded: &[u8], piece: usize) -> Result<Vec<u8>, Error> {
        let url = Url::parse("http://h/f").unwrap();
        let mut d = Decoder::new(coding, &url).unwrap();
        let mut out = Vec::new();
        for c in encoded.chunks(piece) {
            out.extend_from_slice(&d.feed(c)?);
        }
        out.extend_from_slice(&d.finish()?);
        Ok(out)
    }

    #[test]
    fn decodes_gzip_zlib_and_raw_deflate_in_any_pieces() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let level = flate2::Compression::fast();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), level);
        zl.write_all(&data).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), level);
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        for piece in [1, 7, 4096, 1 << 20] {
            assert_eq!(decode_all(Coding::Gzip, &gz, piece).unwrap(), data);
            assert_eq!(decode_all(Coding::Deflate, &zl, piece).unwrap(), data);
            assert_eq!(decode_all(Coding::Deflate, &raw, piece).unwrap(), data);
        }
        // Cut short or corrupted: an error, never a short file.
        assert!(decode_all(Coding::Gzip, &gz[..gz.len() / 2], 4096).is_err());
        assert!(decode_all(Coding::Gzip, b"not gzip at all", 4096).is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A compressed body that is not what it claims: decoded bytes or a typed error, never a
        /// panic, in any chunking.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            piece in 1usize..64,
            gzip in any::<bool>(),
        ) {
            let url = Url::parse("http://h/f").unwrap();
            let coding = if gzip { Coding::Gzip } else { Coding::Deflate };
            let mut d = Decoder::new(coding, &url).unwrap();
            let mut failed = false;
            for c in data.chunks(piece) {
                if d.feed(c).is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed {
                let _ = d.finish();
            }
        }
    }
}
