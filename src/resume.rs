//! The resume sidecar, `FILE.part.fastdl`: which bytes of `FILE.part` are on disk, and which
//! version of the resource they belong to.
//!
//! It is written atomically (temp file, fsync, rename) and only after the `.part` data it
//! describes has been synced, so after a crash or `kill -9` it never claims a byte that is not
//! really there. The URL is recorded for the user's benefit but not compared: yt-dlp hands over
//! fresh signed URLs for the same file. Size and validators decide whether bytes may be reused.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::http::Validators;
use crate::range::RangeSet;

/// Format version; a sidecar of another version is ignored (the download starts over).
const VERSION: u32 = 1;

/// What the sidecar stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub version: u32,
    pub url: crate::redact::SafeUrl,
    pub size: u64,
    #[serde(flatten)]
    pub validators: Validators,
    /// Byte ranges of the `.part` that are on disk, as `[{"start":..,"end":..}]`.
    pub done: RangeSet,
}

impl ResumeState {
    /// A state for a download just started.
    pub fn new(url: &str, size: u64, validators: Validators, done: RangeSet) -> ResumeState {
        ResumeState {
            version: VERSION,
            url: crate::redact::SafeUrl::new(url),
            size,
            validators,
            done,
        }
    }
}

/// `FILE.part.fastdl` for the part file `FILE.part`.
pub fn state_path(part: &Path) -> PathBuf {
    let mut s = part.as_os_str().to_owned();
    s.push(".fastdl");
    PathBuf::from(s)
}

/// Reads the sidecar. A missing, unreadable or foreign one is `None`: the download then starts
/// from zero, which is always safe.
pub fn load(path: &Path) -> Option<ResumeState> {
    let text = std::fs::read(path).ok()?;
    let state: ResumeState = serde_json::from_slice(&text).ok()?;
    (state.version == VERSION && state.done.fits(state.size)).then_some(state)
}

/// Writes the sidecar (a [`ResumeState`], or a joined file's progress) atomically.
pub fn save<T: Serialize>(path: &Path, state: &T) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec(state).expect("resume state serialises");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(&json)?;
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        // The previous state, if any, is still whole; a half-written copy is no use to anyone.
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Deletes the sidecar (download finished or abandoned). Looks first: unlinking a name that
/// is not there still takes the directory's lock.
pub fn remove(path: &Path) {
    if path.exists() {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::ByteRange;

    #[test]
    fn state_round_trips_and_rejects_nonsense() {
        let dir = std::env::temp_dir().join(format!("fastdl-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.part.fastdl");
        let mut done = RangeSet::new();
        done.insert(ByteRange::new(0, 10));
        let v = Validators {
            etag: Some("\"x\"".into()),
            last_modified: None,
        };
        let s = ResumeState::new("http://h/a", 100, v, done);
        save(&path, &s).unwrap();
        assert_eq!(load(&path), Some(s.clone()));
        // Claims bytes past the end of the file: ignored.
        let mut bad = s;
        bad.done.insert(ByteRange::new(90, 200));
        save(&path, &bad).unwrap();
        assert_eq!(load(&path), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
