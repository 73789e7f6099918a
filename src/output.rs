//! The `.part` file: written at positions by many connections at once (sparse until written),
//! synced before the resume state may claim its bytes, renamed only when verified.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::digest::InOrder;
use crate::error::Error;

/// Creating, renaming and tagging a file take its directory's lock in the kernel, and ext4 can
/// hold it for a long time while it looks for a free inode. Two threads doing this at once
/// spin on that lock: in a batch of 2000 small files, a sixth of fastdl's CPU time went there,
/// while both async threads sat in the kernel instead of moving bytes. So these operations run
/// one at a time, in order, on one thread of their own. (They were blocking-pool tasks taking
/// one lock: each then woke a pool thread that mostly waited for the lock, and the pool's own
/// lock was contended too, ~10 futex calls per file in a batch of small files.)
async fn directory_op<T: Send + 'static>(op: impl FnOnce() -> T + Send + 'static) -> T {
    let (reply, done) = tokio::sync::oneshot::channel();
    submit_directory_op(move || {
        let _ = reply.send(op());
    });
    done.await.expect("directory operations do not panic")
}

/// Queues `job` for the directory thread, started by the first.
fn submit_directory_op(job: impl FnOnce() + Send + 'static) {
    type Job = Box<dyn FnOnce() + Send>;
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (send, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fastdl-directory".into())
            .spawn(move || {
                for job in jobs {
                    // A panic reaches the job's caller as a dropped reply; the thread goes on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("a thread can be started");
        send
    });
    queue
        .send(Box::new(job))
        .expect("the directory thread never ends");
}

/// Received chunks not yet written: the network's own buffers (no copy in user space), kept
/// until a write of [`Pending::WRITE_SIZE`] bytes is worth a system call.
#[derive(Debug, Default)]
pub struct Pending {
    chunks: Vec<bytes::Bytes>,
    len: usize,
}

impl Pending {
    /// Bytes gathered before a write. 16 connections hold 4 MiB of chunks at most.
    pub const WRITE_SIZE: usize = 256 * 1024;

    /// Adds a received chunk.
    pub fn push(&mut self, chunk: bytes::Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when enough is held for a write.
    pub fn is_full(&self) -> bool {
        self.len >= Self::WRITE_SIZE
    }

    /// Drops everything held.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }
}

/// The file being downloaded into.
#[derive(Clone, Debug)]
pub struct PartFile {
    file: Arc<File>,
    path: PathBuf,
    /// One write at a time: concurrent writes to one file contend for the kernel's inode lock,
    /// and its waiters spin (7% of all CPU of a 1 GiB loopback download at 8 connections in
    /// `perf`); waiting here sleeps instead, which cut the download's CPU time by about 20%.
    writing: Arc<std::sync::Mutex<()>>,
    /// How busy that one writer is ([`PartFile::write_bound`]).
    load: Arc<Load>,
    /// The SHA-256 of what is written, when one is wanted (`digest.rs`). Its own lock, only
    /// ever tried by writers: bytes a writer could not hash at once are read back later.
    digest: Option<Arc<std::sync::Mutex<InOrder>>>,
}

/// `FILE.part` for the output `FILE`.
pub fn part_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Opens (creating it, and its directory) and locks `part`, the `.part` of a download: one
/// process at a time may write it. Nothing in it is changed here. True with the file when this
/// call created it, so it is known to be empty.
pub(crate) async fn lock_part(part: &Path) -> Result<(File, bool), Error> {
    let part = part.to_owned();
    directory_op(move || {
        // A new file first: most are, and one that is needs no emptying (a `set_len` is a
        // journalled inode update on ext4).
        let open = |new: bool| {
            let mut options = OpenOptions::new();
            options.read(true).write(true);
            match new {
                true => options.create_new(true),
                false => options.create(true).truncate(false),
            };
            options.open(&part).map(|f| (f, new))
        };
        let open = || match open(true) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open(false),
            r => r,
        };
        // The directory is made only when the open says it is missing: mkdir of an existing
        // directory still takes its lock, and even a stat per file is a lookup that a batch of
        // thousands of files in one directory pays for each.
        let (file, created) = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match part.parent().filter(|d| !d.as_os_str().is_empty()) {
                    Some(dir) => {
                        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                        open()
                    }
                    None => Err(e),
                }
            }
            r => r,
        }
        .map_err(|e| Error::io(&part, e))?;
        match file.try_lock() {
            Ok(()) => Ok((file, created)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy { path: part }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&part, e)),
        }
    })
    .await
}

impl PartFile {
    /// The locked `.part` at `path` ([`lock_part`]) for writing. `keep` keeps its bytes
    /// (resuming); otherwise it is emptied. Its length is not set ahead: positional writes past
    /// the end are valid, and the file is sparse until written (see [`PartFile::extend_to`]).
    /// With `hash`, what is written is hashed ([`PartFile::sha256`]).
    pub fn open(path: &Path, file: Arc<File>, keep: bool, hash: bool) -> Result<PartFile, Error> {
        if !keep {
            file.set_len(0).map_err(|e| Error::io(path, e))?;
        }
        Ok(PartFile {
            file,
            path: path.to_owned(),
            writing: Default::default(),
            load: Arc::new(Load::new(Instant::now())),
            digest: hash.then(Default::default),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` at `offset` (on the async thread, like [`PartFile::write_pending`]).
    pub fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), Error> {
        self.file
            .write_all_at_offset(bytes, offset)
            .map_err(|e| Error::io(&self.path, e))?;
        self.wrote(bytes, offset);
        Ok(())
    }

    /// Hashes `bytes`, just written at `offset`, if the digest is free now (else it reads them
    /// back later: a writer never waits for the hash).
    fn wrote(&self, bytes: &[u8], offset: u64) {
        if let Some(Ok(mut digest)) = self.digest.as_deref().map(std::sync::Mutex::try_lock) {
            digest.wrote(bytes, offset);
        }
    }

    /// True when what is written is hashed.
    pub fn hashing(&self) -> bool {
        self.digest.is_some()
    }

    /// Hashes the file up to `end`, every byte of which is written (blocking: it may read).
    pub fn hash_through(&self, end: u64) -> Result<(), Error> {
        let Some(digest) = &self.digest else {
            return Ok(());
        };
        let mut digest = digest.lock().unwrap_or_else(|e| e.into_inner());
        digest
            .catch_up(end, |buf, at| self.file.read_exact_at_offset(buf, at))
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The SHA-256 (hex) of the file's first `len` bytes, all written, if hashing is on.
    pub async fn sha256(&self, len: u64) -> Result<Option<String>, Error> {
        let Some(digest) = self.digest.clone() else {
            return Ok(None);
        };
        let part = self.clone();
        tokio::task::spawn_blocking(move || {
            part.hash_through(len)?;
            let digest = digest.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Some(digest.clone().finish()))
        })
        .await
        .expect("hashing does not panic")
    }

    /// Writes `len` bytes of `pending`, starting `skip` bytes into it, at `offset`, and empties
    /// it.
    ///
    /// This runs on the async thread on purpose: writing to the page cache is a memory copy,
    /// cheaper than handing the buffer to a blocking thread and back (which cost ~5 futex calls
    /// per write and 30% more CPU on a 1 GiB loopback download). If the disk cannot keep up,
    /// blocking here stops reading the connection that produced the data: backpressure.
    /// `sync`, which can take long, does go to the blocking pool.
    pub fn write_pending(
        &self,
        pending: &mut Pending,
        mut skip: usize,
        len: usize,
        offset: u64,
    ) -> Result<(), Error> {
        let (mut at, mut left) = (offset, len);
        let _one_writer = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let _busy = self.load.busy();
        for c in &pending.chunks {
            if left == 0 {
                break;
            }
            if skip >= c.len() {
                skip -= c.len();
                continue;
            }
            let piece = &c[skip..c.len().min(skip + left)];
            skip = 0;
            self.file
                .write_all_at_offset(piece, at)
                .map_err(|e| Error::io(&self.path, e))?;
            self.wrote(piece, at);
            at += piece.len() as u64;
            left -= piece.len();
        }
        pending.clear();
        Ok(())
    }

    /// True when the file's writer was busy most of the time lately: the disk (or the page
    /// cache) is what limits this download, so its connections' speeds say which one waited
    /// for it, not which network path is slow, and none should be replaced for being slower.
    /// (On loopback, a slow page cache had connections replaced 10-16 times per GiB, with 3x
    /// the requests and up to 4x the time.)
    pub fn write_bound(&self) -> bool {
        self.load.judge(Instant::now())
    }

    /// Empties the file (for starting over).
    pub fn reset(&self) -> Result<(), Error> {
        if let Some(digest) = &self.digest {
            *digest.lock().unwrap_or_else(|e| e.into_inner()) = InOrder::default();
        }
        self.file.set_len(0).map_err(|e| Error::io(&self.path, e))
    }

    /// Sets the final length (streams of unknown size), or drops what was written after `size`
    /// (a joined download's failed piece; a hash that went past it starts over).
    pub fn set_len(&self, size: u64) -> Result<(), Error> {
        if let Some(digest) = &self.digest {
            let mut digest = digest.lock().unwrap_or_else(|e| e.into_inner());
            if digest.position() > size {
                *digest = InOrder::default();
            }
        }
        self.file
            .set_len(size)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Makes the file `size` bytes long if it is shorter (the unwritten rest sparse). Resuming
    /// trusts a `.part` only at its full length, so the length is set before the first resume
    /// state is saved; a file finished before then (most of a batch of small files) never needs
    /// it.
    pub fn extend_to(&self, size: u64) -> Result<(), Error> {
        if self.len()? < size {
            self.file
                .set_len(size)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Flushes written data to the disk. Resume state is written only after this returns.
    pub async fn sync(&self) -> Result<(), Error> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || file.sync_data().map_err(|e| Error::io(&path, e)))
            .await
            .expect("sync task does not panic")
    }

    /// The file's current metadata (length, modification time).
    pub fn metadata(&self) -> Result<std::fs::Metadata, Error> {
        self.file.metadata().map_err(|e| Error::io(&self.path, e))
    }

    /// The file's current length on disk.
    pub fn len(&self) -> Result<u64, Error> {
        Ok(self.metadata()?.len())
    }
}

/// Syncs the finished `.part`, gives it its `modified` time if one is wanted, records it as
/// `url` with its `sha256` (the completion record, `record.rs`; after the time is set, which the
/// record vouches for) and moves it to its final name. The sync is batched with other files'
/// (`durable.rs`), whose thread hands the file on to the directory thread: one wake-up of this
/// task per file.
///
/// The directory is not synced: that serialised every file of a batch on the directory's lock.
/// A crash can at worst lose the rename, leaving the synced `.part`, which the next run fetches
/// again; the final name never points at unsynced data.
///
/// Without `replace` (`--overwrite`) the rename never replaces a file: the name was free when the
/// download started, and a file that appeared there meanwhile is someone else's
/// ([`rename_into_place`]).
pub async fn finish(
    part: &PartFile,
    meta: std::fs::Metadata,
    (output, replace): (&Path, bool),
    url: &str,
    modified: Option<std::time::SystemTime>,
    sha256: Option<String>,
) -> Result<(), Error> {
    let (file, path) = (Arc::clone(&part.file), part.path.clone());
    let (output, url) = (output.to_owned(), url.to_owned());
    let (reply, done) = tokio::sync::oneshot::channel();
    let device = crate::durable::device(&meta);
    crate::durable::sync(Arc::clone(&file), path.clone(), device, move |synced| {
        submit_directory_op(move || {
            let renamed = synced.and_then(|()| {
                // The record vouches for the final modification time: `meta`'s, unless set now.
                let meta = match modified {
                    Some(time) => {
                        file.set_modified(time).map_err(|e| Error::io(&path, e))?;
                        None
                    }
                    None => Some(meta),
                };
                crate::record::write(&file, meta, &output, &url, sha256);
                rename_into_place(&path, &output, replace)
            });
            let _ = reply.send(renamed);
        })
    });
    done.await.expect("finishing does not panic")
}

/// Moves `part` to `output`; unless `replace`, fails with [`Error::Exists`] rather than replace a
/// file there. On Linux the kernel checks and renames in one step (`RENAME_NOREPLACE`); where it
/// cannot (other platforms, filesystems without the flag) the name is looked at just before the
/// rename, which leaves a window of one system call instead of the whole download's.
fn rename_into_place(part: &Path, output: &Path, replace: bool) -> Result<(), Error> {
    let exists = || Error::Exists {
        path: output.to_owned(),
    };
    if !replace {
        #[cfg(target_os = "linux")]
        match linux::rename_noreplace(part, output) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
            // No such flag here (old kernels, some FUSE and network filesystems).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
            Err(e) => return Err(Error::io(output, e)),
        }
        if std::fs::symlink_metadata(output).is_ok() {
            return Err(exists());
        }
    }
    std::fs::rename(part, output).map_err(|e| Error::io(output, e))
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// `rename(from, to)` that fails with `AlreadyExists` when `to` exists.
    pub(super) fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let (from, to) = (c(from)?, c(to)?);
        // SAFETY: both are NUL-terminated paths that live across the call.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        match r {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
}

/// The writer's busy time, judged over windows of [`Load::WINDOW`].
#[derive(Debug)]
struct Load {
    busy_ns: AtomicU64,
    window: Mutex<Window>,
}

/// Since when, and the busy time then, and the verdict of the last whole window.
#[derive(Debug)]
struct Window {
    since: Instant,
    busy_ns: u64,
    bound: bool,
}

impl Load {
    /// Long enough to average over many writes and polls; short enough to notice a change.
    const WINDOW: Duration = Duration::from_millis(500);
    /// Busy more than this share of the time: the writer is the limit.
    const BOUND: f64 = 0.5;

    fn new(now: Instant) -> Load {
        Load {
            busy_ns: AtomicU64::new(0),
            window: Mutex::new(Window {
                since: now,
                busy_ns: 0,
                bound: false,
            }),
        }
    }

    /// Counts the time until the guard is dropped as busy.
    fn busy(&self) -> impl Drop + '_ {
        struct Busy<'a>(&'a AtomicU64, Instant);
        impl Drop for Busy<'_> {
            fn drop(&mut self) {
                let ns = self.1.elapsed().as_nanos() as u64;
                self.0.fetch_add(ns, Ordering::Relaxed);
            }
        }
        Busy(&self.busy_ns, Instant::now())
    }

    /// The verdict at `now`: a new one once a window has passed, else the last one.
    fn judge(&self, now: Instant) -> bool {
        let busy = self.busy_ns.load(Ordering::Relaxed);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(w.since);
        if elapsed >= Self::WINDOW {
            let share = busy.saturating_sub(w.busy_ns) as f64 / elapsed.as_nanos() as f64;
            *w = Window {
                since: now,
                busy_ns: busy,
                bound: share > Self::BOUND,
            };
        }
        w.bound
    }
}

/// Positional writes and reads on every platform.
trait Positional {
    /// Writes all of `buf` at `offset`, leaving the file's cursor alone where the platform can.
    fn write_all_at_offset(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// Fills `buf` from `offset`.
    fn read_exact_at_offset(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Positional for File {
    #[cfg(unix)]
    fn read_exact_at_offset(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    /// `seek_read` may read less than asked.
    #[cfg(windows)]
    fn read_exact_at_offset(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(self, buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(unix)]
    fn write_all_at_offset(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, offset)
    }

    /// `seek_write` may write less than asked (and moves the cursor, which nothing here uses).
    #[cfg(windows)]
    fn write_all_at_offset(&self, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(self, buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Drops what is left of the first `skip` bytes of a stream from `chunk` (for a server that
/// answers a range request with the whole file: the bytes before the range are not ours).
pub fn skip_prefix(chunk: bytes::Bytes, skip: &mut u64) -> bytes::Bytes {
    let n = (*skip).min(chunk.len() as u64);
    *skip -= n;
    chunk.slice(n as usize..)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict changes only once a whole window has passed, on the busy share of that window.
    #[test]
    fn a_writer_busy_most_of_a_window_is_the_limit() {
        let t0 = Instant::now();
        let load = Load::new(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        let add = |ms: u64| load.busy_ns.fetch_add(ms * 1_000_000, Ordering::Relaxed);
        add(400);
        assert!(
            !load.judge(at(499)),
            "no verdict before a window has passed"
        );
        assert!(load.judge(at(500)), "busy 400 of 500 ms");
        add(100);
        assert!(
            load.judge(at(900)),
            "the last verdict holds within a window"
        );
        assert!(!load.judge(at(1000)), "busy 100 of 500 ms");
        add(300);
        assert!(load.judge(at(1500)), "busy 300 of 500 ms");
        assert!(
            !load.judge(at(2500)),
            "idle for a window: no longer the limit"
        );
    }
}
