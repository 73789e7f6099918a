//! The SHA-256 of what a download wrote (`DownloaderBuilder::sha256`), for reports and the
//! completion record, computed while the file is written rather than by reading it afterwards.
//!
//! Connections write out of order, so the hash follows the written prefix: bytes written where
//! the hash has got to are hashed at once, from memory (for one connection or a plain stream,
//! that is the whole file); bytes written ahead of it are read back once everything before them
//! is on the page cache (the file's periodic save does that while the download goes on, and
//! its end does the rest). Bytes resumed from an earlier run are read back once.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::checksum::to_hex;

/// A SHA-256 fed in file order, however the file is written.
#[derive(Clone, Debug, Default)]
pub(crate) struct InOrder {
    hasher: Sha256,
    /// Bytes of the file hashed so far, from 0.
    at: u64,
}

impl InOrder {
    /// `bytes` were just written at `offset`: hashes what continues the hashed prefix.
    pub fn wrote(&mut self, bytes: &[u8], offset: u64) {
        let end = offset + bytes.len() as u64;
        if offset <= self.at && self.at < end {
            self.hasher.update(&bytes[(self.at - offset) as usize..]);
            self.at = end;
        }
    }

    /// Hashes the file up to `end`, every byte of which is written, reading with `read_at`
    /// (fill the buffer from the offset) what was not hashed as it was written.
    pub fn catch_up(
        &mut self,
        end: u64,
        mut read_at: impl FnMut(&mut [u8], u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        while self.at < end {
            let n = (end - self.at).min(1 << 18) as usize;
            buf.resize(n, 0);
            read_at(&mut buf, self.at)?;
            self.hasher.update(&buf);
            self.at += n as u64;
        }
        Ok(())
    }

    /// Bytes hashed so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The hex digest of the bytes hashed.
    pub fn finish(self) -> String {
        to_hex(&self.hasher.finalize())
    }
}

/// The hex SHA-256 of the file at `path`, read once (a skipped file whose completion record
/// holds no digest: it was finished by a run that did not compute one).
pub(crate) fn of_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 18];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(to_hex(&hasher.finalize())),
            n => hasher.update(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(data: &[u8]) -> String {
        to_hex(&Sha256::digest(data))
    }

    /// Writes of `data` in the given (offset, len) order, with catch-ups after some of them
    /// (up to the written prefix), hash to the digest of `data`.
    #[test]
    fn any_write_order_gives_the_digest_of_the_file() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let read = |buf: &mut [u8], at: u64| {
            buf.copy_from_slice(&data[at as usize..at as usize + buf.len()]);
            Ok(())
        };
        let orders: [&[(usize, usize)]; 5] = [
            &[(0, 10_000)],
            &[(0, 4000), (4000, 6000)],
            // Ahead first: read back at the end.
            &[(5000, 5000), (0, 5000)],
            // Overlapping rewrites (a race's loser writing the same bytes).
            &[(0, 3000), (1000, 4000), (2000, 8000)],
            &[(9000, 1000), (3000, 6000), (0, 3000)],
        ];
        for order in orders {
            let mut h = InOrder::default();
            let mut written = vec![false; data.len()];
            for &(at, len) in order {
                written[at..at + len].fill(true);
                h.wrote(&data[at..at + len], at as u64);
                let prefix = written.iter().take_while(|w| **w).count();
                h.catch_up(prefix as u64, read).unwrap();
            }
            h.catch_up(data.len() as u64, read).unwrap();
            assert_eq!(h.finish(), sha256(&data), "{order:?}");
        }
    }

    #[test]
    fn a_file_read_back_hashes_like_its_bytes() {
        let dir = std::env::temp_dir().join(format!("fastdl-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data = vec![42u8; 300_000];
        std::fs::write(&path, &data).unwrap();
        assert_eq!(of_file(&path).unwrap(), sha256(&data));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
