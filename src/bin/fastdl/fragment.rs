//! HLS/DASH fragment jobs (`--fragments JOB.json`), as yt-dlp's FastdlFD hands them over.
//! Either every piece names its own `out` file (yt-dlp then decrypts and concatenates them):
//!
//! ```json
//! {"version": 1, "fragments": [
//!   {"url": "https://cdn/seg0.ts", "out": "video.mp4.part-Frag0", "byte_range": null},
//!   {"url": "https://cdn/all.mp4", "out": "video.mp4.part-Frag1", "byte_range": {"start": 0, "end": 1024}}
//! ]}
//! ```
//!
//! or the job names one `output` and the pieces are joined into it in order, as they arrive
//! (ordered.rs): `{"version": 1, "output": "video.mp4.part", "fragments": [{"url": ...}, ...]}`.
//!
//! Structured JSON only: a URL or path can never become an option (aria2c's line-based input
//! file could, CVE-2026-50574). Only http(s) URLs; every file is written through `.part` and a
//! rename, so yt-dlp never reads a truncated piece; a piece or a joined file already complete is
//! skipped on a re-run. `byte_range.end` is exclusive.

use std::path::PathBuf;

use serde::Deserialize;

use fastdl::{parse_url, Error, Piece};

use crate::job::Job;

/// `byte_range` in a fragment job: `end` exclusive.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByteRange {
    start: u64,
    end: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    version: u32,
    /// Join every fragment into this file, in order.
    #[serde(default)]
    output: Option<PathBuf>,
    fragments: Vec<Fragment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fragment {
    url: String,
    #[serde(default)]
    out: Option<PathBuf>,
    #[serde(default)]
    byte_range: Option<ByteRange>,
}

/// Parses a fragment job into its jobs: one per piece, in order, or one joined job.
/// `name` is for messages.
pub fn parse(text: &str, name: &str) -> Result<Vec<Job>, Error> {
    let file: JobFile = serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("{name}: not a fragment job: {e}")))?;
    if file.version != 1 {
        return Err(Error::Invalid(format!(
            "{name}: fragment job version {} is not supported",
            file.version
        )));
    }
    let bad_path =
        |p: &PathBuf| p.as_os_str().is_empty() || p.to_string_lossy().chars().any(char::is_control);
    if file.output.as_ref().is_some_and(bad_path) {
        return Err(Error::Invalid(format!("{name}: bad output path")));
    }
    let mut jobs = Vec::new();
    let mut pieces = Vec::new();
    for (i, f) in file.fragments.into_iter().enumerate() {
        let bad = |why: String| Error::Invalid(format!("{name}: fragment {i}: {why}"));
        parse_url(&f.url).map_err(|e| bad(e.to_string()))?;
        if let Some(r) = f.byte_range {
            if r.end <= r.start {
                return Err(bad(format!("empty byte_range {}-{}", r.start, r.end)));
            }
        }
        let piece = match f.byte_range {
            Some(r) => Piece::range(f.url, r.start, r.end),
            None => Piece::new(f.url),
        };
        match (&file.output, f.out) {
            (Some(_), None) => pieces.push(piece),
            (None, Some(out)) if !bad_path(&out) => jobs.push(Job {
                url: piece.url().to_string(),
                output: Some(out),
                pieces: vec![piece],
                ..Job::default()
            }),
            (None, Some(_)) => return Err(bad("bad out path".into())),
            (None, None) => return Err(bad("no out path (and the job has no output)".into())),
            (Some(_), Some(_)) => {
                return Err(bad("out given, but the job joins into output".into()))
            }
        }
    }
    if let Some(output) = file.output {
        let Some(first) = pieces.first() else {
            return Err(Error::Invalid(format!("{name}: no fragments")));
        };
        jobs.push(Job {
            url: first.url().to_string(),
            output: Some(output),
            pieces,
            ..Job::default()
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_parsed_strictly() {
        let ok = r#"{"version":1,"fragments":[{"url":"http://h/a.ts","out":"v.part-Frag0","byte_range":null},
                     {"url":"http://h/all","out":"v.part-Frag1","byte_range":{"start":10,"end":20}}]}"#;
        let jobs = parse(ok, "job").unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1].pieces[0].byte_range(), Some((10, 20)));
        let joined = r#"{"version":1,"output":"v.part","fragments":[{"url":"http://h/a.ts"},
                         {"url":"http://h/b.ts","byte_range":null}]}"#;
        let jobs = parse(joined, "job").unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].pieces.len(), 2);
        assert_eq!(jobs[0].output, Some(PathBuf::from("v.part")));
        let cases = [
            (
                r#"{"version":1,"fragments":[{"url":"file:///etc/passwd","out":"x"}]}"#,
                "job: fragment 0: file:///etc/passwd: unsupported scheme",
            ),
            (
                r#"{"version":1,"fragments":[{"url":"http://h/a","out":"x","exec":"rm"}]}"#,
                "job: not a fragment job: unknown field `exec`",
            ),
            (
                r#"{"version":2,"fragments":[]}"#,
                "job: fragment job version 2",
            ),
            (
                r#"{"version":1,"fragments":[{"url":"http://h/a","out":"x","byte_range":{"start":5,"end":5}}]}"#,
                "job: fragment 0: empty byte_range",
            ),
            ("http://h/a\n", "job: not a fragment job"),
            (
                r#"{"version":1,"fragments":[{"url":"http://h/a"}]}"#,
                "job: fragment 0: no out path",
            ),
            (
                r#"{"version":1,"output":"v","fragments":[{"url":"http://h/a","out":"x"}]}"#,
                "job: fragment 0: out given",
            ),
            (
                r#"{"version":1,"output":"v","fragments":[]}"#,
                "job: no fragments",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text, "job").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text, and JSON that is almost a job: jobs or an error naming the file.
        #[test]
        fn fragment_jobs_never_panic(
            text in "\\PC{0,60}",
            out in "[a-z./]{0,10}",
            start in 0u64..100,
            end in 0u64..100,
        ) {
            for t in [text.clone(), format!(
                r#"{{"version":1,"fragments":[{{"url":"http://h/a","out":"{out}","byte_range":{{"start":{start},"end":{end}}}}}]}}"#
            )] {
                if let Err(e) = parse(&t, "job.json") {
                    prop_assert!(e.to_string().starts_with("job.json"), "{}", e);
                }
            }
        }
    }
}
