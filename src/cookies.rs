//! A cookie jar read from a Netscape cookies file (`--cookies FILE`, or `-` for standard input,
//! which is how yt-dlp hands its jar to external downloaders).
//!
//! Each request, and each hop of a redirect, gets only the cookies whose domain, path and
//! `secure` flag match that URL: a cookie never leaks to another host through a redirect, the way
//! a flat `Cookie:` header would (yt-dlp's CVE-2026-50019). Cookies the server sets are not
//! stored: a download needs none.

use std::time::{SystemTime, UNIX_EPOCH};

use url::Url;

use crate::error::Error;

/// One cookie, as the Netscape format describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cookie {
    /// Lowercase, without a leading dot.
    domain: String,
    /// True when subdomains match too (a leading dot, or the flag column says TRUE).
    subdomains: bool,
    path: String,
    secure: bool,
    /// Unix seconds; 0 for a session cookie.
    expires: u64,
    name: String,
    value: String,
}

/// The cookies of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Parses the Netscape format: TAB-separated `domain flag path secure expires name value`,
    /// `#` comments, and `#HttpOnly_` before the domain of HttpOnly cookies. `source` names the
    /// file in errors.
    pub fn parse(text: &str, source: &str) -> Result<CookieJar, Error> {
        let mut cookies = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            let line = line.strip_prefix("#HttpOnly_").unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let bad = |why: &str| Error::Invalid(format!("{source}:{}: {why}", i + 1));
            if f.len() != 7 {
                return Err(bad(
                    "expected 7 TAB-separated fields (Netscape cookies format)",
                ));
            }
            if f.iter().any(|v| v.chars().any(|c| c.is_control())) {
                return Err(bad("control character in a cookie"));
            }
            let domain = f[0].to_ascii_lowercase();
            cookies.push(Cookie {
                subdomains: domain.starts_with('.') || f[1].eq_ignore_ascii_case("TRUE"),
                domain: domain.trim_start_matches('.').to_string(),
                path: if f[2].is_empty() {
                    "/".into()
                } else {
                    f[2].into()
                },
                secure: f[3].eq_ignore_ascii_case("TRUE"),
                // yt-dlp writes "" or 0 for session cookies.
                expires: f[4].trim().parse().unwrap_or(0),
                name: f[5].to_string(),
                value: f[6].to_string(),
            });
        }
        Ok(CookieJar { cookies })
    }

    /// The `Cookie` header value for a request to `url`, if any cookie matches.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str()?.to_ascii_lowercase();
        let path = url.path();
        let https = url.scheme() == "https";
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| c.expires == 0 || c.expires > now)
            .filter(|c| !c.secure || https)
            .filter(|c| domain_matches(&host, &c.domain, c.subdomains))
            .filter(|c| path_matches(path, &c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// RFC 6265 §5.1.3: the host is the domain, or (for domain cookies) ends with "." + domain.
fn domain_matches(host: &str, domain: &str, subdomains: bool) -> bool {
    host == domain
        || (subdomains
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// RFC 6265 §5.1.4: the cookie path is a prefix of the request path at a `/` boundary.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAR: &str = "# Netscape HTTP Cookie File\n\
        127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tlocal-secret\n\
        .example.com\tTRUE\t/\tFALSE\t\tdomain\tall-subdomains\n\
        media.example.com\tFALSE\t/private/\tFALSE\t0\tpriv\tp\n\
        #HttpOnly_media.example.com\tFALSE\t/\tTRUE\t4102444800\tsec\ts\n\
        media.example.com\tFALSE\t/\tFALSE\t1\told\texpired\n";

    fn header(url: &str) -> Option<String> {
        CookieJar::parse(JAR, "jar")
            .unwrap()
            .header_for(&Url::parse(url).unwrap())
    }

    #[test]
    fn cookies_are_scoped_by_domain_path_and_secure() {
        assert_eq!(
            header("http://127.0.0.1:8080/v.mp4").as_deref(),
            Some("sid=local-secret")
        );
        assert_eq!(
            header("http://other.test/v.mp4"),
            None,
            "another host gets nothing"
        );
        assert_eq!(
            header("http://media.example.com/v.mp4").as_deref(),
            Some("domain=all-subdomains")
        );
        assert_eq!(
            header("https://media.example.com/private/v.mp4").as_deref(),
            Some("domain=all-subdomains; priv=p; sec=s")
        );
        assert_eq!(
            header("http://media.example.com/privateX").as_deref(),
            Some("domain=all-subdomains")
        );
        assert_eq!(
            header("http://evilexample.com/").as_deref(),
            None,
            "suffix without a dot"
        );
        assert_eq!(header("http://127.0.0.2/").as_deref(), None);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = CookieJar::parse("a\tb\tc\n", "stdin")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("stdin:1: expected 7"), "{err}");
        let err = CookieJar::parse("h\tFALSE\t/\tFALSE\t0\tn\tv\x1bx\n", "jar").unwrap_err();
        assert!(err.to_string().contains("control character"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any cookie file: a jar or a typed error; a jar never puts a control character (which
        /// could split a request) into a Cookie header.
        #[test]
        fn cookie_files_never_panic(lines in proptest::collection::vec(
            "(#HttpOnly_)?[a-z.]{0,12}\t(TRUE|FALSE|x)\t/[a-z]{0,5}\t(TRUE|FALSE)\t[0-9]{0,11}\t\\PC{0,8}\t\\PC{0,12}|\\PC{0,30}",
            0..8,
        )) {
            let text = lines.join("\n");
            if let Ok(jar) = CookieJar::parse(&text, "c.txt") {
                for url in ["http://a.example/x", "https://b.c/", "http://localhost/"] {
                    if let Some(h) = jar.header_for(&Url::parse(url).unwrap()) {
                        prop_assert!(!h.chars().any(|c| c.is_control() && c != '\t'));
                    }
                }
            }
        }
    }
}
