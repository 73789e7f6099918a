//! The completion record: what fastdl notes on a file it finished, so a later run skips it
//! without asking the server, and only while the file is unchanged (same size and modification
//! time).
//!
//! Where the filesystem has user extended attributes (Linux, macOS), the record is the file's
//! `user.fastdl` attribute: nothing beside the user's files, and it moves with the file. It is
//! 32 bytes (64 with a SHA-256), small enough to live in the inode itself: ext4's 256-byte
//! inodes hold 64 bytes of value for one attribute of this name, and a bigger one (the JSON form of earlier
//! versions, ~90 bytes with its URL) took a 4 KiB block of its own for every file, 12% more disk
//! for a batch of 32 KiB files, and a block allocated and journalled for each. So it names the
//! download by a digest of its (safe) URL, not the URL. Where the filesystem has no attributes
//! (FAT/exFAT cards and USB drives, many NFS/SMB mounts, ramfs) and on Windows, records go
//! to a journal per output directory in fastdl's state directory (never beside the user's
//! files): `$FASTDL_STATE_DIR`, else `$XDG_STATE_HOME/fastdl` (`~/.local/state/fastdl`),
//! `%LOCALAPPDATA%\fastdl` on Windows, `~/Library/Application Support/fastdl` on macOS. A journal
//! is JSON lines appended under a lock (several fastdl processes may finish files in one
//! directory), read once per directory per run, and compacted when it holds many stale lines.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::Digest;

use crate::redact::SafeUrl;

/// The record of one finished file, as a journal line keeps it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Record {
    /// The job's URL, safe to show; a fragment adds its byte range.
    pub url: SafeUrl,
    pub size: u64,
    /// Modification time when recorded, in nanoseconds: a file changed since is not vouched for.
    pub mtime_ns: i128,
    /// The file's SHA-256 (hex), when the run that finished it computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Which download a record is for: the first 15 bytes of the SHA-256 of its safe URL (15, so
/// that the attribute with its format byte is 32 bytes).
type Key = [u8; 15];

fn key(url: &SafeUrl) -> Key {
    let digest = sha2::Sha256::digest(url.as_str().as_bytes());
    digest[..15].try_into().expect("15 of 32 bytes")
}

/// A record read back, from either place.
#[derive(Debug, PartialEq)]
pub(crate) struct Found {
    key: Key,
    size: u64,
    mtime_ns: i128,
    pub sha256: Option<String>,
}

impl Found {
    /// True when this is the record of `url`'s download (a fragment's adds its byte range) and
    /// `meta` still describes the file as recorded.
    pub fn vouches(&self, url: &str, meta: &std::fs::Metadata) -> bool {
        self.key == key(&SafeUrl::new(url))
            && meta.len() == self.size
            && mtime_ns(meta) == Some(self.mtime_ns)
    }
}

impl From<Record> for Found {
    fn from(r: Record) -> Found {
        Found {
            key: key(&r.url),
            size: r.size,
            mtime_ns: r.mtime_ns,
            sha256: r.sha256,
        }
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> Option<i128> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_nanos() as i128)
}

/// Records that `file` (the finished `.part`, open; `meta`, its metadata if known to be current)
/// will be `final_path`, `url`, complete, with its SHA-256 if known. Best effort: a record that
/// cannot be written only means a later run asks again. Through the handle, not the path: two
/// fewer lookups in a directory that may hold thousands of files.
pub(crate) fn write(
    file: &File,
    meta: Option<std::fs::Metadata>,
    final_path: &Path,
    url: &str,
    sha256: Option<String>,
) {
    let Some(meta) = meta.or_else(|| file.metadata().ok()) else {
        return;
    };
    let Some(mtime_ns) = mtime_ns(&meta) else {
        return;
    };
    let record = Record {
        url: SafeUrl::new(url),
        size: meta.len(),
        mtime_ns,
        sha256,
    };
    if !attr::set(file, &record) {
        journal::append(final_path, &record);
    }
}

/// The completion record of the file at `path`, if it has one.
pub(crate) fn read(path: &Path) -> Option<Found> {
    attr::get(path).or_else(|| journal::get(path).map(Found::from))
}

/// The attribute's bytes: [`FORMAT`], the key, size and modification time (little-endian; the
/// time as an i64 of nanoseconds, enough until 2262), then the raw SHA-256 if known.
#[cfg_attr(not(unix), allow(dead_code))]
mod compact {
    use super::{key, Found, Record};

    /// The first byte of this form. The earlier JSON form starts with `{`.
    const FORMAT: u8 = 2;

    pub fn encode(r: &Record) -> Option<Vec<u8>> {
        let mtime = i64::try_from(r.mtime_ns).ok()?;
        let mut v = Vec::with_capacity(64);
        v.push(FORMAT);
        v.extend_from_slice(&key(&r.url));
        v.extend_from_slice(&r.size.to_le_bytes());
        v.extend_from_slice(&mtime.to_le_bytes());
        if let Some(raw) = r.sha256.as_deref().and_then(unhex) {
            v.extend_from_slice(&raw);
        }
        Some(v)
    }

    pub fn decode(v: &[u8]) -> Option<Found> {
        if v.first() == Some(&b'{') {
            return serde_json::from_slice::<Record>(v).ok().map(Found::from);
        }
        let (&format, rest) = v.split_first()?;
        if format != FORMAT || !matches!(rest.len(), 31 | 63) {
            return None;
        }
        let (key, rest) = rest.split_at(15);
        let (size, rest) = rest.split_at(8);
        let (mtime, sha256) = rest.split_at(8);
        Some(Found {
            key: key.try_into().ok()?,
            size: u64::from_le_bytes(size.try_into().ok()?),
            mtime_ns: i64::from_le_bytes(mtime.try_into().ok()?).into(),
            sha256: (!sha256.is_empty()).then(|| crate::checksum::to_hex(sha256)),
        })
    }

    /// 64 hex digits as 32 bytes.
    fn unhex(hex: &str) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        if hex.len() != 64 {
            return None;
        }
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

#[cfg(unix)]
mod attr {
    use super::{compact, Found, Record};
    use std::fs::File;
    use std::path::Path;
    use xattr::FileExt;

    const NAME: &str = "user.fastdl";

    /// False when the filesystem (or the platform) keeps no such attribute.
    pub fn set(file: &File, record: &Record) -> bool {
        compact::encode(record).is_some_and(|value| file.set_xattr(NAME, &value).is_ok())
    }

    pub fn get(path: &Path) -> Option<Found> {
        compact::decode(&xattr::get(path, NAME).ok()??)
    }
}

/// Windows: NTFS could keep the record in an alternate data stream, but a copy to a FAT drive
/// drops it and some tools show it; the journal works on every volume.
#[cfg(not(unix))]
mod attr {
    use super::{Found, Record};
    use std::fs::File;
    use std::path::Path;

    pub fn set(_: &File, _: &Record) -> bool {
        false
    }

    pub fn get(_: &Path) -> Option<Found> {
        None
    }
}

mod journal {
    use super::*;

    /// Journals read by this process, by file: name in the directory → its latest record.
    type Loaded = HashMap<PathBuf, Arc<Mutex<HashMap<String, Record>>>>;

    fn loaded() -> &'static Mutex<Loaded> {
        static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
        LOADED.get_or_init(Default::default)
    }

    /// One line of a journal. (Not `#[serde(flatten)]`: serde's buffering for it has no 128-bit
    /// integers, and the line would fail to parse.)
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Line {
        name: String,
        record: Record,
    }

    /// fastdl's state directory (see the module docs).
    pub(crate) fn state_dir() -> Option<PathBuf> {
        let env = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = env("FASTDL_STATE_DIR") {
            return Some(dir);
        }
        if cfg!(windows) {
            return env("LOCALAPPDATA").map(|d| d.join("fastdl"));
        }
        if cfg!(target_os = "macos") {
            return env("HOME").map(|h| h.join("Library/Application Support/fastdl"));
        }
        env("XDG_STATE_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".local/state")))
            .map(|d| d.join("fastdl"))
    }

    /// The journal of the directory holding `path`, and the file's name in it.
    fn locate(path: &Path) -> Option<(PathBuf, String)> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(d) => d.canonicalize().ok()?,
            None => std::env::current_dir().ok()?,
        };
        let key = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
        let hex: String = key[..12].iter().map(|b| format!("{b:02x}")).collect();
        Some((
            state_dir()?.join("records").join(format!("{hex}.jsonl")),
            name,
        ))
    }

    /// The records of `journal`, read from disk the first time.
    fn records(journal: &Path) -> Arc<Mutex<HashMap<String, Record>>> {
        let mut all = loaded().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = all.get(journal) {
            return Arc::clone(r);
        }
        let mut map = HashMap::new();
        let mut lines = 0;
        if let Ok(text) = std::fs::read_to_string(journal) {
            for line in text.lines() {
                lines += 1;
                if let Ok(l) = serde_json::from_str::<Line>(line) {
                    map.insert(l.name, l.record);
                }
            }
        }
        if lines > 64 && lines > 2 * map.len() {
            compact(journal, &map);
        }
        let map = Arc::new(Mutex::new(map));
        all.insert(journal.to_owned(), Arc::clone(&map));
        map
    }

    /// Rewrites `journal` with one line per file, atomically.
    fn compact(journal: &Path, map: &HashMap<String, Record>) {
        let tmp = journal.with_extension("jsonl.tmp");
        let text: String = map
            .iter()
            .filter_map(|(name, record)| {
                let line = Line {
                    name: name.clone(),
                    record: record.clone(),
                };
                serde_json::to_string(&line).ok()
            })
            .map(|l| l + "\n")
            .collect();
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, journal).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    pub fn append(final_path: &Path, record: &Record) {
        let Some((journal, name)) = locate(final_path) else {
            return;
        };
        let line = Line {
            name: name.clone(),
            record: record.clone(),
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        if let Some(dir) = journal.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal);
        if let Ok(mut file) = file {
            // Whole lines only, one process at a time.
            if file.lock().is_ok() {
                let _ = file.write_all(text.as_bytes());
            }
        }
        records(&journal)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, record.clone());
    }

    /// Forgets the journals read, as a new process would start.
    #[cfg(test)]
    pub fn forget() {
        loaded().lock().unwrap().clear();
    }

    pub fn get(path: &Path) -> Option<Record> {
        let (journal, name) = locate(path)?;
        if !journal.exists() {
            return None;
        }
        let records = records(&journal);
        let record = records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned();
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attribute is small enough for an ext4 inode's own space, reads back as written, says
    /// which download it is for, and the earlier JSON form still reads.
    #[test]
    fn the_attribute_is_compact_and_reads_back() {
        let url = "http://h/f?token=secret";
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        for sha256 in [None, Some(sha.to_string())] {
            let record = Record {
                url: SafeUrl::new(url),
                size: 5,
                mtime_ns: 1_733_312_345_123_456_789,
                sha256: sha256.clone(),
            };
            let value = compact::encode(&record).unwrap();
            assert_eq!(value.len(), if sha256.is_some() { 64 } else { 32 });
            let found = compact::decode(&value).unwrap();
            assert_eq!(found, Found::from(record.clone()));
            assert_eq!(found.sha256, sha256);
            assert_eq!(found.key, key(&SafeUrl::new(url)));
            assert_ne!(found.key, key(&SafeUrl::new("http://h/g")));
            let json = serde_json::to_vec(&record).unwrap();
            assert_eq!(compact::decode(&json), Some(found));
        }
        assert_eq!(compact::decode(b""), None);
        assert_eq!(
            compact::decode(&[2; 20]),
            None,
            "a short value is no record"
        );
        assert_eq!(
            compact::decode(&[9; 32]),
            None,
            "an unknown format is no record"
        );
    }

    #[test]
    fn a_journal_record_holds_until_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("fastdl-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.bin");
        std::fs::write(&file, b"hello").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let record = Record {
            url: "http://h/f".into(),
            size: 5,
            mtime_ns: mtime_ns(&meta).unwrap(),
            sha256: Some("2cf24dba".into()),
        };
        // The journal as a filesystem without attributes uses it.
        std::env::set_var("FASTDL_STATE_DIR", dir.join("state"));
        journal::append(&file, &record);
        assert_eq!(journal::get(&file), Some(record.clone()));
        // What another process reads back from the file.
        let text = std::fs::read_to_string(
            std::fs::read_dir(dir.join("state/records"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["name"], "f.bin");
        assert_eq!(line["record"]["size"], 5);
        assert_eq!(line["record"]["sha256"], "2cf24dba");
        journal::forget();
        assert_eq!(
            journal::get(&file),
            Some(record.clone()),
            "read back from disk"
        );
        let found = Found::from(record.clone());
        assert!(found.vouches("http://h/f", &meta));
        assert!(!found.vouches("http://h/other", &meta));
        std::fs::write(&file, b"hello, changed").unwrap();
        assert!(!found.vouches("http://h/f", &std::fs::metadata(&file).unwrap()));
        assert_eq!(journal::get(&dir.join("other.bin")), None);
        let journals: Vec<_> = std::fs::read_dir(dir.join("state/records"))
            .unwrap()
            .collect();
        assert_eq!(journals.len(), 1, "one journal per directory");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "nothing beside the user's file but the state directory of this test"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
