//! Making finished files durable before they get their final names, in batches.
//!
//! A file is renamed into place only once its data is on disk, so a crash never leaves a
//! complete-looking file with missing bytes. Syncing each file on its own is what made a batch
//! of small files expensive: every `fdatasync` writes that file's inode block and bitmaps
//! synchronously, blocks that the next file dirties again. 2000 files of 32 KiB cost 9192 disk
//! writes synced one by one (ext4 on this VM), 6219 when the same syncs came in batches of 16,
//! and 880 with one `syncfs` per batch of 16, which writes each shared block once.
//!
//! So finished files queue for one thread, which takes what has queued by [`LINGER`] after the
//! first, syncs the batch, then hands each file on (to its rename). On Linux a batch of files on a
//! filesystem whose `syncfs` is a real sync of everything (ext4, XFS, Btrfs, F2FS, tmpfs) gets
//! one `syncfs`; anything else (FUSE and network mounts, where only `fsync` reaches the
//! server, and every other platform) is synced file by file, as before.
//!
//! `syncfs` also writes what other programs left dirty on that filesystem. That costs this
//! batch's finish time, never a download's speed: a file's connections and its `-j` slot are
//! released before it is finished.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use crate::error::Error;

/// How long the thread waits for more files after the first of a batch: at 700 files/s a batch
/// of a few, and nothing a single download notices.
const LINGER: Duration = Duration::from_millis(5);
/// The most files one batch answers for.
const MAX_BATCH: usize = 256;

/// A file waiting for its sync, and what to do once it is done.
struct Job {
    file: Arc<File>,
    path: PathBuf,
    /// The device its filesystem is on, where that decides how it is synced.
    device: Option<u64>,
    then: Box<dyn FnOnce(Result<(), Error>) + Send>,
}

/// The device to give [`sync`] for a file of metadata `meta`, where the platform needs one.
pub(crate) fn device(meta: &std::fs::Metadata) -> Option<u64> {
    #[cfg(target_os = "linux")]
    let device = Some(std::os::unix::fs::MetadataExt::dev(meta));
    // Elsewhere every file is synced on its own, whatever its device.
    #[cfg(not(target_os = "linux"))]
    let device = {
        let _ = meta;
        None
    };
    device
}

/// Syncs `file` (at `path`, on `device`: see [`device`]) to disk, then calls `then` with how it
/// went, on the sync thread.
pub(crate) fn sync(
    file: Arc<File>,
    path: PathBuf,
    device: Option<u64>,
    then: impl FnOnce(Result<(), Error>) + Send + 'static,
) {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (send, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("fastdl-sync".into())
            .spawn(move || run(jobs))
            .expect("a thread can be started");
        send
    });
    let then = Box::new(then);
    queue
        .send(Job {
            file,
            path,
            device,
            then,
        })
        .expect("the sync thread never ends");
}

/// The sync thread: a batch at a time, for as long as the process lives.
fn run(jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        // Sleeping, not waiting on the queue: a file queued meanwhile then wakes no one.
        std::thread::sleep(LINGER);
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        let files: Vec<(&File, Option<u64>)> = batch.iter().map(|j| (&*j.file, j.device)).collect();
        let results = sync_all(&files);
        for (job, result) in batch.into_iter().zip(results) {
            (job.then)(result.map_err(|e| Error::io(&job.path, e)));
        }
    }
}

/// Syncs every file (with its device, if known); one result per file, in order.
fn sync_all(files: &[(&File, Option<u64>)]) -> Vec<std::io::Result<()>> {
    #[cfg(target_os = "linux")]
    let synced = linux::sync_filesystems(files);
    #[cfg(not(target_os = "linux"))]
    let synced = vec![false; files.len()];
    files
        .iter()
        .zip(synced)
        .map(|((f, _), done)| if done { Ok(()) } else { f.sync_data() })
        .collect()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// Filesystems whose `syncfs` writes and waits for all their data and metadata, and flushes
    /// the device: ext4 (and ext2/3), XFS, Btrfs, F2FS; tmpfs has nothing to write.
    const WHOLE_SYNC: [u32; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010, 0x0102_1994];

    /// Syncs each filesystem that holds more than one of `files` once; true for the files that
    /// covered. A file left out (alone on its filesystem, another kind of filesystem, or a
    /// `syncfs` that failed) is synced on its own by the caller, which also reports its error.
    pub(super) fn sync_filesystems(files: &[(&File, Option<u64>)]) -> Vec<bool> {
        let mut synced = vec![false; files.len()];
        if files.len() < 2 {
            return synced;
        }
        let devices: Vec<Option<u64>> = files
            .iter()
            .map(|&(f, dev)| dev.filter(|_| whole_sync(f)))
            .collect();
        for (i, dev) in devices.iter().enumerate() {
            let Some(dev) = dev else { continue };
            if synced[i] || devices.iter().filter(|d| *d == &Some(*dev)).count() < 2 {
                continue;
            }
            // SAFETY: syncfs only reads the descriptor, which `files[i]` keeps open.
            if unsafe { libc::syncfs(files[i].0.as_raw_fd()) } == 0 {
                for (s, d) in synced.iter_mut().zip(&devices) {
                    *s |= d == &Some(*dev);
                }
            }
        }
        synced
    }

    /// True when `syncfs` on `file`'s filesystem is a whole sync.
    pub(super) fn whole_sync(file: &File) -> bool {
        let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: fstatfs fills `fs` when it returns 0, and only then is it read.
        if unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) } != 0 {
            return false;
        }
        // `f_type` is an i32 on some 32-bit targets: compared as the u32 the magic numbers are.
        let kind = unsafe { fs.assume_init() }.f_type as u32;
        WHOLE_SYNC.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of a batch is synced, and answered in order; on Linux, files on one
    /// filesystem with a whole `syncfs` take that path, others their own sync.
    #[test]
    fn a_batch_syncs_every_file() {
        let dir = std::env::temp_dir().join(format!("fastdl-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<File> = (0..3)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, b"data").unwrap();
                File::options().write(true).open(path).unwrap()
            })
            .collect();
        let refs: Vec<(&File, Option<u64>)> = files
            .iter()
            .map(|f| (f, device(&f.metadata().unwrap())))
            .collect();
        let results = sync_all(&refs);
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        #[cfg(target_os = "linux")]
        {
            let whole = linux::whole_sync(&files[0]);
            let synced = linux::sync_filesystems(&refs);
            assert_eq!(
                synced, [whole; 3],
                "one syncfs covers all three when it can"
            );
            assert_eq!(
                linux::sync_filesystems(&refs[..1]),
                [false],
                "one file: its own sync"
            );
            let unknown: Vec<_> = refs.iter().map(|&(f, _)| (f, None)).collect();
            assert_eq!(
                linux::sync_filesystems(&unknown),
                [false; 3],
                "no device known: each its own sync"
            );
        }
        // Windows deletes no open file.
        drop(refs);
        drop(files);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
