//! The end of a download: length and digests checked on `FILE.part`, the sync, the rename and the
//! completion record; and the start's question, whether an existing file is already this
//! download, complete (then it is skipped without a request).

use std::path::{Path, PathBuf};
use std::time::Instant;

use url::Url;

use crate::checksum::{self, Checksum};
use crate::context::{Context, OutputClaim};
use crate::error::Error;
use crate::events::Progress;
use crate::output::{self, PartFile};
use crate::request::{Outcome, Request};

/// What a download produces, fixed once its name is known.
pub(crate) struct FileSpec {
    /// The right to write `output` (and its `.part`), held until the download ends.
    pub(crate) claim: OutputClaim,
    pub(crate) id: usize,
    /// The job's URL as given, for the completion record.
    pub(crate) url: String,
    /// Other servers of the same file, for extra connections (input lists' TAB mirrors).
    pub(crate) mirrors: Vec<Url>,
    pub(crate) output: PathBuf,
    pub(crate) checksums: Vec<Checksum>,
    pub(crate) started: Instant,
    /// The modification time to give the finished file (`--remote-time`).
    pub(crate) modified: Option<std::time::SystemTime>,
}

/// Checks length and digests, syncs, renames into place, and reports.
pub(crate) async fn finish(
    ctx: &Context,
    file: &FileSpec,
    part: &PartFile,
    total: u64,
    resumed: u64,
    base: &Progress,
) -> Result<Outcome, Error> {
    let meta = part.metadata()?;
    let len = meta.len();
    if len != total {
        return Err(Error::Integrity {
            path: file.output.clone(),
            detail: format!("length is {len} bytes, expected {total}"),
        });
    }
    if !file.checksums.is_empty() {
        let (path, expected) = (part.path().to_owned(), file.checksums.clone());
        tokio::task::spawn_blocking(move || checksum::verify(&path, &expected))
            .await
            .expect("checksum does not panic")
            .map_err(|e| match e {
                Error::Integrity { detail, .. } => Error::Integrity {
                    path: file.output.clone(),
                    detail,
                },
                other => other,
            })?;
    }
    let sha256 = part.sha256(total).await?;
    let out = (file.output.as_path(), ctx.options.overwrite);
    output::finish(part, meta, out, &file.url, file.modified, sha256.clone()).await?;
    let elapsed = file.started.elapsed();
    ctx.events.finish(base, total, resumed, elapsed);
    Ok(Outcome {
        path: Some(file.output.clone()),
        bytes: total,
        resumed,
        elapsed,
        skipped: false,
        sha256,
        attempts: 1,
    })
}

/// What to do about an output file that already exists: skip it when fastdl can vouch that it
/// is this download, complete (its completion record matches, or every `--checksum` matches);
/// otherwise refuse to touch it unless `--overwrite`.
pub(crate) fn existing(
    ctx: &Context,
    job: &Request,
    output: &Path,
    started: Instant,
) -> Result<Option<Outcome>, Error> {
    if ctx.options.overwrite {
        return Ok(None);
    }
    let Ok(meta) = std::fs::metadata(output) else {
        return Ok(None);
    };
    if let Some(done) = recorded(ctx, &job.url, output, &meta, started) {
        return Ok(Some(done));
    }
    if meta.is_file()
        && !job.checksums.is_empty()
        && checksum::verify(output, &job.checksums).is_ok()
    {
        return Ok(Some(skipped(ctx, output, meta.len(), started, None)));
    }
    Err(Error::Exists {
        path: output.to_owned(),
    })
}

/// `output` (whose metadata is `meta`) as a skipped download, if its completion record names
/// `key` (the job's URL; a fragment adds its byte range) and the file is unchanged since.
pub(crate) fn recorded(
    ctx: &Context,
    key: &str,
    output: &Path,
    meta: &std::fs::Metadata,
    started: Instant,
) -> Option<Outcome> {
    if !meta.is_file() {
        return None;
    }
    let record = crate::record::read(output)?;
    record
        .vouches(key, meta)
        .then(|| skipped(ctx, output, meta.len(), started, record.sha256))
}

/// A file found complete. Its SHA-256, when wanted, is the completion record's (`sha256`), else
/// read from the file (it was finished without one).
fn skipped(
    ctx: &Context,
    output: &Path,
    bytes: u64,
    started: Instant,
    sha256: Option<String>,
) -> Outcome {
    let sha256 = match sha256 {
        Some(hex) if ctx.options.sha256 => Some(hex),
        _ if ctx.options.sha256 => crate::digest::of_file(output).ok(),
        _ => None,
    };
    Outcome {
        path: Some(output.to_owned()),
        bytes,
        resumed: 0,
        elapsed: started.elapsed(),
        skipped: true,
        sha256,
        attempts: 1,
    }
}
