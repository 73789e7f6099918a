//! One file over many connections: the first connection takes over the probe's reply, more
//! join while there is work worth splitting and permits are free, the state is saved as the
//! bytes are synced, and the file is verified once every byte is on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::body::Body;
use crate::context::Context;
use crate::error::Error;
use crate::events::{self, Counters};
use crate::finish::{finish, FileSpec};
use crate::limits::Permit;
use crate::output::part_path;
use crate::probe::{Probe, Warm};
use crate::range::RangeSet;
use crate::redact::SafeUrl;
use crate::request::Outcome;
use crate::resume::{self, state_path};
use crate::scheduler::{Next, Scheduler};
use crate::segment;
use crate::transfer::{Mirror, Source, Transfer};

/// How often the resume state is saved while downloading.
const SAVE_EVERY: Duration = Duration::from_millis(250);

pub(crate) async fn segmented(
    ctx: &Arc<Context>,
    file: &FileSpec,
    probe: Probe,
    (total, reply_end): (u64, u64),
    done: RangeSet,
    (permit, transfer, warm): (Permit, tokio::sync::OwnedSemaphorePermit, Arc<Warm>),
) -> Result<Outcome, Error> {
    let part_file = part_path(&file.output);
    let state = state_path(&part_file);
    let resumed = done.len();
    let part = file.claim.part(resumed > 0)?;
    let counters = Arc::new(Counters::default());
    counters.downloaded.store(resumed, Ordering::Relaxed);
    let t = Arc::new(Transfer {
        ctx: Arc::clone(ctx),
        id: file.id,
        url: probe.url.clone(),
        size: total,
        validators: probe.validators.clone(),
        mirrors: file
            .mirrors
            .iter()
            .map(|url| Mirror {
                url: url.clone(),
                validators: Default::default(),
                dead: Default::default(),
            })
            .collect(),
        next_source: Default::default(),
        part,
        sched: Scheduler::new(total, done, ctx.options.min_split, ctx.options.connections),
        counters: Arc::clone(&counters),
    });
    // No state is written before the first save tick: a file that finishes within it (most
    // files of a batch) never needs one, and two fsyncs per file would dominate a batch.
    let files = (file.output.as_path(), part_file.as_path());
    let base = ctx
        .events
        .start(file.id, probe.url.as_str(), files, Some(total), resumed);
    let sampler = events::spawn_sampler(
        ctx.events.clone(),
        Arc::clone(&counters),
        base.clone(),
        ctx.options.progress_interval,
    );

    // The probe's body covers the first hole: hand both to the first connection before any other
    // connection can take that hole.
    let mut workers = JoinSet::new();
    if t.sched.join() {
        let first = match t.sched.next() {
            Next::Work(claim) if claim.start == probe.start => {
                let body = Body::new(probe.resp, Some(reply_end - probe.start))?;
                Some((claim, body))
            }
            Next::Work(claim) => {
                t.sched.release(&claim);
                None
            }
            _ => None,
        };
        workers.spawn(segment::run(Arc::clone(&t), first, permit, Source::Primary));
    }
    grow(&t, &mut workers, &warm);

    let mut saver = tokio::time::interval(SAVE_EVERY);
    saver.tick().await;
    let mut failure = None;
    // Set once every byte is on disk. The branch below must then be disabled: its future is
    // ready at once from then on, and a loop that never waits starves the runtime threads that
    // the aborted connections need to wind down (a livelock seen with two files on two cores).
    let mut finished = false;
    while !workers.is_empty() {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                    workers.abort_all();
                }
                Some(Err(join)) if join.is_cancelled() => {}
                Some(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            },
            _ = saver.tick() => {
                t.save(&state).await?;
                hash_prefix(&t);
                // Connections other files gave back may now be free.
                grow(&t, &mut workers, &warm);
            }
            // A connection opened early is ready for a segment.
            _ = warm.ready.notified() => grow(&t, &mut workers, &warm),
            // Every byte is on disk: connections still reading (a race's loser) are not needed.
            _ = t.sched.wait_finished(), if failure.is_none() && !finished => {
                finished = true;
                workers.abort_all();
            }
            _ = ctx.shutdown.wait(), if failure.is_none() => {
                failure = Some(Error::Interrupted);
                workers.abort_all();
            }
        }
    }
    sampler.abort();
    drop(transfer);

    if let Some(e) = failure {
        if matches!(e, Error::Changed { .. } | Error::RangeViolation { .. }) {
            resume::remove(&state);
        } else {
            t.save(&state).await?;
        }
        return Err(e);
    }
    if !t.sched.complete() {
        // Every connection left (all shed) with bytes missing: keep what we have for next time.
        t.save(&state).await?;
        return Err(Error::Truncated {
            url: SafeUrl::new(&t.url),
            got: t.sched.done().len(),
            expected: total,
        });
    }
    let outcome = finish(ctx, file, &t.part, total, resumed, &base).await;
    match &outcome {
        Ok(_) => resume::remove(&state),
        Err(Error::Integrity { .. }) => {
            resume::remove(&state);
            let _ = std::fs::remove_file(&part_file);
        }
        Err(_) => {}
    }
    outcome
}

/// Hashes, in the background, what the connections wrote ahead of the hash and is now part of
/// the written prefix (`digest.rs`), so little is left to read when the file is done.
fn hash_prefix(t: &Arc<Transfer>) {
    if !t.part.hashing() {
        return;
    }
    let done = t.sched.done();
    let Some(first) = done.ranges().first().filter(|r| r.start == 0) else {
        return;
    };
    let (part, end) = (t.part.clone(), first.end);
    // An error here is met again, and returned, when the file is done.
    tokio::task::spawn_blocking(move || part.hash_through(end));
}

/// Adds connections to a running file while it has work worth splitting and permits are free
/// (never waiting for one: a file's extra connections must not hold up other files' first).
fn grow(t: &Arc<Transfer>, workers: &mut JoinSet<Result<(), Error>>, warm: &Warm) {
    while t.sched.wants_more() {
        let source = t.pick_source();
        let host = t.source_url(source).host_str().unwrap_or_default();
        let permit = match source {
            Source::Primary => warm.permit(&t.ctx, host),
            Source::Mirror(_) => t.ctx.limits.try_acquire(host),
        };
        let Some(permit) = permit else {
            return;
        };
        if !t.sched.join() {
            return;
        }
        workers.spawn(segment::run(Arc::clone(t), None, permit, source));
    }
}
