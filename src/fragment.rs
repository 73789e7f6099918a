//! HLS/DASH fragment jobs (`--fragments JOB.json`), as yt-dlp's FastdlFD hands them over:
//!
//! ```json
//! {"version": 1, "fragments": [
//!   {"url": "https://cdn/seg0.ts", "out": "video.mp4.part-Frag0", "byte_range": null},
//!   {"url": "https://cdn/all.mp4", "out": "video.mp4.part-Frag1", "byte_range": {"start": 0, "end": 1024}}
//! ]}
//! ```
//!
//! Structured JSON only: a URL or path can never become an option (aria2c's line-based input
//! file could, CVE-2026-50574). Only http(s) URLs; each piece is written to exactly its `out`,
//! through `out.part` and a rename, so yt-dlp never concatenates a truncated piece; a piece
//! already complete is skipped on a re-run. `byte_range.end` is exclusive.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use reqwest::{header, StatusCode};
use serde::Deserialize;

use crate::download::{Context, Job, Outcome};
use crate::error::Error;
use crate::http::{self, parse_url, Ranged};
use crate::output::{self, part_path, PartFile, Pending};
use crate::range::{check_content_range, ByteRange};
use crate::retry::Backoff;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    version: u32,
    fragments: Vec<Piece>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Piece {
    url: String,
    out: PathBuf,
    #[serde(default)]
    byte_range: Option<ByteRange>,
}

/// Parses a fragment job into one [`Job`] per piece, in order. `name` is for messages.
pub fn parse(text: &str, name: &str) -> Result<Vec<Job>, Error> {
    let file: JobFile = serde_json::from_str(text)
        .map_err(|e| Error::Usage(format!("{name}: not a fragment job: {e}")))?;
    if file.version != 1 {
        return Err(Error::Usage(format!(
            "{name}: fragment job version {} is not supported",
            file.version
        )));
    }
    file.fragments
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let bad = |why: String| Error::Usage(format!("{name}: fragment {i}: {why}"));
            parse_url(&p.url).map_err(|e| bad(e.to_string()))?;
            if p.out.as_os_str().is_empty() || p.out.to_string_lossy().chars().any(char::is_control)
            {
                return Err(bad("bad out path".into()));
            }
            if let Some(r) = p.byte_range {
                if r.end <= r.start {
                    return Err(bad(format!("empty byte_range {}-{}", r.start, r.end)));
                }
            }
            Ok(Job {
                url: p.url,
                output: Some(p.out),
                range: p.byte_range,
                // Pieces are small: their parallelism is across pieces (-j), not within one.
                connections: Some(1),
                ..Job::default()
            })
        })
        .collect()
}

/// Downloads `range` of `job`'s URL into exactly `job.output`.
pub(crate) async fn download_piece(
    ctx: &Arc<Context>,
    id: usize,
    job: &Job,
    range: ByteRange,
    started: Instant,
) -> Result<Outcome, Error> {
    let out = job.output.clone().expect("fragment jobs name their output");
    // The record names the range too: every piece of a BYTERANGE playlist has the same URL.
    let key = format!("{}#bytes={}-{}", job.url, range.start, range.end);
    if let Ok(meta) = std::fs::metadata(&out) {
        if let Some(done) = crate::download::recorded(&key, &out, &meta, started) {
            return Ok(done);
        }
    }
    let url = parse_url(&job.url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let _permits = ctx.admit(&host).await;
    let part_file = part_path(&out);
    let part = PartFile::open(&part_file, None, false)?;
    let len = range.len();
    let mut backoff = Backoff::new(&ctx.options.retry);
    loop {
        let attempt = tokio::select! {
            r = fetch(ctx, id, &url, range, &part) => r,
            _ = ctx.shutdown.wait() => Err(Error::Interrupted),
        };
        let Err(err) = attempt else { break };
        if matches!(err, Error::Interrupted) {
            return Err(err);
        }
        part.reset(None)?;
        crate::download::retry_wait(ctx, id, &mut backoff, err).await?;
    }
    part.sync().await?;
    let got = part.len()?;
    if got != len {
        let _ = std::fs::remove_file(&part_file);
        return Err(Error::Integrity {
            path: out,
            detail: format!("length is {got} bytes, expected {len}"),
        });
    }
    output::write_record(&part_file, &key);
    output::finish(&part_file, &out)?;
    Ok(Outcome {
        path: out,
        bytes: len,
        resumed: 0,
        elapsed: started.elapsed(),
        skipped: false,
    })
}

/// One attempt: asks for the range and writes exactly its bytes, even from a server that
/// ignores `Range` and sends the whole file (the bytes before the range are skipped).
async fn fetch(
    ctx: &Context,
    id: usize,
    url: &url::Url,
    range: ByteRange,
    part: &PartFile,
) -> Result<(), Error> {
    let ranged = Ranged {
        start: range.start,
        end: Some(range.end),
        if_range: None,
    };
    let (mut resp, _) = http::get(
        &ctx.client,
        &ctx.options.http,
        url,
        Some(ranged),
        &ctx.tracer(id),
    )
    .await?;
    let mut skip = match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            let cr = resp
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            check_content_range(cr, range.start, Some(range.end), None).map_err(|detail| {
                Error::RangeViolation {
                    url: url.to_string(),
                    detail,
                }
            })?;
            0
        }
        _ => range.start,
    };
    let mut pos = 0u64;
    let mut buf = Pending::default();
    while pos + buf.len() as u64 + skip < range.len() + skip {
        let Some(mut chunk) = resp.chunk().await.map_err(|source| Error::Transport {
            url: url.to_string(),
            source,
        })?
        else {
            break;
        };
        chunk = output::skip_prefix(chunk, &mut skip);
        let want = (range.len() - pos - buf.len() as u64).min(chunk.len() as u64) as usize;
        ctx.throttle(want).await;
        buf.push(chunk.slice(..want));
        if buf.is_full() {
            let n = buf.len();
            part.write_pending(&mut buf, 0, n, pos)?;
            pos += n as u64;
        }
    }
    let n = buf.len();
    part.write_pending(&mut buf, 0, n, pos)?;
    pos += n as u64;
    if pos < range.len() {
        return Err(Error::Truncated {
            url: url.to_string(),
            got: pos,
            expected: range.len(),
        });
    }
    Ok(())
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
        assert_eq!(jobs[1].range, Some(ByteRange::new(10, 20)));
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
        ];
        for (text, want) in cases {
            let err = parse(text, "job").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }
}
