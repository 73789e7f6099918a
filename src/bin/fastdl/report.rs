//! What a run leaves for the next one: `--report FILE|-`, one JSON line per entry as it ends and
//! a summary line last (docs/scale.md has the keys), and `--save-failed FILE`, the entries that
//! did not end done or skipped, as an input list to run again.
//!
//! Report lines are flushed one by one, so a run killed half-way leaves the lines of what ended.
//! URLs in the report are safe to show (the library's [`Ended`] carries them so); the saved
//! list holds the URLs as given, since it is an input list the user asked for.

use std::io::Write;
use std::path::Path;

use fastdl::{Ended, Error};
use serde_json::json;

use crate::render::Summary;

/// The `--report` file (or standard output).
pub struct Report {
    out: Box<dyn Write + Send>,
    /// What `--report` names, for messages.
    name: String,
    /// Set when a line could not be written: the report stops there, and the run says so.
    pub broken: bool,
}

impl Report {
    /// Creates (or empties) `target`, and its directory; `-` is standard output.
    pub fn create(target: &str) -> Result<Report, Error> {
        let out: Box<dyn Write + Send> = match target {
            "-" => Box::new(std::io::stdout()),
            path => Box::new(
                create_parent(Path::new(path))
                    .and_then(|()| std::fs::File::create(path))
                    .map_err(|e| {
                        Error::Invalid(format!("--report {path}: cannot create it: {e}"))
                    })?,
            ),
        };
        Ok(Report {
            out,
            name: target.to_string(),
            broken: false,
        })
    }

    /// The line of one ended entry.
    pub fn entry(&mut self, e: &Ended) {
        let line = json!({
            "url": e.url,
            "path": e.filename,
            "status": e.status,
            "bytes": e.bytes,
            "sha256": e.sha256,
            "attempts": e.attempts,
            "seconds": round(e.elapsed),
            "error": e.error.as_ref().map(|e| fastdl::redact(&e.to_string()).into_owned()),
        });
        self.write(&line)
    }

    /// The last line: counts, bytes and rate of the whole run.
    pub fn summary(&mut self, s: &Summary) {
        let ended = s.done + s.skipped + s.failed_count + s.interrupted;
        let line = json!({
            "status": "summary",
            "done": s.done,
            "skipped": s.skipped,
            "failed": s.failed_count,
            "interrupted": s.interrupted,
            "not_started": s.not_started,
            "bytes": s.bytes,
            "seconds": round(s.elapsed),
            "files_per_second": round(ended as f64 / s.elapsed.max(1e-3)),
        });
        self.write(&line)
    }

    /// Writes one line; the first failure is told once and ends the report.
    fn write(&mut self, line: &serde_json::Value) {
        if self.broken {
            return;
        }
        if let Err(e) = writeln!(self.out, "{line}").and_then(|()| self.out.flush()) {
            eprintln!(
                "fastdl: error: --report {}: cannot write: {e}; the report ends here",
                self.name
            );
            self.broken = true;
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Writes `entries` (input-list text, one or more lines each) to `path`, replacing it whole:
/// written beside it, then renamed, so a crash leaves the old list or the new one. No entries
/// removes an old list, so a run that finished everything leaves nothing to run again.
pub fn save_failed(path: &Path, entries: &[&str]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    create_parent(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, entries.concat())?;
    std::fs::rename(&tmp, path)
}

/// Creates the directory `path` goes in (a job array's `reports/$TASK.jsonl`).
fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}
