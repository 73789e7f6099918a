//! One connection front to back: servers without ranges or without a known size, and the
//! fallback for servers that break range rules.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::{Response, StatusCode};
use url::Url;

use crate::body::Body;
use crate::context::Context;
use crate::error::Error;
use crate::events::{self, Counters, Progress};
use crate::failure::{retry_wait, Retries};
use crate::finish::{finish, FileSpec};
use crate::http::{self, Ranged, Validators};
use crate::limits::Permit;
use crate::output::{part_path, PartFile, Pending};
use crate::probe::check_filesize_max;
use crate::redact::SafeUrl;
use crate::request::Outcome;
use crate::resume::{self, state_path};

/// One connection, front to back: servers without ranges or without a known size.
///
/// A retry asks for the rest with `Range` + `If-Range` when the server gave a validator; any
/// answer but a matching 206 restarts the file from byte 0 with that reply, so bytes from two
/// versions are never mixed.
pub(crate) async fn stream(
    ctx: &Arc<Context>,
    file: &FileSpec,
    resp: Response,
    url: Url,
    size: Option<u64>,
    validators: Validators,
    permits: (Permit, tokio::sync::OwnedSemaphorePermit),
) -> Result<Outcome, Error> {
    let part_file = part_path(&file.output);
    resume::remove(&state_path(&part_file));
    let part = file.claim.part(false)?;
    let counters = Arc::new(Counters::default());
    let base = ctx
        .events
        .start(file.id, url.as_str(), (&file.output, &part_file), size, 0);
    let sampler = events::spawn_sampler(
        ctx.events.clone(),
        Arc::clone(&counters),
        base.clone(),
        ctx.options.progress_interval,
    );
    let result = async {
        let mut retries = Retries::new(&ctx.options.retry);
        let mut pos = 0u64;
        let mut reply = Some(resp);
        loop {
            let resp = match reply.take() {
                Some(r) => r,
                None => {
                    let range = validators.if_range().filter(|_| pos > 0).map(|v| Ranged {
                        start: pos,
                        end: None,
                        if_range: Some(v),
                    });
                    match http::get(
                        &ctx.client,
                        &ctx.options.http,
                        &url,
                        range,
                        &ctx.tracer(file.id),
                    )
                    .await
                    {
                        Ok((r, _)) => r,
                        Err(e) => {
                            retry_wait(ctx, file.id, &mut retries, e).await?;
                            continue;
                        }
                    }
                }
            };
            let continues = resp.status() == StatusCode::PARTIAL_CONTENT
                && crate::body::check_range_reply(&resp, pos, None, size).is_ok();
            if !continues && resp.status() == StatusCode::PARTIAL_CONTENT {
                // A range reply we cannot use: ask again for the whole file.
                pos = 0;
                part.reset()?;
                counters.downloaded.store(0, Ordering::Relaxed);
                retry_wait(
                    ctx,
                    file.id,
                    &mut retries,
                    Error::Truncated {
                        url: SafeUrl::new(&url),
                        got: 0,
                        expected: 0,
                    },
                )
                .await?;
                continue;
            }
            if !continues && pos > 0 {
                pos = 0;
                part.reset()?;
                counters.downloaded.store(0, Ordering::Relaxed);
            }
            let body = Body::new(resp, size.map(|s| s.saturating_sub(pos)))?;
            match read_stream(ctx, &part, body, &mut pos, &counters, &url).await {
                Ok(()) => match size {
                    Some(s) if pos != s => {
                        let e = Error::Truncated {
                            url: SafeUrl::new(&url),
                            got: pos,
                            expected: s,
                        };
                        retry_wait(ctx, file.id, &mut retries, e).await?;
                    }
                    _ => return Ok(pos),
                },
                Err((e, progressed)) => {
                    if progressed {
                        retries.reset();
                    }
                    retry_wait(ctx, file.id, &mut retries, e).await?;
                }
            }
        }
    };
    let result = tokio::select! {
        r = result => r,
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    };
    sampler.abort();
    drop(permits); // the transfer is over: the next file may start while this one finishes
    if matches!(result, Err(Error::FileSize { .. })) {
        let _ = std::fs::remove_file(&part_file);
    }
    let total = result?;
    part.set_len(total)?;
    let outcome = finish(
        ctx,
        file,
        &part,
        total,
        0,
        &Progress {
            total_bytes: Some(total),
            ..base
        },
    )
    .await;
    if matches!(outcome, Err(Error::Integrity { .. })) {
        let _ = std::fs::remove_file(&part_file);
    }
    outcome
}

/// Appends a reply's body at `pos`. On failure, says whether any byte was written.
async fn read_stream(
    ctx: &Context,
    part: &PartFile,
    mut body: Body,
    pos: &mut u64,
    counters: &Counters,
    url: &Url,
) -> Result<(), (Error, bool)> {
    let start = *pos;
    let mut buf = Pending::default();
    counters.connections.store(1, Ordering::Relaxed);
    let result = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => {
                ctx.throttle(chunk.len()).await;
                // No announced size: --max-filesize is checked as the bytes come.
                if let Err(e) =
                    check_filesize_max(ctx, url, *pos + (buf.len() + chunk.len()) as u64)
                {
                    break Err(e);
                }
                buf.push(chunk);
                if buf.is_full() {
                    if let Err(e) = write_buf(part, &mut buf, pos, counters) {
                        break Err(e);
                    }
                }
            }
            Ok(None) => break write_buf(part, &mut buf, pos, counters),
            Err(e) => {
                let _ = write_buf(part, &mut buf, pos, counters);
                break Err(e);
            }
        }
    };
    counters.connections.store(0, Ordering::Relaxed);
    result.map_err(|e| (e, *pos > start))
}

fn write_buf(
    part: &PartFile,
    buf: &mut Pending,
    pos: &mut u64,
    counters: &Counters,
) -> Result<(), Error> {
    let len = buf.len();
    part.write_pending(buf, 0, len, *pos)?;
    *pos += len as u64;
    counters.downloaded.fetch_add(len as u64, Ordering::Relaxed);
    Ok(())
}
