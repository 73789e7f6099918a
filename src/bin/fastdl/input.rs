//! The batch input file (`-i FILE`, `-i -`): aria2c's format, parsed strictly.
//!
//! ```text
//! # a comment
//! https://a.example/f.iso<TAB>https://mirror.example/f.iso
//!   out=f.iso
//!   checksum=sha-256=9f86d0...
//!   header=Authorization: Bearer x
//! https://a.example/g.bin
//! ```
//!
//! A line starting at column 0 is an entry: one URL, or several separated by TABs (mirrors of
//! the same file). Indented `key=value` lines below it set options for that entry. Anything this
//! module does not understand is an error naming the line: a batch file may come from a crawl,
//! so nothing in it is executed, no path in it may leave the output directory, and no control
//! character is accepted.

use std::path::{Component, Path, PathBuf};

use fastdl::{parse_url, Checksum, Error, Request};

use crate::cli::{parse_header, parse_size};
use crate::job::Job;

/// One file of a batch: the job, and the line it came from (for messages). The job's `output`
/// and `dir` are relative to the run's output directory; the caller joins them.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub line: usize,
    pub job: Job,
}

/// Parses an input file's text. `name` is how errors refer to it (`urls.txt`, `stdin`).
pub fn parse(text: &str, name: &str) -> Result<Vec<Entry>, Error> {
    let mut parser = Parser::new(name);
    let mut entries = Vec::new();
    for raw in text.lines() {
        entries.extend(parser.line(raw)?);
    }
    entries.extend(parser.finish());
    Ok(entries)
}

/// A list read line by line (list.rs streams it): an entry is complete when the next URL line
/// or the end of the list comes.
pub struct Parser {
    name: String,
    line: usize,
    pending: Option<Entry>,
}

impl Parser {
    /// `name` is how errors refer to the list (`urls.txt`, `stdin`).
    pub fn new(name: &str) -> Parser {
        Parser {
            name: name.to_string(),
            line: 0,
            pending: None,
        }
    }

    /// The number of the line read last, from 1.
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Reads the next line (without its line ending); returns the entry it completed.
    pub fn line(&mut self, raw: &str) -> Result<Option<Entry>, Error> {
        self.line += 1;
        let line = self.line;
        let bad = |msg: String| Error::Invalid(format!("{}:{line}: {msg}", self.name));
        if let Some(c) = raw.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(bad(format!("control character {c:?} is not allowed")));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        if raw.starts_with([' ', '\t']) {
            let entry = self
                .pending
                .as_mut()
                .ok_or_else(|| bad("option line before any URL".into()))?;
            option(&mut entry.job, trimmed).map_err(&bad)?;
            return Ok(None);
        }
        let mut urls = Vec::new();
        for url in trimmed.split('\t').map(str::trim).filter(|u| !u.is_empty()) {
            parse_url(url).map_err(|e| bad(e.to_string()))?;
            urls.push(url.to_string());
        }
        let url = urls.remove(0);
        let next = Entry {
            line,
            job: Job {
                url,
                mirrors: urls,
                ..Job::default()
            },
        };
        Ok(self.pending.replace(next))
    }

    /// The last entry, at the end of the list.
    pub fn finish(self) -> Option<Entry> {
        self.pending
    }
}

/// Applies one `key=value` option line to `entry`.
fn option(entry: &mut Job, text: &str) -> Result<(), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    let (key, value) = (key.trim(), value.trim());
    let count = |v: &str| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| format!("{key}: {v:?} is not a number from 1 to 256"))
    };
    match key {
        "out" => entry.output = Some(relative_path(key, value)?),
        "dir" => entry.dir = Some(relative_path(key, value)?),
        "checksum" => entry
            .checksums
            .push(value.parse::<Checksum>().map_err(|e| e.to_string())?),
        "header" => entry
            .headers
            .push(parse_header(value).map_err(|e| e.to_string())?),
        "referer" => entry.referer = Some(value.to_string()),
        "user-agent" => entry.user_agent = Some(value.to_string()),
        "split" | "max-connection-per-server" | "connections" => {
            entry.connections = Some(count(value)?)
        }
        "limit-rate" | "max-download-limit" => {
            let rate = parse_size(value).map_err(|e| format!("{key}: {e}"))?;
            entry.limit_rate = (rate > 0).then_some(rate);
        }
        _ => {
            return Err(format!(
                "unknown option {key:?} (known: out, dir, checksum, header, referer, user-agent, \
                 split, max-connection-per-server, limit-rate, max-download-limit)"
            ))
        }
    }
    Ok(())
}

/// A path from the input file: relative, and never climbing out with `..`.
fn relative_path(key: &str, value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    let ok = !value.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok {
        return Err(format!(
            "{key}={value:?} must be a relative path inside the output directory (no .., no leading /)"
        ));
    }
    Ok(path)
}

impl Entry {
    /// The output path this entry is expected to write, known before any request: `out=` or
    /// the name from the URL. (A server's `Content-Disposition` may still pick another name;
    /// the batch checks that at run time.)
    pub fn expected_output(&self, dir: Option<&Path>) -> PathBuf {
        let name = match &self.job.output {
            Some(out) => out.clone(),
            None => Request::new(&self.job.url)
                .planned_path()
                .expect("validated when parsed"),
        };
        let mut path = dir.map(Path::to_path_buf).unwrap_or_default();
        if let Some(sub) = &self.job.dir {
            path.push(sub);
        }
        path.push(name);
        path
    }
}

/// `job` as an entry of an input list (`--save-failed`), its `dir` made relative to the run's
/// `base` directory again; `None` when the list cannot say it (an `-o` outside the output
/// directory, a joined download). What parses back is checked: the entry reads as this job.
pub fn format(job: &Job, base: Option<&Path>) -> Option<String> {
    if !job.pieces.is_empty() {
        return None;
    }
    let mut job = job.clone();
    job.dir = match (job.dir.take(), base) {
        (Some(dir), Some(base)) => dir
            .strip_prefix(base)
            .ok()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf),
        (dir, _) => dir,
    };
    let mut text = job.url.clone();
    for m in &job.mirrors {
        text.push('\t');
        text.push_str(m);
    }
    text.push('\n');
    let mut option = |key: &str, value: &dyn std::fmt::Display| {
        text.push_str(&format!("  {key}={value}\n"));
    };
    if let Some(out) = &job.output {
        option("out", &out.display());
    }
    if let Some(dir) = &job.dir {
        option("dir", &dir.display());
    }
    for c in &job.checksums {
        option("checksum", c);
    }
    for (name, value) in &job.headers {
        option("header", &format!("{name}: {value}"));
    }
    if let Some(r) = &job.referer {
        option("referer", r);
    }
    if let Some(ua) = &job.user_agent {
        option("user-agent", ua);
    }
    if let Some(n) = job.connections {
        option("split", &n);
    }
    if let Some(n) = job.limit_rate {
        option("limit-rate", &n);
    }
    let back = parse(&text, "").ok()?;
    (back.len() == 1 && back[0].job == job).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_mirrors_options_and_comments() {
        let text = "# list\n\nhttp://a/f.iso\thttp://b/f.iso\n  out=x/f.iso\n\tsplit=4\n  header=X-A: 1\n  limit-rate=1M\nhttps://c/g\n";
        let e = parse(text, "urls.txt").unwrap();
        assert_eq!(e.len(), 2);
        let j = &e[0].job;
        assert_eq!(
            (j.url.as_str(), j.mirrors.clone()),
            ("http://a/f.iso", vec!["http://b/f.iso".to_string()])
        );
        assert_eq!(j.output, Some(PathBuf::from("x/f.iso")));
        assert_eq!(j.connections, Some(4));
        assert_eq!(j.limit_rate, Some(1 << 20));
        assert_eq!(j.headers, vec![("X-A".into(), "1".into())]);
        assert_eq!((e[1].line, e[1].job.mirrors.len()), (8, 0));
    }

    #[test]
    fn what_a_list_cannot_say_is_not_written() {
        let joined = Job {
            url: "http://a/f".into(),
            pieces: vec![fastdl::Piece::new("http://a/f1")],
            ..Job::default()
        };
        let absolute = Job {
            url: "http://a/f".into(),
            output: Some("/tmp/f".into()),
            ..Job::default()
        };
        assert_eq!(format(&joined, None), None);
        assert_eq!(format(&absolute, None), None);
        let cli = Job {
            url: "http://a/f".into(),
            dir: Some("d".into()),
            ..Job::default()
        };
        assert_eq!(
            format(&cli, Some(Path::new("d"))).as_deref(),
            Some("http://a/f\n")
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let cases = [
            (
                "http://a/f\n  on-download-complete=/bin/sh\n",
                "urls.txt:2: unknown option \"on-download-complete\"",
            ),
            ("  out=x\n", "urls.txt:1: option line before any URL"),
            (
                "http://a/f\n  out=../../etc/passwd\n",
                "urls.txt:2: out=\"../../etc/passwd\" must be a relative path",
            ),
            (
                "http://a/f\n  out=/etc/passwd\n",
                "urls.txt:2: out=\"/etc/passwd\" must be a relative path",
            ),
            (
                "http://a/f\n  dir=..\n",
                "urls.txt:2: dir=\"..\" must be a relative path",
            ),
            ("ftp://a/f\n", "urls.txt:1: ftp://a/f: unsupported scheme"),
            (
                "file:///etc/passwd\n",
                "urls.txt:1: file:///etc/passwd: unsupported scheme",
            ),
            ("http://a/f\x1b[31m\n", "urls.txt:1: control character"),
            (
                "http://a/f\n  split=0\n",
                "urls.txt:2: split: \"0\" is not a number",
            ),
            (
                "http://a/f\n  header=X: a\rb\n",
                "urls.txt:2: control character",
            ),
            ("http://a/f\n  header=no colon\n", "urls.txt:2: bad header"),
            (
                "http://a/f\n  checksum=sha-256=zz\n",
                "urls.txt:2: bad checksum",
            ),
            ("http://a/f\n  out\n", "urls.txt:2: expected key=value"),
        ];
        for (text, want) in cases {
            let err = parse(text, "urls.txt").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any list: entries or an error naming a line; an entry never writes outside the
        /// output directory and carries no control character.
        #[test]
        fn lists_never_escape(lines in proptest::collection::vec(
            "(https?://[a-z]{1,6}/[a-z./%]{0,12}(\t[a-z:/.]{0,12})?|  (out|dir|checksum|header|split|limit-rate|referer)=[ -~]{0,20}|#\\PC{0,10}|\\PC{0,20})",
            0..10,
        )) {
            let text = lines.join("\n");
            match parse(&text, "l") {
                Ok(entries) => {
                    for e in entries {
                        for p in [&e.job.output, &e.job.dir].into_iter().flatten() {
                            prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)));
                        }
                        for (k, v) in &e.job.headers {
                            prop_assert!(!k.chars().chain(v.chars()).any(|c| c.is_control() && c != '\t'));
                        }
                    }
                }
                Err(e) => prop_assert!(e.to_string().starts_with("l:"), "{}", e),
            }
        }

        /// Every entry a list can hold, written back (`--save-failed`), reads as itself; with a
        /// base directory, as the entry it was before `-d` was joined to its `dir=`.
        #[test]
        fn entries_round_trip(lines in proptest::collection::vec(
            "(https?://[a-z]{1,6}/[a-z./%]{0,12}(	[a-z:/.]{0,12})?|  (out|dir|checksum|header|split|limit-rate|referer|user-agent)=[ -~]{0,20})",
            0..10,
        )) {
            let Ok(entries) = parse(&lines.join("\n"), "l") else { return Ok(()) };
            for e in entries {
                let text = format(&e.job, None);
                prop_assert!(text.is_some(), "{:?}", e.job);
                let mut joined = e.job.clone();
                joined.dir = Some(Path::new("base").join(joined.dir.unwrap_or_default()));
                let again = parse(&format(&joined, Some(Path::new("base"))).unwrap(), "l").unwrap();
                prop_assert_eq!(&again[0].job, &e.job);
            }
        }
    }
}
