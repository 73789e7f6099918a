//! `--info-json FILE|-`: what yt-dlp knows about a video (`yt-dlp -j`, `--write-info-json`, or
//! one format dict of it) as fastdl jobs, so a format can be fetched without yt-dlp:
//!
//! * `requested_formats` (video + audio to merge): one job per format, saved as
//!   `NAME.f<format_id>.<ext>` like yt-dlp's own parts;
//! * `fragments` (DASH; `url`, or `fragment_base_url` + `path`): one joined job;
//! * otherwise `url`, with `http_headers`.
//!
//! Names come from `-o`, else from `title` and `id`, sanitised like server-given names: they
//! never escape the output directory. URLs must be http(s). HLS formats (`m3u8*` without a
//! fragment list) are refused: their fragments are only known after reading the playlist, which
//! is yt-dlp's job (`yt-dlp --downloader fastdl`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use fastdl::{parse_url, sanitize_file_name as sanitize, Error, Piece};

use crate::job::Job;

/// The part of an info or format dict fastdl uses; everything else is ignored.
#[derive(Deserialize, Default)]
struct Info {
    id: Option<String>,
    title: Option<String>,
    ext: Option<String>,
    format_id: Option<String>,
    url: Option<String>,
    protocol: Option<String>,
    #[serde(default)]
    http_headers: BTreeMap<String, String>,
    fragments: Option<Vec<Fragment>>,
    fragment_base_url: Option<String>,
    requested_formats: Option<Vec<Info>>,
}

#[derive(Deserialize)]
struct Fragment {
    url: Option<String>,
    path: Option<String>,
}

/// The jobs for an info JSON. `output` is `-o`, `name` is for messages.
pub fn parse(text: &str, output: Option<&PathBuf>, name: &str) -> Result<Vec<Job>, Error> {
    let bad = |why: String| Error::Invalid(format!("{name}: {why}"));
    let info: Info =
        serde_json::from_str(text).map_err(|e| bad(format!("not a yt-dlp info JSON: {e}")))?;
    let base = match output {
        // `-o video.mp4` with formats to merge: `video.f137.mp4`, `video.f140.m4a`.
        Some(o) => o.with_extension(""),
        None => {
            let title = info.title.as_deref().unwrap_or("video");
            let stem = match &info.id {
                Some(id) => format!("{title} [{id}]"),
                None => title.to_string(),
            };
            // A title is not a path: its slashes are characters.
            let stem = stem.replace(['/', '\\'], "_");
            PathBuf::from(sanitize(&stem).unwrap_or_else(|| "video".into()))
        }
    };
    match &info.requested_formats {
        Some(formats) if !formats.is_empty() => formats
            .iter()
            .map(|f| {
                let id = f.format_id.as_deref().unwrap_or("0");
                let ext = f.ext.as_deref().unwrap_or("bin");
                let part = sanitize(&format!("f{id}.{ext}"))
                    .ok_or_else(|| bad(format!("bad format id {id:?}")))?;
                let mut out = base.clone().into_os_string();
                out.push(format!(".{part}"));
                format_job(f, PathBuf::from(out), &info.http_headers)
                    .map_err(|why| bad(format!("format {id}: {why}")))
            })
            .collect(),
        _ => {
            let out = match output {
                Some(o) => o.clone(),
                None => {
                    let ext = info.ext.as_deref().unwrap_or("bin");
                    let mut out = base.into_os_string();
                    out.push(format!(
                        ".{}",
                        sanitize(ext).unwrap_or_else(|| "bin".into())
                    ));
                    PathBuf::from(out)
                }
            };
            Ok(vec![format_job(&info, out, &BTreeMap::new()).map_err(bad)?])
        }
    }
}

/// One format as a job writing `output`; `inherited` are the video's headers under the
/// format's own.
fn format_job(
    f: &Info,
    output: PathBuf,
    inherited: &BTreeMap<String, String>,
) -> Result<Job, String> {
    let mut headers = inherited.clone();
    headers.extend(f.http_headers.clone());
    let headers = headers
        .into_iter()
        .map(|(k, v)| {
            if k.chars().chain(v.chars()).any(char::is_control) {
                Err(format!("bad header {k:?}"))
            } else {
                Ok((k, v))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let protocol = f.protocol.as_deref().unwrap_or("https");
    let job = Job {
        output: Some(output),
        headers,
        ..Job::default()
    };
    if let Some(fragments) = &f.fragments {
        let base = f.fragment_base_url.as_deref();
        let pieces = fragments
            .iter()
            .enumerate()
            .map(|(i, frag)| {
                let url = match (&frag.url, &frag.path, base) {
                    (Some(url), _, _) => url.clone(),
                    (None, Some(path), Some(base)) => parse_url(base)
                        .map_err(|e| e.to_string())?
                        .join(path)
                        .map_err(|e| format!("fragment {i}: {e}"))?
                        .to_string(),
                    _ => return Err(format!("fragment {i} has no url")),
                };
                parse_url(&url).map_err(|e| format!("fragment {i}: {e}"))?;
                Ok(Piece::new(url))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first = pieces
            .first()
            .ok_or("the fragment list is empty")?
            .url()
            .to_string();
        return Ok(Job {
            url: first,
            pieces,
            ..job
        });
    }
    if protocol.starts_with("m3u8") || protocol.contains("dash") {
        return Err(format!(
            "protocol {protocol} has no fragment list here; use yt-dlp --downloader fastdl"
        ));
    }
    let url = f.url.as_deref().ok_or("no url")?;
    parse_url(url).map_err(|e| e.to_string())?;
    Ok(Job {
        url: url.to_string(),
        ..job
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fragments_and_names() {
        let text = r#"{"id":"x1","title":"A/B: c","ext":"mp4","http_headers":{"Referer":"https://site/"},
            "requested_formats":[
              {"format_id":"137","ext":"mp4","url":"https://cdn/v.mp4","protocol":"https",
               "http_headers":{"User-Agent":"UA"}},
              {"format_id":"140","ext":"m4a","protocol":"http_dash_segments",
               "fragment_base_url":"https://cdn/a/","fragments":[{"path":"s0.m4s"},{"url":"https://cdn/x.m4s"}]}]}"#;
        let jobs = parse(text, None, "info").unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].url, "https://cdn/v.mp4");
        let name = jobs[0]
            .output
            .as_ref()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.ends_with(" [x1].f137.mp4") && !name.contains('/'),
            "{name}"
        );
        assert!(jobs[0]
            .headers
            .contains(&("Referer".into(), "https://site/".into())));
        assert!(jobs[0]
            .headers
            .contains(&("User-Agent".into(), "UA".into())));
        let urls: Vec<_> = jobs[1].pieces.iter().map(|p| p.url()).collect();
        assert_eq!(urls, ["https://cdn/a/s0.m4s", "https://cdn/x.m4s"]);

        let one = r#"{"url":"http://h/f.webm","ext":"webm","format_id":"251"}"#;
        let jobs = parse(one, Some(&PathBuf::from("out.webm")), "info").unwrap();
        assert_eq!(jobs[0].output, Some(PathBuf::from("out.webm")));

        let cases = [
            (
                r#"{"url":"file:///etc/passwd"}"#,
                "info: file:///etc/passwd: unsupported scheme",
            ),
            (
                r#"{"url":"https://h/m.m3u8","protocol":"m3u8_native"}"#,
                "info: protocol m3u8_native has no fragment list",
            ),
            (
                r#"{"fragments":[{"path":"a"}]}"#,
                "info: fragment 0 has no url",
            ),
            (
                r#"{"url":"http://h/","http_headers":{"X":"a\r\nEvil: 1"}}"#,
                "info: bad header",
            ),
            ("[1]", "info: not a yt-dlp info JSON"),
        ];
        for (text, want) in cases {
            let err = parse(text, None, "info").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any info JSON: jobs whose names stay in the output directory, or an error.
        #[test]
        fn info_json_never_escapes(
            title in "\\PC{0,30}",
            id in "[ -~]{0,10}",
            ext in "[ -~]{0,6}",
            format_id in "[ -~]{0,6}",
        ) {
            let v = serde_json::json!({"id": id, "title": title, "ext": ext, "url": "http://h/f",
                "requested_formats": [{"format_id": format_id, "ext": ext, "url": "http://h/v"}]});
            if let Ok(jobs) = parse(&v.to_string(), None, "info") {
                for j in jobs {
                    let out = j.output.unwrap();
                    prop_assert_eq!(out.components().count(), 1, "{:?}", out);
                }
            }
            let _ = parse(&title, None, "info");
        }
    }
}
