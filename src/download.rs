//! One file, start to finish: probe, name, decide whether earlier bytes can be reused, fetch
//! (segmented over many connections, or as one stream when the server cannot do ranges), verify,
//! and only then rename `FILE.part` to `FILE`.
//!
//! The probe is the first segment: a `GET` with `Range: bytes=S-` that learns size, validators
//! and range support from its headers and then keeps streaming its body into the file while the
//! other connections start. There is no HEAD round trip.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use reqwest::header;
use url::Url;

use crate::checksum::{self};
use crate::context::{Context, OutputClaim};
use crate::error::Error;
use crate::events::Level;
use crate::failure::{self, Decision, Place, Retries};
use crate::finish::{existing, recorded, FileSpec};
use crate::http::{self, Validators};
use crate::naming;
use crate::output::part_path;
use crate::probe::{check_filesize, plain_get, probe, warm_up, ProbeKind, Warm, WARM_UP_AFTER};
use crate::range::RangeSet;
use crate::redact::SafeUrl;
use crate::request::{Outcome, Request};
use crate::resume::{self, state_path, ResumeState};
use crate::segmented::segmented;
use crate::stream::stream;

/// Downloads `job`; `id` tells its events apart from other downloads'. Emits `Finished` or
/// `Failed`, then `Ended`, for it.
pub(crate) async fn download(ctx: Arc<Context>, id: usize, job: Request) -> Result<Outcome, Error> {
    let started = Instant::now();
    let (mut result, retried) = match ctx.for_job(&job) {
        Ok(ctx) => {
            let retried = Arc::clone(&ctx.retried);
            (download_inner(&Arc::new(ctx), id, &job).await, retried)
        }
        Err(e) => (Err(e), Default::default()),
    };
    let attempts = 1 + retried.load(std::sync::atomic::Ordering::Relaxed);
    if let Ok(outcome) = &mut result {
        outcome.attempts = attempts;
    }
    ctx.events
        .ended((id, &job.url), &result, attempts, started.elapsed());
    result
}

/// Tries the job's URL, then each mirror while the failure is about the source (a 404, a dead
/// host), not about the file or the user; starts over when the file changed on the server.
async fn download_inner(ctx: &Arc<Context>, id: usize, job: &Request) -> Result<Outcome, Error> {
    if !job.pieces.is_empty() {
        return crate::ordered::join(ctx, id, job).await;
    }
    if let Some(writer) = &job.writer {
        return crate::ordered::to_writer(ctx, id, job, writer.clone()).await;
    }
    let started = Instant::now();
    let mut mirrors = job.mirrors.iter();
    let mut url = http::parse_url(&job.url)?;
    let mut fresh = !ctx.options.resume;
    let mut restarts = 0;
    // The file-level decisions never retry: that budget is the requests'.
    let mut retries = Retries::new(&ctx.options.retry);
    loop {
        let err = match attempt(ctx, id, job, &url, fresh, started, true).await {
            Err(e) => e,
            ok => return ok,
        };
        let place = Place::File {
            restarts,
            mirrors_left: mirrors.len() > 0,
        };
        match failure::decide(ctx, Some(id), &mut retries, &err, place) {
            Decision::Restart => {
                ctx.events
                    .log(Some(id), Level::Warning, format!("{err}; starting over"));
                restarts += 1;
                fresh = true;
            }
            Decision::DropSource => {
                let mirror = mirrors.next().expect("a mirror is left");
                ctx.events.log(
                    Some(id),
                    Level::Warning,
                    format!("{err}; trying mirror {mirror}"),
                );
                url = http::parse_url(mirror)?;
            }
            _ => return Err(err),
        }
    }
}

/// Resume state for `output`, if it exists, matches its `.part`, and can be validated.
fn load_resume(ctx: &Context, id: usize, output: &Path) -> Option<ResumeState> {
    let part = part_path(output);
    let state = resume::load(&state_path(&part))?;
    let part_len = std::fs::metadata(&part).ok()?.len();
    if part_len != state.size {
        return None;
    }
    if state.validators.if_range().is_none() {
        ctx.events.log(
            Some(id),
            Level::Warning,
            format!(
                "{}: the server gave no ETag or Last-Modified, so the partial download cannot be \
                 checked against the current file; starting over",
                output.display()
            ),
        );
        return None;
    }
    Some(state)
}

/// One pass at the file; `Changed` makes the caller start over with `fresh`.
async fn attempt(
    ctx: &Arc<Context>,
    id: usize,
    job: &Request,
    url: &Url,
    fresh: bool,
    started: Instant,
    guess_name: bool,
) -> Result<Outcome, Error> {
    let known_output = job.output.as_deref().map(|o| job.place(o));
    // Without -o the name usually comes from the URL. Guessing it before the first request
    // means a finished file needs no request at all, and an interrupted one resumes from its
    // first missing byte instead of a wasted `bytes=0-`.
    let guess = known_output
        .clone()
        .or_else(|| guess_name.then(|| job.place(Path::new(&naming::file_name(None, url)))));
    // Nothing is at the guessed name: when the server names the file so, no need to look again.
    let mut guess_missing = false;
    if let Some(out) = &known_output {
        if let Some(done) = existing(ctx, job, out, started)? {
            return Ok(done);
        }
    } else if let Some(g) = guess.as_deref().filter(|_| !ctx.options.overwrite) {
        match std::fs::metadata(g) {
            Ok(meta) => {
                if let Some(done) = recorded(ctx, &job.url, g, &meta, started) {
                    return Ok(done);
                }
            }
            Err(e) => guess_missing = e.kind() == std::io::ErrorKind::NotFound,
        }
    }
    let mut candidate = match &guess {
        Some(out) if !fresh => load_resume(ctx, id, out),
        _ => None,
    };
    // A resumed file's probe asks for its first gap only: an open-ended range would have the
    // server send the parts already on disk until the connection closes.
    let first_gap = candidate
        .as_ref()
        .and_then(|c| c.done.gaps(c.size).first().copied());
    let (start, end) = first_gap.map_or((0, None), |g| (g.start, Some(g.end)));
    let if_range = candidate
        .as_ref()
        .and_then(|c| c.validators.if_range().map(str::to_owned));
    // Nothing is on disk yet, so a stop while waiting or probing needs no saving.
    let host = url.host_str().unwrap_or_default().to_string();
    let warm = Arc::new(Warm::default());
    let (transfer, permit, probe) = tokio::select! {
        p = async {
            let (transfer, permit) = ctx.admit(&host).await;
            let probe = probe(ctx, id, url, (start, end), if_range.as_deref());
            let warm_up = async {
                if ctx.options.warm_up {
                    tokio::time::sleep(WARM_UP_AFTER).await;
                    warm_up(ctx, id, url, &warm);
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                p = probe => (transfer, permit, p),
                _ = warm_up => unreachable!("warm_up never ends"),
            }
        } => (p.0, p.1, p.2?),
        _ = ctx.shutdown.wait() => return Err(Error::Interrupted),
    };

    if let Some(size) = probe.size() {
        check_filesize(ctx, url, size)?;
    }
    let output = match known_output {
        Some(out) => out,
        None => {
            let cd = probe
                .resp
                .headers()
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok());
            let out = job.place(Path::new(&naming::file_name(cd, &probe.url)));
            let looked = guess_missing && guess.as_ref() == Some(&out);
            if !looked {
                if let Some(done) = existing(ctx, job, &out, started)? {
                    return Ok(done);
                }
            }
            if guess.as_ref() != Some(&out) {
                if probe.start != 0 {
                    // We resumed under the URL's name, but the server names the file otherwise:
                    // that state is not this file's. Ask again, from byte 0, without guessing.
                    drop((probe, permit, transfer));
                    return Box::pin(attempt(ctx, id, job, url, fresh, started, false)).await;
                }
                candidate = if fresh {
                    None
                } else {
                    load_resume(ctx, id, &out)
                };
            }
            out
        }
    };

    let claim = OutputClaim::take(ctx, &output).await?;
    let mut checksums = job.checksums.clone();
    let full_body = matches!(probe.kind, ProbeKind::Full { .. });
    // The digests of a compressed reply are the compressed bytes'.
    if crate::body::is_plain(&probe.resp) {
        checksums.extend(checksum::from_headers(probe.resp.headers(), full_body));
    }
    // Every mirror but the one this attempt probed (it may be a mirror, the job's URL failing).
    let mirrors = std::iter::once(&job.url)
        .chain(&job.mirrors)
        .filter(|m| m.as_str() != url.as_str())
        .filter_map(|m| http::parse_url(m).ok())
        .filter(|m| m != url)
        .collect();
    let modified = probe
        .validators
        .last_modified
        .as_deref()
        .filter(|_| ctx.options.remote_time)
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let file = FileSpec {
        claim,
        id,
        url: job.url.clone(),
        mirrors,
        output,
        checksums,
        started,
        modified,
    };
    let output = &file.output;

    match probe.kind {
        ProbeKind::Ranged { total, end } => {
            let done = match candidate {
                Some(c)
                    if c.size == total && c.validators.difference(&probe.validators).is_none() =>
                {
                    c.done
                }
                Some(c) => {
                    let detail = c
                        .validators
                        .difference(&probe.validators)
                        .unwrap_or_else(|| format!("size was {}, now {total}", c.size));
                    if probe.start != 0 {
                        // This reply starts mid-file; a fresh attempt needs one from byte 0.
                        return Err(Error::Changed {
                            url: SafeUrl::new(url),
                            detail,
                        });
                    }
                    ctx.events.log(
                        Some(id),
                        Level::Warning,
                        format!(
                            "{}: cannot resume ({detail}); starting over",
                            output.display()
                        ),
                    );
                    RangeSet::new()
                }
                None => RangeSet::new(),
            };
            // Early connections to the host the probe was redirected away from are no use.
            let warm = match probe.url.host_str() == url.host_str() {
                true => warm,
                false => Arc::default(),
            };
            let permits = (permit, transfer, warm);
            let err = match segmented(ctx, &file, probe, (total, end), done, permits).await {
                Err(e) => e,
                ok => return ok,
            };
            let mut retries = Retries::new(&ctx.options.retry);
            if failure::decide(ctx, Some(id), &mut retries, &err, Place::Segments)
                != Decision::OneStream
            {
                return Err(err);
            }
            // The server broke range rules with no connection left to try: one plain stream.
            ctx.events.log(
                Some(id),
                Level::Warning,
                format!("{err}; downloading over a single connection"),
            );
            let (transfer, permit) = ctx.admit(&host).await;
            let (resp, final_url) = plain_get(ctx, id, url).await?;
            let size = crate::body::file_bytes(&resp);
            // Its ranges said the file has `total` bytes: a whole reply of another size means
            // the server's answers disagree, and the file starts over rather than trusting one.
            if let Some(len) = size.filter(|&len| len != total) {
                return Err(Error::Changed {
                    url: SafeUrl::new(&final_url),
                    detail: format!("its ranges said {total} bytes, a whole reply {len}"),
                });
            }
            let v = Validators::default();
            let size = size.or(Some(total));
            stream(ctx, &file, resp, final_url, size, v, (permit, transfer)).await
        }
        ProbeKind::Full { size } => {
            if candidate.is_some() {
                ctx.events.log(
                    Some(id),
                    Level::Warning,
                    format!(
                        "{}: the server sent the whole file instead of the missing part (it changed \
                         or does not support ranges); starting over",
                        output.display()
                    ),
                );
            }
            let v = probe.validators;
            stream(
                ctx,
                &file,
                probe.resp,
                probe.url,
                size,
                v,
                (permit, transfer),
            )
            .await
        }
    }
}
