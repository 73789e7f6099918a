//! Whole-file digests: the ones the user expects (`--checksum sha-256=HEX`) and the ones a
//! server vouches for (`Repr-Digest`, `Digest`, `Content-MD5`, `x-goog-hash`).
//!
//! Segments arrive out of order, so the digest is computed by reading the finished `.part` once,
//! before it is renamed. Nothing is read when no digest is expected.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use reqwest::header::HeaderMap;
use sha2::Digest;

use crate::error::Error;

/// The digest algorithms fastdl verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "md5" => Some(Algorithm::Md5),
            "sha-1" | "sha1" => Some(Algorithm::Sha1),
            "sha-256" | "sha256" => Some(Algorithm::Sha256),
            "sha-512" | "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha-1",
            Algorithm::Sha256 => "sha-256",
            Algorithm::Sha512 => "sha-512",
        }
    }

    fn output_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// A digest the finished file must have, e.g. `"sha-256=9f86d0...".parse()` (aria2c's
/// `TYPE=HEX`; md5, sha-1, sha-256, sha-512).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    algorithm: Algorithm,
    digest: Vec<u8>,
    /// Who vouched for it, for the error message: the user or a header name.
    source: String,
}

/// `TYPE=HEX`, what `FromStr` reads.
impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.algorithm.name(), to_hex(&self.digest))
    }
}

impl std::str::FromStr for Checksum {
    type Err = Error;

    fn from_str(arg: &str) -> Result<Checksum, Error> {
        let bad = |why: &str| Error::Invalid(format!("bad checksum {arg:?}: {why}"));
        let (name, hex) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected TYPE=HEX"))?;
        let algorithm = Algorithm::from_name(name)
            .ok_or_else(|| bad("type must be md5, sha-1, sha-256 or sha-512"))?;
        let digest = from_hex(hex.trim()).ok_or_else(|| bad("digest is not hexadecimal"))?;
        if digest.len() != algorithm.output_len() {
            return Err(bad(&format!(
                "a {} digest has {} hex digits",
                algorithm.name(),
                2 * algorithm.output_len()
            )));
        }
        Ok(Checksum {
            algorithm,
            digest,
            source: "the checksum given".into(),
        })
    }
}

/// Digests of the whole file that the server sent. `full_body` says whether the reply carried
/// the whole file: `Content-MD5` describes the body, so it only counts then.
pub(crate) fn from_headers(headers: &HeaderMap, full_body: bool) -> Vec<Checksum> {
    let mut out = Vec::new();
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
    };
    let mut push = |algorithm: Option<Algorithm>, digest: Option<Vec<u8>>, source: &str| {
        if let (Some(algorithm), Some(digest)) = (algorithm, digest) {
            if digest.len() == algorithm.output_len() {
                out.push(Checksum {
                    algorithm,
                    digest,
                    source: source.into(),
                });
            }
        }
    };
    // RFC 9530: `Repr-Digest: sha-256=:BASE64:, sha-512=:BASE64:` (of the whole representation).
    for value in all(headers, "repr-digest") {
        for item in value.split(',') {
            if let Some((name, v)) = item.split_once('=') {
                push(
                    Algorithm::from_name(name.trim()),
                    b64(v.trim().trim_matches(':')),
                    "Repr-Digest",
                );
            }
        }
    }
    // RFC 3230: `Digest: SHA-256=BASE64,MD5=BASE64`.
    for value in all(headers, "digest") {
        for item in value.split(',') {
            if let Some((name, v)) = item.split_once('=') {
                push(Algorithm::from_name(name.trim()), b64(v), "Digest");
            }
        }
    }
    // Google Cloud Storage: `x-goog-hash: crc32c=...,md5=BASE64` (of the whole object).
    for value in all(headers, "x-goog-hash") {
        for item in value.split(',') {
            if let Some(v) = item.trim().strip_prefix("md5=") {
                push(Some(Algorithm::Md5), b64(v), "x-goog-hash");
            }
        }
    }
    if full_body {
        for value in all(headers, "content-md5") {
            push(Some(Algorithm::Md5), b64(&value), "Content-MD5");
        }
    }
    out
}

fn all(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// Reads `path` once and checks it against every expected digest.
pub(crate) fn verify(path: &Path, expected: &[Checksum]) -> Result<(), Error> {
    if expected.is_empty() {
        return Ok(());
    }
    let mut hashers: Vec<(Algorithm, Hasher)> = Vec::new();
    for e in expected {
        if !hashers.iter().any(|(a, _)| *a == e.algorithm) {
            hashers.push((e.algorithm, Hasher::new(e.algorithm)));
        }
    }
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        for (_, h) in &mut hashers {
            h.update(&buf[..n]);
        }
    }
    let results: Vec<(Algorithm, Vec<u8>)> =
        hashers.into_iter().map(|(a, h)| (a, h.finish())).collect();
    for e in expected {
        let got = &results
            .iter()
            .find(|(a, _)| *a == e.algorithm)
            .expect("hashed")
            .1;
        if *got != e.digest {
            return Err(Error::Integrity {
                path: path.to_owned(),
                detail: format!(
                    "{} mismatch: {} says {}, the file has {}",
                    e.algorithm.name(),
                    e.source,
                    to_hex(&e.digest),
                    to_hex(got)
                ),
            });
        }
    }
    Ok(())
}

enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Lowercase hex (digest 0.11 outputs no longer implement `LowerHex`).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_checksum(s: &str) -> Result<Checksum, Error> {
        s.parse()
    }
    use reqwest::header::HeaderValue;

    // sha-256("abc") and md5("abc")
    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const MD5_ABC_B64: &str = "kAFQmDzST7DWlj99KOF/cg==";

    #[test]
    fn checksum_arguments() {
        let e = parse_checksum(&format!("sha-256={SHA256_ABC}")).unwrap();
        assert_eq!(e.algorithm, Algorithm::Sha256);
        assert!(parse_checksum("sha-256=abcd").is_err(), "too short");
        assert!(parse_checksum("crc32=00").is_err());
        assert!(parse_checksum("md5").is_err());
    }

    #[test]
    fn server_digests_are_read_from_every_header_kind() {
        let mut h = HeaderMap::new();
        h.insert(
            "repr-digest",
            HeaderValue::from_static("sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:"),
        );
        h.insert(
            "x-goog-hash",
            HeaderValue::from_static("crc32c=n03x6A==,md5=kAFQmDzST7DWlj99KOF/cg=="),
        );
        h.insert("content-md5", HeaderValue::from_static(MD5_ABC_B64));
        let partial = from_headers(&h, false);
        assert_eq!(partial.len(), 2, "Content-MD5 only counts for a full body");
        assert_eq!(from_headers(&h, true).len(), 3);
        assert_eq!(to_hex(&partial[0].digest), SHA256_ABC);
    }

    #[test]
    fn verify_reports_the_mismatch() {
        let path = std::env::temp_dir().join(format!("fastdl-ck-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        verify(
            &path,
            &[parse_checksum(&format!("sha-256={SHA256_ABC}")).unwrap()],
        )
        .unwrap();
        let wrong = parse_checksum(&format!("md5={}", "00".repeat(16))).unwrap();
        let err = verify(&path, &[wrong]).unwrap_err().to_string();
        assert!(
            err.contains("md5 mismatch") && err.contains("900150983cd24fb0d6963f7d28e17f72"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any digest header: digests of the right lengths, or none; never a panic.
        #[test]
        fn digest_headers_never_panic(
            name in "(repr-digest|digest|content-md5|x-goog-hash)",
            value in "[ -~]{0,80}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
                h.insert(reqwest::header::HeaderName::from_static(
                    match name.as_str() { "repr-digest" => "repr-digest", "digest" => "digest",
                        "content-md5" => "content-md5", _ => "x-goog-hash" }), v);
            }
            for c in from_headers(&h, true) {
                prop_assert_eq!(c.digest.len(), c.algorithm.output_len());
            }
        }

        /// `TYPE=HEX` round-trips through its parser.
        #[test]
        fn checksums_round_trip(bytes in proptest::collection::vec(any::<u8>(), 32)) {
            let hex = to_hex(&bytes);
            let c: Checksum = format!("sha-256={hex}").parse().unwrap();
            prop_assert_eq!(c.digest, bytes);
        }

        #[test]
        fn checksum_arguments_never_panic(s in "\\PC{0,80}") {
            let _ = s.parse::<Checksum>();
        }
    }
}
