//! Choosing a local file name from what a server says (`Content-Disposition`) or the URL path,
//! made safe: one plain name, never a path, never able to leave the output directory.

use url::Url;

/// Longest name we produce, in bytes (common filesystem limit, minus room for `.part.fastdl`).
const MAX_NAME: usize = 240;

/// The name to save `url` under, given the reply's `Content-Disposition`, if any.
pub fn file_name(disposition: Option<&str>, url: &Url) -> String {
    disposition
        .and_then(name_from_disposition)
        .and_then(|n| sanitize(&n))
        .or_else(|| name_from_url(url).and_then(|n| sanitize(&n)))
        .unwrap_or_else(|| "download".to_string())
}

/// `filename*=UTF-8''...` (RFC 6266/8187) wins over `filename="..."`.
fn name_from_disposition(value: &str) -> Option<String> {
    let mut plain = None;
    for param in split_params(value) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let val = val.trim();
                let (charset, rest) = val.split_once('\'')?;
                let (_lang, encoded) = rest.split_once('\'')?;
                let bytes = percent_decode(encoded);
                if charset.eq_ignore_ascii_case("utf-8") {
                    return String::from_utf8(bytes).ok();
                }
                // ISO-8859-1: every byte is the code point of the same value.
                return Some(bytes.into_iter().map(char::from).collect());
            }
            "filename" => plain = Some(unquote(val.trim())),
            _ => {}
        }
    }
    plain
}

/// Splits on `;` outside quotes.
fn split_params(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
                continue;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => s.to_string(),
    }
}

fn name_from_url(url: &Url) -> Option<String> {
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    String::from_utf8(percent_decode(last)).ok()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Makes `name` a safe single file name, or `None` if nothing usable is left.
///
/// Only the last path component survives (both `/` and `\`, so `..\..\x` cannot climb on any
/// platform), control characters are dropped, leading dots are removed (no `..`, no hidden
/// files), and the result is cut to a sane length on a character boundary. Windows' rules hold
/// on every platform, so a name is valid wherever the file is copied: `<>:"|?*` become `_`,
/// trailing dots and spaces go, and a reserved device name (`CON`, `NUL`, `COM1`, `LPT9`...,
/// with any extension) gets a `_` in front.
pub fn sanitize(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Dots and spaces together: `. .u` must not come out as `.u`.
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let mut end = trimmed.len().min(MAX_NAME);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    // After the cut, which could end on a dot or a space.
    let name = trimmed[..end].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if name.is_empty() {
        return None;
    }
    Some(match is_reserved_on_windows(name) {
        true => format!("_{name}"),
        false => name.to_string(),
    })
}

/// `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and their superscript-digit
/// forms), `CONIN$`, `CONOUT$`: device names on Windows, whatever the extension.
fn is_reserved_on_windows(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    matches!(prefix.as_str(), "COM" | "LPT")
        && matches!(rest.as_slice(), [c] if c.is_ascii_digit() || matches!(c, '¹' | '²' | '³'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn names_come_from_disposition_then_url() {
        let u = url("http://h/dir/file%20name.iso?x=1");
        assert_eq!(file_name(None, &u), "file name.iso");
        assert_eq!(
            file_name(Some("attachment; filename=\"a b.txt\""), &u),
            "a b.txt"
        );
        assert_eq!(
            file_name(
                Some(
                    "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt"
                ),
                &u
            ),
            "€ rates.txt"
        );
        assert_eq!(
            file_name(Some("attachment; filename=\"semi;colon.txt\""), &u),
            "semi;colon.txt"
        );
        assert_eq!(file_name(None, &url("http://h/")), "download");
        assert_eq!(file_name(None, &url("http://h/a/b/")), "b");
    }

    #[test]
    fn hostile_names_cannot_escape() {
        let u = url("http://h/x");
        let cases = [
            ("attachment; filename=\"../../etc/passwd\"", "passwd"),
            ("attachment; filename=\"..\\\\..\\\\boot.ini\"", "boot.ini"),
            ("attachment; filename=\"..\"", "x"),
            ("attachment; filename=\".bashrc\"", "bashrc"),
            ("attachment; filename*=UTF-8''..%2F..%2Fevil", "evil"),
            ("attachment; filename=\"a\u{7}b\"", "ab"),
            ("attachment; filename=\"/abs/path.bin\"", "path.bin"),
            ("attachment; filename=\"\"", "x"),
        ];
        for (header, want) in cases {
            assert_eq!(file_name(Some(header), &u), want, "{header}");
        }
        assert_eq!(file_name(None, &url("http://h/%2E%2E")), "download");
        for (name, want) in [
            ("CON", Some("_CON")),
            ("nul.txt", Some("_nul.txt")),
            ("com1.tar.gz", Some("_com1.tar.gz")),
            ("LPT9", Some("_LPT9")),
            ("COM¹.bin", Some("_COM¹.bin")),
            ("console.txt", Some("console.txt")),
            ("com10", Some("com10")),
            ("report.pdf. . ", Some("report.pdf")),
            ("a<b>c:d|e?f*g\"h", Some("a_b_c_d_e_f_g_h")),
            (" . ", None),
            // Found by the fuzz target: dots and spaces (and dropped control characters) mixed.
            (". .bashrc", Some("bashrc")),
            (".\0\0 \0.u", Some("u")),
            ("1 .\u{a0}", Some("1")),
        ] {
            assert_eq!(sanitize(name).as_deref(), want, "{name}");
        }
        let long = "é".repeat(300);
        let got = sanitize(&long).unwrap();
        assert!(got.len() <= MAX_NAME && got.chars().all(|c| c == 'é'));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a server sends as Content-Disposition (or puts in a URL path), the name is
        /// one safe path component.
        #[test]
        fn names_from_servers_are_always_safe(
            cd in "(attachment|inline)?;? ?(filename\\*?=)?(UTF-8'')?\\PC{0,60}",
            path in "[a-zA-Z0-9%./\\\\:_ -]{0,40}",
        ) {
            let url = Url::parse(&format!("http://h/{path}")).unwrap();
            let name = file_name(Some(&cd), &url);
            prop_assert!(!name.is_empty());
            prop_assert!(!name.contains(['/', '\\']) && !name.chars().any(char::is_control));
            prop_assert!(!name.starts_with('.') && !name.ends_with(['.', ' ']));
            prop_assert!(name.len() <= MAX_NAME + 1);
            prop_assert!(!is_reserved_on_windows(&name));
            let again = sanitize(&name);
            prop_assert_eq!(again.as_deref(), Some(name.as_str()), "sanitising is idempotent");
        }
    }
}
