//! The `.part` file: created sparse at its final size, written at positions by many connections
//! at once, synced before the resume state may claim its bytes, renamed only when verified.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;

/// The file being downloaded into.
#[derive(Clone, Debug)]
pub struct PartFile {
    file: Arc<File>,
    path: PathBuf,
}

/// `FILE.part` for the output `FILE`.
pub fn part_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

impl PartFile {
    /// Opens `path` for writing. `keep` keeps its bytes (resuming); otherwise it is emptied.
    /// A known `size` is set at once so positional writes anywhere are valid (the file is sparse
    /// until written; no time is spent preallocating).
    pub fn open(path: &Path, size: Option<u64>, keep: bool) -> Result<PartFile, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!keep)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        if let Some(size) = size {
            file.set_len(size).map_err(|e| Error::io(path, e))?;
        }
        Ok(PartFile {
            file: Arc::new(file),
            path: path.to_owned(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `buf[part]` at `offset`, off the async threads, and gives the buffer back for
    /// reuse (no copy, no allocation per write).
    pub async fn write_at(
        &self,
        buf: Vec<u8>,
        part: std::ops::Range<usize>,
        offset: u64,
    ) -> (Vec<u8>, Result<(), Error>) {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let res = file
                .write_all_at(&buf[part], offset)
                .map_err(|e| Error::io(&path, e));
            (buf, res)
        })
        .await
        .expect("write task does not panic")
    }

    /// Writes `len` bytes of `chunks`, starting `skip` bytes into them, at `offset`, off the
    /// async threads. The chunks are the network's own buffers, so nothing is copied in user
    /// space; the emptied `Vec` comes back for reuse.
    pub async fn write_chunks(
        &self,
        mut chunks: Vec<bytes::Bytes>,
        mut skip: usize,
        len: usize,
        offset: u64,
    ) -> (Vec<bytes::Bytes>, Result<(), Error>) {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let (mut at, mut left) = (offset, len);
            let mut res = Ok(());
            for c in &chunks {
                if left == 0 {
                    break;
                }
                if skip >= c.len() {
                    skip -= c.len();
                    continue;
                }
                let piece = &c[skip..c.len().min(skip + left)];
                skip = 0;
                if let Err(e) = file.write_all_at(piece, at) {
                    res = Err(Error::io(&path, e));
                    break;
                }
                at += piece.len() as u64;
                left -= piece.len();
            }
            chunks.clear();
            (chunks, res)
        })
        .await
        .expect("write task does not panic")
    }

    /// Empties the file and sets its new size (for starting over).
    pub fn reset(&self, size: Option<u64>) -> Result<(), Error> {
        self.file.set_len(0).map_err(|e| Error::io(&self.path, e))?;
        if let Some(size) = size {
            self.file
                .set_len(size)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Sets the final length (streams of unknown size).
    pub fn set_len(&self, size: u64) -> Result<(), Error> {
        self.file
            .set_len(size)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes written data to the disk. Resume state is written only after this returns.
    pub async fn sync(&self) -> Result<(), Error> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || file.sync_data().map_err(|e| Error::io(&path, e)))
            .await
            .expect("sync task does not panic")
    }

    /// The file's current length on disk.
    pub fn len(&self) -> Result<u64, Error> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.path, e))?
            .len())
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

/// Moves the finished `.part` to its final name and makes the rename durable.
pub fn finish(part: &Path, output: &Path) -> Result<(), Error> {
    std::fs::rename(part, output).map_err(|e| Error::io(output, e))?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort: some filesystems cannot sync a directory; the data itself is synced.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
