//! A run of the command line: every request through [`Downloader::download_all`], the results
//! counted into the summary, the first failure's exit code.

use std::time::Instant;

use fastdl::{Downloader, Error, Request};

use crate::exit;
use crate::render::{Failure, Summary};

/// Downloads every request; returns the summary and the exit code (0 only if every request
/// succeeded or was skipped). With `failures_allowed`, failed entries are in the summary but do
/// not fail the run (fragment pieces yt-dlp may skip).
pub async fn run(
    downloader: &Downloader,
    requests: Vec<Request>,
    failures_allowed: bool,
) -> (Summary, u8) {
    let started = Instant::now();
    let total = requests.len();
    let urls: Vec<String> = requests
        .iter()
        .map(|r| fastdl::redact(r.url()).into_owned())
        .collect();
    let mut summary = Summary::default();
    let mut first_failure: Option<u8> = None;
    let mut ended = 0;
    let mut results = downloader.download_all(requests);
    while let Some((index, result)) = results.next().await {
        ended += 1;
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
    let code = match summary.interrupted > 0 {
        true => exit::INTERRUPTED,
        false => first_failure.unwrap_or(exit::OK),
    };
    (summary, code)
}
