//! The benchmark's server: the e2e test server with its shaping switched on. Serves generated
//! files from memory, caps each TCP connection's rate (held across keep-alive requests), delays
//! every new connection and every reply by a fixed latency (this kernel has no netem), and can
//! make every n-th connection slow, or one reply (`--trickle`: restart the server per run).
//! `--tls` serves HTTPS with a self-signed certificate made at start-up (clients must not check
//! it).
//!
//! ```text
//! bench-server --listen 127.0.0.1:0 --file /big.bin=128M --rate 4M --latency 40ms --slow-every 4 --slow-divisor 8
//! ```
//! Prints `listening on ADDR` once ready, then serves until killed.

#[path = "../../tests/e2e/server.rs"]
mod server;

use std::time::Duration;

#[path = "../../src/bin/fastdl/units.rs"]
mod units;

use server::{payload, Resource, Server, Shaping, Trickle};
use units::{parse_duration, parse_size};

fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut shaping = Shaping::default();
    let mut slow: Option<(u64, u64)> = None;
    let mut hls: Option<(String, String, usize)> = None;
    let mut trickle = None;
    let mut rss: Option<String> = None;
    let mut tls = false;
    let mut served: Vec<(String, Vec<u8>)> = Vec::new();
    let mut args = std::env::args().skip(1);
    let die = |msg: String| -> ! {
        eprintln!("bench-server: {msg}");
        std::process::exit(2)
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| die(format!("{flag} needs a value")))
        };
        let ok = |r: Result<u64, String>| r.unwrap_or_else(|e| die(e));
        match flag.as_str() {
            "--listen" => listen = value(),
            "--file" => {
                let v = value();
                let (path, size) = v
                    .split_once('=')
                    .unwrap_or_else(|| die(format!("--file {v}: want PATH=SIZE")));
                files.push((path.to_string(), ok(parse_size(size))));
            }
            // Many small files: --files PREFIX=COUNTxSIZE serves PREFIX0..PREFIX{COUNT-1}.
            "--files" => {
                let v = value();
                let (prefix, spec) = v
                    .split_once('=')
                    .unwrap_or_else(|| die(format!("--files {v}: want PREFIX=COUNTxSIZE")));
                let (count, size) = spec
                    .split_once('x')
                    .unwrap_or_else(|| die(format!("--files {v}: want COUNTxSIZE")));
                let count: u64 = count
                    .parse()
                    .unwrap_or_else(|_| die(format!("--files {v}: bad count")));
                let size = ok(parse_size(size));
                files.extend((0..count).map(|i| (format!("{prefix}{i}"), size)));
            }
            // An HLS VOD playlist over files served with --files: --hls /v.m3u8=/s/f:600
            "--hls" => {
                let v = value();
                let (path, spec) = v
                    .split_once('=')
                    .unwrap_or_else(|| die(format!("--hls {v}: want PATH=PREFIX:COUNT")));
                let (prefix, count) = spec
                    .split_once(':')
                    .unwrap_or_else(|| die(format!("--hls {v}: want PREFIX:COUNT")));
                let count: usize = count
                    .parse()
                    .unwrap_or_else(|_| die(format!("--hls {v}: bad count")));
                hls = Some((path.to_string(), prefix.to_string(), count));
            }
            // An RSS feed of every --file and --serve, in order (yt-dlp makes each an entry).
            "--rss" => rss = Some(value()),
            "--tls" => tls = true,
            // A file from disk (real media, for merges): --serve /v.mp4=video.mp4
            "--serve" => {
                let v = value();
                let (path, local) = v
                    .split_once('=')
                    .unwrap_or_else(|| die(format!("--serve {v}: want PATH=FILE")));
                let body = std::fs::read(local).unwrap_or_else(|e| die(format!("{local}: {e}")));
                served.push((path.to_string(), body));
            }
            "--rate" => shaping.rate_per_connection = Some(ok(parse_size(&value()))),
            "--latency" => shaping.latency = parse_duration(&value()).unwrap_or_else(|e| die(e)),
            "--slow-every" => {
                slow = Some((
                    value()
                        .parse()
                        .unwrap_or_else(|_| die("--slow-every: number".into())),
                    slow.map_or(8, |s| s.1),
                ))
            }
            "--slow-divisor" => {
                let d = value()
                    .parse()
                    .unwrap_or_else(|_| die("--slow-divisor: number".into()));
                slow = Some((slow.map_or(4, |s| s.0), d));
            }
            // The first reply starting in FROM..TO is sent at RATE: --trickle 12M-20M=1K
            "--trickle" => {
                let v = value();
                let parsed = v.split_once('=').and_then(|(span, rate)| {
                    let (from, to) = span.split_once('-')?;
                    let size = |s: &str| parse_size(s).ok();
                    Some(Trickle {
                        from: size(from)?,
                        to: size(to)?,
                        rate: size(rate)?,
                    })
                });
                trickle = Some(
                    parsed.unwrap_or_else(|| die(format!("--trickle {v}: want FROM-TO=RATE"))),
                );
            }
            other => die(format!("unknown flag {other}")),
        }
    }
    shaping.slow_every = slow;
    let hls = hls;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let srv = match tls {
            true => Server::start_tls_with(&listen, None).await,
            false => Server::start_with(&listen, None).await,
        };
        srv.shape(shaping);
        let generated = files
            .iter()
            .enumerate()
            .map(|(i, (path, size))| (path.clone(), payload(*size as usize, 1000 + i as u64)));
        let all: Vec<(String, Vec<u8>)> = generated.chain(served).collect();
        if let Some(feed) = &rss {
            let items: String = all
                .iter()
                .enumerate()
                .map(|(i, (path, _))| {
                    format!(
                        "<item><title>Entry {i}</title><guid>e{i}</guid><enclosure url=\"http://{}{path}\" type=\"video/mp4\" length=\"1\"/></item>",
                        srv.addr
                    )
                })
                .collect();
            let text = format!(
                "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Bench</title><link>http://bench/</link>{items}</channel></rss>"
            );
            srv.add(feed, Resource::new(text.into_bytes()));
        }
        for (path, body) in all {
            let size = body.len();
            let path = &path;
            {
                // One line per file, so the runner can check every download.
                use sha2::Digest;
                let hex: String = sha2::Sha256::digest(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                println!("file {path} {size} {hex}");
            }
            let mut res = Resource::new(body);
            res.trickle = trickle;
            srv.add(path, res);
        }
        if let Some((path, prefix, count)) = &hls {
            use sha2::Digest;
            let mut text = String::from(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n",
            );
            let mut joined = sha2::Sha256::new();
            let served = srv.state.files.lock().unwrap();
            for i in 0..*count {
                let seg = format!("{prefix}{i}");
                let body = &served
                    .get(&seg)
                    .unwrap_or_else(|| die(format!("--hls: {seg} is not served")))
                    .body;
                joined.update(body.as_slice());
                text.push_str(&format!("#EXTINF:2.0,\n{seg}\n"));
            }
            drop(served);
            text.push_str("#EXT-X-ENDLIST\n");
            let hex: String = joined
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut res = Resource::new(text.into_bytes());
            res.headers.push((
                "Content-Type".into(),
                "application/vnd.apple.mpegurl".into(),
            ));
            srv.add(path, res);
            println!("hls {path} {hex}");
        }
        println!("listening on {}", srv.addr);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}
