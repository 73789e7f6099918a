//! The fuzz targets' bodies: each takes raw text, runs one of fastdl's parsers and panics if a
//! property every answer must have is broken. The library's private parsers are reached through
//! `fastdl::fuzzing` (the `fuzzing` feature); the binary's are its own modules, declared here as
//! its main.rs declares them so that their `crate::` paths resolve.
//!
//! `fuzz_targets/*.rs` hand one function each to libFuzzer (`cargo +nightly fuzz run`, see
//! README.md); tests/corpus.rs runs every input of the committed corpus through its function on
//! stable, so what a fuzzer once found stays fixed.

#![allow(dead_code, unused_imports)]

#[path = "../../../src/bin/fastdl/batch.rs"]
mod batch;
#[path = "../../../src/bin/fastdl/cli.rs"]
mod cli;
#[path = "../../../src/bin/fastdl/config.rs"]
mod config;
#[path = "../../../src/bin/fastdl/exit.rs"]
mod exit;
#[path = "../../../src/bin/fastdl/fragment.rs"]
mod fragment;
#[path = "../../../src/bin/fastdl/generate.rs"]
mod generate;
#[path = "../../../src/bin/fastdl/info_json.rs"]
mod info_json;
#[path = "../../../src/bin/fastdl/input.rs"]
mod input;
#[path = "../../../src/bin/fastdl/job.rs"]
mod job;
#[path = "../../../src/bin/fastdl/list.rs"]
mod list;
#[path = "../../../src/bin/fastdl/render.rs"]
mod render;
#[path = "../../../src/bin/fastdl/report.rs"]
mod report;
#[path = "../../../src/bin/fastdl/settings.rs"]
mod settings;
#[path = "../../../src/bin/fastdl/shard.rs"]
mod shard;
#[path = "../../../src/bin/fastdl/units.rs"]
mod units;

use std::path::{Component, Path};

pub use fastdl::fuzzing::{content_range, digest_headers, retry_after, url};

/// A target's body: text in, a panic if a property broke.
pub type Target = fn(&str);

/// Every target: its name (the fuzz target and the corpus folder) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("content_range", content_range),
    ("content_disposition", content_disposition),
    ("retry_after", retry_after),
    ("digest_headers", digest_headers),
    ("url", url),
    ("cookies", cookies),
    ("input_list", input_list),
    ("fragment_job", fragment_job),
    ("info_json", info_json),
    ("config_toml", config_toml),
    ("units", units),
];

/// A `Content-Disposition` value (the first line) with a URL path (the rest).
pub fn content_disposition(text: &str) {
    let (value, path) = text.split_once('\n').unwrap_or((text, ""));
    fastdl::fuzzing::content_disposition(value, path)
}

/// Netscape cookie files (`--cookies`): cookies or an error naming the file and line.
pub fn cookies(text: &str) {
    if let Err(e) = fastdl::CookieJar::parse(text, "c.txt") {
        assert!(e.to_string().starts_with("c.txt:"), "{e}");
    }
}

/// Batch lists (`-i`, aria2c's format): entries that stay in the output directory and carry no
/// control character in a header, each of which writes back as a list (`--save-failed`), or an
/// error naming the list and line.
pub fn input_list(text: &str) {
    match input::parse(text, "l") {
        Ok(entries) => {
            for e in entries {
                for p in [&e.job.output, &e.job.dir].into_iter().flatten() {
                    assert!(
                        p.components()
                            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
                        "{p:?} leaves the output directory"
                    );
                }
                for (k, v) in &e.job.headers {
                    assert!(!k
                        .chars()
                        .chain(v.chars())
                        .any(|c| c.is_control() && c != '\t'));
                }
                // `--save-failed` can write every entry a list can hold, and it reads back as
                // itself (`format` checks that, so `None` would be the failure).
                assert!(input::format(&e.job, None).is_some(), "{:?}", e.job);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("l:"), "{e}"),
    }
}

/// Fragment jobs (`--fragments`, from the yt-dlp plugin): jobs or an error naming the file.
pub fn fragment_job(text: &str) {
    if let Err(e) = fragment::parse(text, "job.json") {
        assert!(e.to_string().starts_with("job.json"), "{e}");
    }
}

/// yt-dlp info JSON (`--info-json`): jobs each named by one plain path component, or an error.
pub fn info_json(text: &str) {
    if let Ok(jobs) = info_json::parse(text, None, "info") {
        for j in jobs {
            let out = j.output.expect("an info JSON job has a name");
            let parts: Vec<_> = out.components().collect();
            assert!(matches!(parts[..], [Component::Normal(_)]), "{out:?}");
        }
    }
}

/// Config files (TOML): settings or an error naming the file.
pub fn config_toml(text: &str) {
    let mut args = settings::Args::default();
    if let Err(e) = config::apply_text(&mut args, text, Path::new("c.toml")) {
        assert!(e.to_string().starts_with("c.toml"), "{e}");
    }
}

/// Size and duration arguments (`-k 1M`, `--timeout 30s`, `--limit-rate 2.5M`): a value or a
/// message; a size read back from its digits is the same size.
pub fn units(text: &str) {
    if let Ok(n) = units::parse_size(text) {
        assert_eq!(units::parse_size(&n.to_string()), Ok(n), "{text:?}");
    }
    let _ = units::parse_duration(text);
}
