//! URLs safe to show: a password in a URL (`https://user:pw@host/`) and the secrets of signed
//! URLs (`X-Amz-Signature`, `X-Goog-Signature`, `Signature`, `Key-Pair-Id`, `Policy`, `sig`,
//! `token`, `access_token` and the like) are replaced by `***`. The real URL is used for requests
//! only; every printed line, event, error, state file and completion record gets a [`SafeUrl`]
//! or goes through [`redact`].

use std::borrow::Cow;
use std::fmt;

/// Query parameters whose values are secrets (compared without case).
const SECRET_PARAMS: &[&str] = &[
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "x-goog-security-token",
    "signature",
    "sig",
    "key-pair-id",
    "policy",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "auth_token",
    "authorization",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "hdnts",
    "hmac",
];

/// A URL as it may be shown: see the module docs. Made only through [`SafeUrl::new`], so holding
/// one means the secrets are gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SafeUrl(String);

impl SafeUrl {
    pub fn new(url: impl AsRef<str>) -> SafeUrl {
        SafeUrl(redact(url.as_ref()).into_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SafeUrl {
    fn from(url: &str) -> SafeUrl {
        SafeUrl::new(url)
    }
}

impl From<&url::Url> for SafeUrl {
    fn from(url: &url::Url) -> SafeUrl {
        SafeUrl::new(url)
    }
}

impl fmt::Display for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` with every URL in it made safe to show (see the module docs).
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        // A quote ends a URL in text (`'http://h/f'`), except in the authority: a URL's
        // userinfo may hold a `'` (the url crate leaves it unescaped), and a password cut there
        // would be shown.
        let ends = |c: char| matches!(c, '"' | '<' | '>') || c.is_whitespace();
        let authority = rest[start..]
            .find(|c: char| ends(c) || matches!(c, '/' | '?' | '#'))
            .unwrap_or(rest.len() - start);
        let len = authority
            + rest[start + authority..]
                .find(|c: char| ends(c) || c == '\'')
                .unwrap_or(rest.len() - start - authority);
        // Punctuation closing a sentence or a message (`URL: error`) is not the URL's.
        let len = rest[start..start + len]
            .trim_end_matches(['.', ',', ':', ';', ')'])
            .len();
        let url = &rest[start..start + len];
        out.push_str(&rest[..start]);
        let safe = redact_after_scheme(url);
        changed |= matches!(safe, Cow::Owned(_));
        out.push_str(&safe);
        rest = &rest[start + len..];
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// One URL without its `scheme://`: the password of its authority and the values of its secret
/// query parameters replaced.
fn redact_after_scheme(url: &str) -> Cow<'_, str> {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let mut out = String::new();
    let mut changed = false;
    // The password: between the first ':' of the userinfo and its last '@'.
    match authority
        .rfind('@')
        .and_then(|at| Some((authority[..at].find(':')?, at)))
    {
        Some((colon, at)) if colon + 1 < at => {
            out.push_str(&authority[..colon + 1]);
            out.push_str("***");
            out.push_str(&authority[at..]);
            changed = true;
        }
        _ => out.push_str(authority),
    }
    let (before_query, query_and_fragment) = match path.find('?') {
        Some(q) => path.split_at(q),
        None => (path, ""),
    };
    out.push_str(before_query);
    if let Some(qf) = query_and_fragment.strip_prefix('?') {
        let (query, fragment) = match qf.find('#') {
            Some(h) => qf.split_at(h),
            None => (qf, ""),
        };
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && is_secret(name) => {
                    out.push_str(name);
                    out.push_str("=***");
                    changed = true;
                }
                _ => out.push_str(pair),
            }
        }
        out.push_str(fragment);
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(url)
    }
}

pub(crate) fn is_secret(name: &str) -> bool {
    let decoded = name.replace("%2D", "-").replace("%2d", "-");
    SECRET_PARAMS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_signatures_are_hidden() {
        for (text, shown) in [
            ("http://u:pw@h/f", "http://u:***@h/f"),
            (
                "GET https://u:p%40ss@h:8/f?q=a@b",
                "GET https://u:***@h:8/f?q=a@b",
            ),
            (
                "{\"url\":\"http://u:pw@h\"}",
                "{\"url\":\"http://u:***@h\"}",
            ),
            (
                "a http://:pw@h b http://u2:x@g/",
                "a http://:***@h b http://u2:***@g/",
            ),
            (
                "http://user@h/f and http://h/a:b@c",
                "http://user@h/f and http://h/a:b@c",
            ),
            ("no url here", "no url here"),
            ("http://u:@h/", "http://u:@h/"),
            (
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&x=1",
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Signature=***&x=1",
            ),
            (
                "https://d.cloudfront.net/v.mp4?Expires=1&Signature=s~1&Key-Pair-Id=K1#t=3",
                "https://d.cloudfront.net/v.mp4?Expires=1&Signature=***&Key-Pair-Id=***#t=3",
            ),
            (
                "see https://h/f?token=T&id=7 and https://h/g?sig=S.",
                "see https://h/f?token=***&id=7 and https://h/g?sig=***.",
            ),
            ("https://h/f?token=&a=b", "https://h/f?token=&a=b"),
            ("https://h/f?id=1&ok", "https://h/f?id=1&ok"),
            ("GET http://h/f?sig=S: HTTP 403", "GET http://h/f?sig=***: HTTP 403"),
            // Found by the url fuzz target: a quote inside the userinfo.
            ("http://t0+%20':+th%@e/", "http://t0+%20':***@e/"),
            ("'http://u:p'w@h/f' x", "'http://u:***@h/f' x"),
            ("'http://h/f' and 'http://g/'", "'http://h/f' and 'http://g/'"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
        assert_eq!(
            SafeUrl::new("https://u:p@h/f?access_token=zz").to_string(),
            "https://u:***@h/f?access_token=***"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text around it, a planted secret never survives.
        #[test]
        fn planted_secrets_never_survive(
            before in "\\PC{0,20}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            param in "(X-Amz-Signature|x-goog-signature|Signature|sig|token|access_token|Key-Pair-Id)",
            other in "[a-z]{1,5}=[a-z0-9]{0,5}",
            after in "( |\"|')\\PC{0,20}",
        ) {
            let secret = "S3CR3Tvalue";
            let text = format!("{before}https://user:{secret}@{host}/p?{other}&{param}={secret}{after}");
            let shown = redact(&text);
            prop_assert!(!shown.contains(secret), "{}", shown);
        }

        #[test]
        fn redact_never_panics(s in "\\PC{0,80}") {
            let _ = redact(&s);
        }
    }
}
