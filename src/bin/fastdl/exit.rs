//! Process exit codes, documented in `docs/exit-codes.md` and `--help`, and the one mapping from
//! the library's errors to them.

use fastdl::Error;

/// Everything downloaded and verified.
pub const OK: u8 = 0;
/// A download failed (network, HTTP status, server misbehaviour); retrying later may help.
pub const DOWNLOAD: u8 = 1;
/// Bad command line, configuration or input list.
pub const USAGE: u8 = 2;
/// The file's size is outside `--min-filesize`/`--max-filesize` (yt-dlp's meaning).
pub const FILESIZE: u8 = 3;
/// The output already exists (nothing was written).
pub const EXISTS: u8 = 4;
/// Checksum or length mismatch; the file was not kept.
pub const INTEGRITY: u8 = 5;
/// A local file could not be read or written (permissions, disk full).
pub const IO: u8 = 6;
/// Another fastdl is downloading the same output now (nothing was changed).
pub const BUSY: u8 = 7;
/// Some entries of a batch failed, the others were downloaded or skipped (the first failure's
/// code when none was).
pub const PARTIAL: u8 = 8;
/// Interrupted by SIGINT or SIGTERM; state saved, the same command resumes.
pub const INTERRUPTED: u8 = 130;

/// Each code with a few words, for `--help` and the man page.
pub const MEANINGS: [(u8, &str); 10] = [
    (OK, "success"),
    (DOWNLOAD, "download failed"),
    (USAGE, "usage error"),
    (FILESIZE, "outside --max/--min-filesize"),
    (EXISTS, "output exists"),
    (INTEGRITY, "checksum or length mismatch"),
    (IO, "local file error"),
    (BUSY, "another fastdl is writing the output"),
    (PARTIAL, "some entries failed, others done"),
    (INTERRUPTED, "interrupted (resumable)"),
];

/// The exit code for `e`.
pub fn code(e: &Error) -> u8 {
    match e {
        Error::Invalid(_) => USAGE,
        Error::FileSize { .. } => FILESIZE,
        Error::Exists { .. } => EXISTS,
        Error::Integrity { .. } => INTEGRITY,
        Error::Io { .. } => IO,
        Error::Busy { .. } => BUSY,
        Error::Interrupted => INTERRUPTED,
        _ => DOWNLOAD,
    }
}
