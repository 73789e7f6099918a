//! Downloads a list of URLs with the library: several at once, a progress line per second on
//! stderr from the event stream, and a result per URL as each one ends.
//!
//! ```text
//! cargo run --release --example batch -- DIR URL...
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fastdl::{Downloader, Event, Request};

#[tokio::main]
async fn main() -> Result<(), fastdl::Error> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: batch DIR URL...");
        std::process::exit(2);
    };
    let requests: Vec<Request> = args.map(|url| Request::new(url).dir(&dir)).collect();
    let downloader = Downloader::builder().concurrent_downloads(4).build()?;

    // The progress callback: one task reading the event stream.
    let mut events = downloader.events();
    let progress = tokio::spawn(async move {
        let mut bytes: HashMap<usize, u64> = HashMap::new();
        let mut last = Instant::now();
        while let Some(event) = events.recv().await {
            match event {
                Event::Progress(p) => {
                    bytes.insert(p.id, p.downloaded_bytes);
                }
                Event::Log { message, .. } => eprintln!("  {message}"),
                _ => {}
            }
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprintln!("{} bytes so far", bytes.values().sum::<u64>());
            }
        }
    });

    let mut results = downloader.download_all(requests);
    let mut failed = 0;
    while let Some((index, result)) = results.next().await {
        match result {
            Ok(o) => println!("{index}: {} bytes in {:.2?}", o.bytes, o.elapsed),
            Err(e) => {
                failed += 1;
                println!("{index}: failed: {e}");
            }
        }
    }
    drop((results, downloader)); // the event stream ends with the downloader
    let _ = progress.await;
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
