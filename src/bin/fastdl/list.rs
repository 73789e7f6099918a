//! Where a run's jobs come from, as a stream: the command line's URLs (and a fragment job or an
//! info JSON) first, then the `-i` list, read while earlier entries download, so memory does
//! not grow with the list's length.
//!
//! A list in a file is read twice: once through, to check every line and refuse two entries
//! that would write one file before anything starts (bad input never half-runs a batch), then
//! again while downloading. Standard input can be read only once: its entries start as they
//! arrive (a slow producer works), a bad line ends the run there, after the entries before it.
//!
//! Two entries writing one file are found with a set of 64-bit hashes of this shard's output
//! paths (about 20 bytes per entry). In a file, a hit is confirmed by reading the list again up
//! to it, which names the first entry's line (and lets a hash collision pass); on standard input
//! it is reported as it is.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use fastdl::Error;
use tokio::sync::mpsc;

use crate::input::{Entry, Parser};
use crate::job::Job;
use crate::shard::Shard;

/// Entries read ahead of the downloads, at most.
const READ_AHEAD: usize = 256;

/// An `-i` list and what applies to each of its entries.
#[derive(Clone, Debug)]
pub struct List {
    /// The file; `None` is standard input.
    pub path: Option<PathBuf>,
    /// `-d`: entries' `dir=` and `out=` are relative to it.
    pub dir: Option<PathBuf>,
    pub shard: Option<Shard>,
}

impl List {
    /// How messages name the list.
    fn name(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "stdin".into(),
        }
    }

    fn open(&self) -> Result<Box<dyn BufRead + Send>, Error> {
        Ok(match &self.path {
            Some(p) => Box::new(std::io::BufReader::new(std::fs::File::open(p).map_err(
                |e| Error::Invalid(format!("{}: cannot read the input list: {e}", p.display())),
            )?)),
            None => Box::new(std::io::BufReader::new(std::io::stdin())),
        })
    }

    /// Reads a list in a file through, checking every line and refusing two entries of this
    /// shard that would write one file; returns this shard's entries.
    pub fn check(&self) -> Result<usize, Error> {
        let mut entries = 0;
        self.read(true, |_| {
            entries += 1;
            true
        })?;
        Ok(entries)
    }

    /// Reads the list on a thread of its own; its jobs (this shard's, `dir` joined to `-d`)
    /// come through the channel, a bad line as the last item. `checked`: [`List::check`] has
    /// read it already, so two entries writing one file need no looking for.
    pub fn spawn(self, checked: bool) -> mpsc::Receiver<Result<Job, Error>> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        std::thread::spawn(move || {
            // The reader waits for room for half the read-ahead, then fills it, each entry sent
            // as soon as it is read (a slow writer on stdin is never held up). Waiting for one
            // free slot instead woke this thread for every entry taken, and put it back to
            // sleep: two context switches per file, a tenth of a batch's.
            let Ok(waits) = tokio::runtime::Builder::new_current_thread().build() else {
                return;
            };
            let mut room = None;
            let result = self.read(!checked, |job| loop {
                if let Some(slot) = room.as_mut().and_then(Iterator::next) {
                    mpsc::Permit::send(slot, Ok(job));
                    return true;
                }
                match waits.block_on(tx.reserve_many(READ_AHEAD / 2)) {
                    Ok(slots) => room = Some(slots),
                    Err(_) => return false,
                }
            });
            drop(room);
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    /// Calls `each` with every job of this shard, in order, until it returns false.
    fn read(&self, duplicates: bool, mut each: impl FnMut(Job) -> bool) -> Result<(), Error> {
        let mut seen: HashSet<u64> = HashSet::new();
        self.read_entries(|entry| {
            if !self.takes(&entry) {
                return Ok(true);
            }
            if duplicates {
                let out = entry.expected_output(self.dir.as_deref());
                if !seen.insert(path_hash(&out)) {
                    self.duplicate(&entry, &out)?;
                }
            }
            let mut job = entry.job;
            job.dir = match (&self.dir, job.dir.take()) {
                (Some(d), Some(sub)) => Some(d.join(sub)),
                (d, sub) => sub.or_else(|| d.clone()),
            };
            Ok(each(job))
        })
    }

    fn takes(&self, entry: &Entry) -> bool {
        self.shard.is_none_or(|s| s.takes(&entry.job.shard_key()))
    }

    /// Calls `each` with every entry of the list, in order, until it returns false.
    fn read_entries(
        &self,
        mut each: impl FnMut(Entry) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let name = self.name();
        let mut reader = self.open()?;
        let mut parser = Parser::new(&name);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::Invalid(format!("{name}: cannot read the input list: {e}")))?;
            if n == 0 {
                break;
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = std::str::from_utf8(line).map_err(|_| {
                let at = parser.line_number() + 1;
                Error::Invalid(format!("{name}:{at}: not UTF-8 text"))
            })?;
            if let Some(entry) = parser.line(line)? {
                if !each(entry)? {
                    return Ok(());
                }
            }
        }
        match parser.finish() {
            Some(entry) => each(entry).map(drop),
            None => Ok(()),
        }
    }

    /// `entry` writes `out`, whose hash an earlier entry had: the error naming both, unless
    /// (in a file, read again to find that entry) it was only the hash.
    fn duplicate(&self, entry: &Entry, out: &Path) -> Result<(), Error> {
        let first = match &self.path {
            Some(_) => match self.first_writer(out, entry.line) {
                Some(line) => format!("the entry on line {line}"),
                None => return Ok(()),
            },
            None => "an earlier entry".into(),
        };
        Err(Error::Invalid(format!(
            "{}:{}: writes {}, like {first}; give one of them out=",
            self.name(),
            entry.line,
            out.display()
        )))
    }

    /// The line of the first entry of this shard before line `before` that writes `out`.
    fn first_writer(&self, out: &Path, before: usize) -> Option<usize> {
        let mut found = None;
        let _ = self.read_entries(|entry| {
            if entry.line >= before {
                return Ok(false);
            }
            if self.takes(&entry) && entry.expected_output(self.dir.as_deref()) == out {
                found = Some(entry.line);
                return Ok(false);
            }
            Ok(true)
        });
        found
    }
}

/// A stable hash of an output path (the same in every run: `DefaultHasher::new` has fixed keys).
fn path_hash(path: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// Every job of a run, numbered in order: the ones known up front, then the list's.
pub struct Jobs {
    upfront: std::vec::IntoIter<Job>,
    list: Option<mpsc::Receiver<Result<Job, Error>>>,
    /// The next job's number.
    next: usize,
    /// The list's bad line, which ended it.
    pub error: Option<Error>,
}

impl Jobs {
    pub fn new(upfront: Vec<Job>, list: Option<mpsc::Receiver<Result<Job, Error>>>) -> Jobs {
        Jobs {
            upfront: upfront.into_iter(),
            list,
            next: 0,
            error: None,
        }
    }

    /// Jobs handed out so far.
    pub fn count(&self) -> usize {
        self.next
    }

    /// The next job and its number; `None` at the end (or after a bad line: see `error`).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Job)>> {
        let job = match self.upfront.next() {
            Some(job) => job,
            None => {
                let Some(list) = &mut self.list else {
                    return Poll::Ready(None);
                };
                match list.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(job))) => job,
                    Poll::Ready(Some(Err(e))) => {
                        self.error = Some(e);
                        self.list = None;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(None) => {
                        self.list = None;
                        return Poll::Ready(None);
                    }
                }
            }
        };
        self.next += 1;
        Poll::Ready(Some((self.next - 1, job)))
    }

    /// The next job, awaited.
    pub async fn next(jobs: &Arc<Mutex<Jobs>>) -> Option<(usize, Job)> {
        std::future::poll_fn(|cx| lock(jobs).poll_next(cx)).await
    }
}

/// A lock that a panic elsewhere does not poison for the rest of the run.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as a list file, read through `check` with `-d dir`.
    fn check(text: &str, dir: Option<&str>, shard: Option<&str>) -> Result<usize, String> {
        let path = std::env::temp_dir().join(format!(
            "fastdl-list-{}-{}",
            std::process::id(),
            path_hash(Path::new(text))
        ));
        std::fs::write(&path, text).unwrap();
        let list = List {
            path: Some(path.clone()),
            dir: dir.map(PathBuf::from),
            shard: shard.map(|s| Shard::parse(s).unwrap()),
        };
        let result = list.check().map_err(|e| e.to_string());
        std::fs::remove_file(&path).unwrap();
        result.map_err(|e| e.replace(&path.display().to_string(), "l"))
    }

    #[test]
    fn two_entries_writing_one_file_are_refused_naming_both_lines() {
        assert_eq!(
            check(
                "http://a/f.bin\n# x\nhttp://b/g\nhttp://b/f.bin\n",
                None,
                None
            ),
            Err("l:4: writes f.bin, like the entry on line 1; give one of them out=".into())
        );
        assert_eq!(
            check("http://a/f.bin\nhttp://b/f.bin\n  out=g.bin\n", None, None),
            Ok(2)
        );
        assert_eq!(
            check("http://a/f.bin\n  dir=x\nhttp://b/f.bin\n", Some("d"), None),
            Ok(2)
        );
        assert_eq!(
            check(
                "http://a/f.bin\n  out=x/f.bin\nhttp://b/f.bin\n  dir=x\n",
                None,
                None
            ),
            Err("l:3: writes x/f.bin, like the entry on line 1; give one of them out=".into())
        );
    }

    #[test]
    fn a_shard_counts_and_checks_only_its_own_entries() {
        let text: String = (0..100).map(|i| format!("http://h/{i}\n")).collect();
        let counts: Vec<usize> = (0..4)
            .map(|k| check(&text, None, Some(&format!("{k}/4"))).unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 100, "{counts:?}");
        assert_eq!(
            check("http://a/f\n\u{1}\n", None, None),
            Err("l:2: control character '\\u{1}' is not allowed".into())
        );
        let path = std::env::temp_dir().join(format!("fastdl-list-bad-{}", std::process::id()));
        std::fs::write(&path, b"http://a/f\n\xff\n").unwrap();
        let list = List {
            path: Some(path.clone()),
            dir: None,
            shard: None,
        };
        let err = list.check().unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.ends_with(":2: not UTF-8 text"), "{err}");
    }
}
