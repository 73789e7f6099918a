//! A run of the command line: every request through [`Downloader::download_all`], the results
//! counted into the summary (and the `--report`), the exit code.

use std::time::Instant;

use fastdl::{Downloader, Error, Event, Request};

use crate::exit;
use crate::render::{Failure, Summary};
use crate::report::Report;

/// How a run ended.
pub struct Ran {
    pub summary: Summary,
    pub code: u8,
    /// The requests (by index) that did not end done or skipped, in order.
    pub unfinished: Vec<usize>,
}

/// Downloads every request, writing each one's line to `report` as it ends. The exit code is 0
/// only if every request succeeded or was skipped; when some failed, it is the first failure's
/// code if nothing succeeded, else [`exit::PARTIAL`]. With `failures_allowed`, failed entries
/// are in the summary but do not fail the run (fragment pieces yt-dlp may skip).
pub async fn run(
    downloader: &Downloader,
    requests: Vec<Request>,
    failures_allowed: bool,
    mut report: Option<Report>,
) -> Ran {
    let started = Instant::now();
    let total = requests.len();
    let urls: Vec<String> = requests
        .iter()
        .map(|r| fastdl::redact(r.url()).into_owned())
        .collect();
    // Each download's `Ended` event is sent before its result: read them as results come.
    let mut events = report.as_ref().map(|_| downloader.events());
    let mut summary = Summary::default();
    let mut first_failure: Option<u8> = None;
    let mut finished = vec![false; total];
    let mut ended = 0;
    let mut results = downloader.download_all(requests);
    while let Some((index, result)) = results.next().await {
        ended += 1;
        if let (Some(report), Some(events)) = (&mut report, &mut events) {
            while let Some(event) = events.try_recv() {
                if let Event::Ended(ended) = event {
                    report.entry(&ended);
                }
            }
        }
        finished[index] = result.is_ok();
        match result {
            Ok(o) if o.skipped => summary.skipped += 1,
            Ok(o) => {
                summary.done += 1;
                summary.bytes += o.bytes - o.resumed;
            }
            Err(Error::Interrupted) => summary.interrupted += 1,
            Err(e) => {
                if !failures_allowed {
                    first_failure.get_or_insert(exit::code(&e));
                }
                summary.failed.push(Failure {
                    id: index,
                    url: urls[index].clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    summary.failed.sort_by_key(|f| f.id);
    summary.not_started = total - ended;
    summary.elapsed = started.elapsed().as_secs_f64();
    let report_broken = report.as_mut().is_some_and(|r| {
        r.summary(&summary);
        r.broken
    });
    let code = match (summary.interrupted, first_failure) {
        (1.., _) => exit::INTERRUPTED,
        (0, Some(_)) if summary.done + summary.skipped > 0 => exit::PARTIAL,
        (0, Some(code)) => code,
        (0, None) if report_broken => exit::IO,
        (0, None) => exit::OK,
    };
    let unfinished = (0..total).filter(|&i| !finished[i]).collect();
    Ran {
        summary,
        code,
        unfinished,
    }
}
