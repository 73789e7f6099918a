//! Many downloads at once: at most `-j` files run together, the next one starts the moment one
//! ends, a failure stays with its file, and a summary says what happened to each.
//!
//! Connections are shared through the run's [`Limits`](crate::limits::Limits): each file's first
//! connection waits its turn, extra connections go to large files only while permits are free.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::download::{download, Context, Job};
use crate::error::{exit, Error};
use crate::progress::{Event, Failure, Summary};

/// Downloads every job; returns the exit code (0 only if every job succeeded or was skipped).
pub async fn run(ctx: Arc<Context>, jobs: Vec<Job>) -> u8 {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut first_failure: Option<u8> = None;

    let mut running = JoinSet::new();
    let mut queue = jobs.into_iter().enumerate();
    // `-j` itself is enforced by `Context::transfers`; twice as many tasks lets files that are
    // finishing (sync, verify, rename) overlap the next files' first requests.
    let slots = 2 * ctx.options.concurrent_downloads.max(1);
    loop {
        while running.len() < slots && !ctx.shutdown.is_set() {
            let Some((id, job)) = queue.next() else { break };
            let url = job.url.clone();
            let ctx = Arc::clone(&ctx);
            running.spawn(async move { (id, url, download(ctx, id, job).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, url, result) = joined.expect("download tasks do not panic");
        match result {
            Ok(o) if o.skipped => summary.skipped += 1,
            Ok(o) => {
                summary.done += 1;
                summary.bytes += o.bytes - o.resumed;
            }
            Err(Error::Interrupted) => summary.interrupted += 1,
            Err(e) => {
                if !ctx.options.failures_allowed {
                    first_failure.get_or_insert(e.exit_code());
                }
                summary.failed.push(Failure {
                    id,
                    url,
                    error: e.to_string(),
                });
            }
        }
    }
    summary.not_started = queue.count();
    summary.elapsed = started.elapsed().as_secs_f64();
    let interrupted = summary.interrupted > 0;
    ctx.events.send(Event::Summary(summary));
    if interrupted {
        ctx.events.log(
            None,
            crate::progress::Level::Warning,
            "interrupted; progress is saved: run the same command again to resume",
        );
        exit::INTERRUPTED
    } else {
        first_failure.unwrap_or(exit::OK)
    }
}
