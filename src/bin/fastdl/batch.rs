//! A run of the command line: every job, as the list is read, through
//! [`Downloader::download_stream`], the results counted into the summary (and the `--report`),
//! what did not finish kept for `--save-failed`, the exit code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use fastdl::{Downloader, Error, Event, Request};

use crate::cli::Args;
use crate::exit;
use crate::input;
use crate::job::Job;
use crate::list::{lock, Jobs};
use crate::render::{Failure, Summary};
use crate::report::Report;

/// Failures listed in the summary, at most (all are counted; `--report` has every one).
const LISTED_FAILURES: usize = 1000;

/// What the run does besides downloading.
pub struct Options {
    /// Failed entries are in the summary but do not fail the run (fragment pieces yt-dlp may
    /// skip).
    pub failures_allowed: bool,
    pub report: Option<Report>,
    /// `--save-failed`: keep the unfinished entries' text.
    pub save_failed: bool,
    /// `-d`, which the saved entries' `dir=` are relative to.
    pub dir: Option<PathBuf>,
}

/// How a run ended.
pub struct Ran {
    pub summary: Summary,
    pub code: u8,
    /// Jobs the run had (0: the list held none).
    pub jobs: usize,
    /// With `save_failed`, the entries that did not end done or skipped, in order, as
    /// input-list text (`None`: a list cannot say it).
    pub unfinished: Vec<Option<String>>,
    /// The bad line that ended a list read from standard input.
    pub list_error: Option<Error>,
}

/// What is remembered of a running job, until it ends (so no more than the jobs running).
struct Running {
    /// Its URL as given (redacted if it fails, for the summary).
    url: String,
    /// The job itself with `--save-failed`, written back as a list entry only if it fails.
    job: Option<Job>,
}

type Table = Arc<Mutex<HashMap<usize, Running>>>;

/// The jobs as the downloader's stream of requests, noting each one in the table as it starts.
struct Requests {
    jobs: Arc<Mutex<Jobs>>,
    args: Arc<Args>,
    table: Table,
    /// `--save-failed`: keep each running job.
    save: bool,
}

impl futures_core::Stream for Requests {
    type Item = Request;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Request>> {
        let polled = lock(&self.jobs).poll_next(cx);
        polled.map(|next| {
            let (index, job) = next?;
            let running = Running {
                url: job.url.clone(),
                job: self.save.then(|| job.clone()),
            };
            lock(&self.table).insert(index, running);
            Some(self.args.request(job.into_request()))
        })
    }
}

/// Downloads every job, writing each one's line to the report as it ends. The exit code is 0
/// only if every job succeeded or was skipped; when some failed, it is the first failure's
/// code if nothing succeeded, else [`exit::PARTIAL`].
pub async fn run(downloader: &Downloader, jobs: Jobs, args: Arc<Args>, opts: Options) -> Ran {
    let started = Instant::now();
    let Options {
        failures_allowed,
        mut report,
        save_failed,
        dir,
    } = opts;
    let jobs = Arc::new(Mutex::new(jobs));
    let table: Table = Default::default();
    let requests = Requests {
        jobs: Arc::clone(&jobs),
        args,
        table: Arc::clone(&table),
        save: save_failed,
    };
    // Each download's `Ended` event is sent before its result: read them as results come.
    let mut events = report.as_ref().map(|_| downloader.events());
    let mut summary = Summary::default();
    let mut first_failure: Option<u8> = None;
    let mut unfinished: Vec<(usize, Option<String>)> = Vec::new();
    let mut ended = 0;
    let mut results = downloader.download_stream(requests);
    while let Some((index, result)) = results.next().await {
        ended += 1;
        if let (Some(report), Some(events)) = (&mut report, &mut events) {
            while let Some(event) = events.try_recv() {
                if let Event::Ended(ended) = event {
                    report.entry(&ended);
                }
            }
        }
        let running = lock(&table).remove(&index).expect("noted when it started");
        if let (Err(_), Some(job)) = (&result, &running.job) {
            unfinished.push((index, input::format(job, dir.as_deref())));
        }
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
                summary.failed_count += 1;
                if summary.failed.len() < LISTED_FAILURES {
                    summary.failed.push(Failure {
                        id: index,
                        url: fastdl::redact(&running.url).into_owned(),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    drop(results);
    // Interrupted: what the list still holds never started; with --save-failed it is read to
    // its end and saved to run again (otherwise it is left unread: a list on standard input
    // may not end soon).
    if save_failed {
        while let Some((index, job)) = Jobs::next(&jobs).await {
            unfinished.push((index, input::format(&job, dir.as_deref())));
        }
    }
    let (count, list_error) = {
        let mut jobs = lock(&jobs);
        (jobs.count(), jobs.error.take())
    };
    summary.not_started = count - ended;
    summary.failed.sort_by_key(|f| f.id);
    summary.elapsed = started.elapsed().as_secs_f64();
    let report_broken = report.as_mut().is_some_and(|r| {
        r.summary(&summary);
        r.broken
    });
    let code = match (summary.interrupted, first_failure) {
        (1.., _) => exit::INTERRUPTED,
        _ if list_error.is_some() => exit::USAGE,
        (0, Some(_)) if summary.done + summary.skipped > 0 => exit::PARTIAL,
        (0, Some(code)) => code,
        (0, None) if report_broken => exit::IO,
        (0, None) => exit::OK,
    };
    unfinished.sort_by_key(|(i, _)| *i);
    Ran {
        summary,
        code,
        jobs: count,
        unfinished: unfinished.into_iter().map(|(_, text)| text).collect(),
        list_error,
    }
}
