//! Reads a zip archive on a server without downloading it: the member names, or one member.
//!
//! ```text
//! cargo run --release --example remote-zip -- URL            # the member names, one per line
//! cargo run --release --example remote-zip -- URL MEMBER     # that member's bytes on stdout
//! ```
//!
//! Only the end of the archive (its directory) and the member are fetched; the last line on
//! stderr says how many bytes that was.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), member) = (args.next(), args.next()) else {
        eprintln!("usage: remote-zip URL [MEMBER]");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Runtime::new()?;
    let file = rt.block_on(async { fastdl::Downloader::new()?.open(&url).await })?;
    let size = file.len();
    // The zip crate reads synchronously: give it the blocking view, outside the runtime.
    let mut archive = zip::ZipArchive::new(file.into_blocking(rt.handle().clone()))?;
    let mut out = std::io::stdout().lock();
    match member {
        None => {
            // The names are in the directory: no member is read.
            for name in archive.file_names() {
                writeln!(out, "{name}")?;
            }
        }
        Some(name) => {
            let mut entry = archive.by_name(&name)?;
            std::io::copy(&mut entry, &mut out)?;
        }
    }
    out.flush()?;
    let fetched = archive.into_inner().get_ref().bytes_fetched();
    eprintln!(
        "fetched {fetched} of {size} bytes ({:.2}%)",
        fetched as f64 * 100.0 / size.max(1) as f64
    );
    Ok(())
}
