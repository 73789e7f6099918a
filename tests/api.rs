//! The library as a user crate sees it: only `fastdl::*`, against the e2e server on 127.0.0.1.

#[path = "e2e/server.rs"]
mod server;

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use fastdl::{Downloader, Error, Event, Request};
use server::{payload, Fault, Resource, Server};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const MIB: usize = 1 << 20;

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// A fresh directory under the system's temporary one.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fastdl-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn downloader() -> Downloader {
    Downloader::builder()
        .connections(4)
        .min_split(256 << 10)
        .retry_delay(std::time::Duration::from_millis(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_to_a_path_a_writer_and_a_callback() {
    let srv = Server::start().await;
    let body = payload(3 * MIB + 5, 1);
    let mut res = Resource::new(body.clone());
    res.faults = [Fault::None, Fault::ResetAfter(100_000)].into();
    srv.add("/f", res);
    let d = downloader();
    let dir = temp_dir("path");

    let o = d
        .download(Request::new(srv.url("/f")).output(dir.join("f.bin")))
        .await
        .unwrap();
    assert_eq!(o.bytes, body.len() as u64);
    assert_eq!(o.path.as_deref(), Some(dir.join("f.bin").as_path()));
    assert_eq!(
        sha256(&std::fs::read(dir.join("f.bin")).unwrap()),
        sha256(&body)
    );

    // Any AsyncWrite, in order.
    let file = tokio::fs::File::create(dir.join("w.bin")).await.unwrap();
    let o = d
        .download(Request::new(srv.url("/f")).writer(file))
        .await
        .unwrap();
    assert_eq!(o.path, None);
    assert_eq!(
        sha256(&std::fs::read(dir.join("w.bin")).unwrap()),
        sha256(&body)
    );

    // A callback receiving the bytes in order.
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    d.download(Request::new(srv.url("/f")).on_bytes(move |b| {
        sink.lock().unwrap().extend_from_slice(b);
        Ok(())
    }))
    .await
    .unwrap();
    assert_eq!(sha256(&got.lock().unwrap()), sha256(&body));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_streams_results_and_events() {
    let srv = Server::start().await;
    let bodies: Vec<Vec<u8>> = (0..6)
        .map(|i| payload(200_000 + i * 1000, i as u64))
        .collect();
    for (i, b) in bodies.iter().enumerate() {
        srv.add(&format!("/f{i}"), Resource::new(b.clone()));
    }
    let d = Downloader::builder()
        .concurrent_downloads(3)
        .build()
        .unwrap();
    let mut events = d.events();
    let dir = temp_dir("batch");
    let mut requests: Vec<Request> = (0..6)
        .map(|i| Request::new(srv.url(&format!("/f{i}"))).dir(&dir))
        .collect();
    requests.push(Request::new(srv.url("/missing")).dir(&dir));
    let mut results = d.download_all(requests);
    let mut ended = Vec::new();
    while let Some((index, result)) = results.next().await {
        ended.push(index);
        match index {
            6 => {
                let e = result.unwrap_err();
                assert!(matches!(e, Error::Status { status: 404, .. }), "{e}");
                assert!(!e.is_transient());
            }
            i => {
                let o = result.unwrap();
                assert_eq!(o.bytes, bodies[i].len() as u64);
            }
        }
    }
    ended.sort();
    assert_eq!(ended, (0..7).collect::<Vec<_>>());
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(
            sha256(&std::fs::read(dir.join(format!("f{i}"))).unwrap()),
            sha256(b)
        );
    }
    // Every download ended with exactly one `Ended`, after a `Finished` or a `Failed`.
    drop(d);
    drop(results);
    let (mut finished, mut failed, mut last) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(e) = events.recv().await {
        match e {
            Event::Finished { id, .. } => finished.push(id),
            Event::Failed { id, .. } => failed.push(id),
            Event::Ended(end) => {
                assert!(finished.contains(&end.id) || failed.contains(&end.id));
                last.push(end.id);
            }
            _ => {}
        }
    }
    last.sort();
    assert_eq!(last, (0..7).collect::<Vec<_>>());
    assert_eq!(failed, vec![6]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_file_reads_only_what_is_asked_and_never_twice() {
    let srv = Server::start().await;
    let body = payload(16 * MIB, 9);
    srv.add("/r", Resource::new(body.clone()));
    let d = downloader();
    let mut f = d.open(&srv.url("/r")).await.unwrap();
    assert_eq!(f.len(), body.len() as u64);
    // Random seeks and reads, compared byte for byte.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut asked = 0u64;
    for _ in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = x % body.len() as u64;
        let len = (x >> 40) as usize % 20_000 + 1;
        f.seek(SeekFrom::Start(at)).await.unwrap();
        let mut buf = vec![0u8; len];
        let n = f.read(&mut buf).await.unwrap();
        assert!(n > 0);
        assert_eq!(&buf[..n], &body[at as usize..at as usize + n], "at {at}");
        asked += n as u64;
    }
    // A handful of 64 KiB blocks per read, not the file. (The server counts a piece once its
    // write returned, which can be just after the client has it: let it catch up.)
    let mut served = srv.body_bytes();
    for _ in 0..100 {
        if served == f.bytes_fetched() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        served = srv.body_bytes();
    }
    assert!(
        served < 60 * 3 * 65536,
        "served {served} for {asked} bytes read"
    );
    assert_eq!(served, f.bytes_fetched());
    // Reading the same place again costs nothing.
    f.seek(SeekFrom::Start(1000)).await.unwrap();
    let mut buf = [0u8; 500];
    f.read_exact(&mut buf).await.unwrap();
    let before = f.bytes_fetched();
    f.seek(SeekFrom::Start(1100)).await.unwrap();
    f.read_exact(&mut buf[..100]).await.unwrap();
    assert_eq!(&buf[..100], &body[1100..1200]);
    assert_eq!(
        f.bytes_fetched(),
        before,
        "a cached byte is not fetched again"
    );
    // Reading to the end sequentially gets it all, right.
    f.seek(SeekFrom::Start(0)).await.unwrap();
    let mut all = Vec::new();
    f.read_to_end(&mut all).await.unwrap();
    assert_eq!(sha256(&all), sha256(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_mid_read_is_an_error_never_mixed_bytes() {
    let srv = Server::start().await;
    srv.add("/r", Resource::new(payload(4 * MIB, 10)));
    let d = downloader();
    let mut f = d.open(&srv.url("/r")).await.unwrap();
    let mut buf = vec![0u8; 1000];
    f.read_exact(&mut buf).await.unwrap();
    srv.add("/r", Resource::new(payload(4 * MIB, 11)));
    f.seek(SeekFrom::Start(3 * MIB as u64)).await.unwrap();
    let err = f.read(&mut buf).await.unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::Changed { .. })), "{err}");
}

#[test]
fn the_blocking_adapter_serves_sync_readers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = payload(2 * MIB, 12);
    let (srv, file) = rt.block_on(async {
        let srv = Server::start().await;
        srv.add("/r", Resource::new(body.clone()));
        let file = downloader().open(&srv.url("/r")).await.unwrap();
        (srv, file)
    });
    let mut f = file.into_blocking(rt.handle().clone());
    f.seek(SeekFrom::End(-10)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, body[body.len() - 10..]);
    drop(srv);
}

/// The remote-zip example, run as a user would: a 64 MiB archive's names, then one member, each
/// for a small fraction of the archive's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_zip_example_fetches_a_small_fraction() {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut names = Vec::new();
    for i in 0..63 {
        let name = format!("data/part-{i:02}.bin");
        zip.start_file(name.as_str(), stored).unwrap();
        zip.write_all(&payload(MIB, 100 + i)).unwrap();
        names.push(name);
    }
    let text: Vec<u8> = (0..MIB).map(|i| b"fastdl "[i % 7]).collect();
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("notes.txt", deflated).unwrap();
    zip.write_all(&text).unwrap();
    names.push("notes.txt".into());
    let archive = zip.finish().unwrap().into_inner();
    assert!(archive.len() > 63 * MIB);

    let srv = Server::start().await;
    srv.add("/a.zip", Resource::new(archive.clone()));
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples/remote-zip"))
        .unwrap();
    assert!(
        example.exists(),
        "{} is missing: cargo test builds the examples",
        example.display()
    );
    let run = |args: Vec<String>| {
        let example = example.clone();
        async move {
            let out = tokio::process::Command::new(example)
                .args(args)
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{stderr}");
            out.stdout
        }
    };
    let listed = run(vec![srv.url("/a.zip")]).await;
    let listed: Vec<String> = String::from_utf8(listed)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, names);
    let after_list = srv.body_bytes();
    eprintln!(
        "remote-zip listing: {after_list} of {} bytes",
        archive.len()
    );
    assert!(
        after_list * 20 < archive.len() as u64,
        "listing fetched {after_list} of {} bytes",
        archive.len()
    );
    for (member, want) in [("notes.txt", text), ("data/part-40.bin", payload(MIB, 140))] {
        let before = srv.body_bytes();
        let got = run(vec![srv.url("/a.zip"), member.into()]).await;
        assert_eq!(sha256(&got), sha256(&want), "{member}");
        let cost = srv.body_bytes() - before;
        eprintln!("remote-zip {member}: {cost} of {} bytes", archive.len());
        assert!(
            cost * 20 < archive.len() as u64,
            "{member} fetched {cost} of {} bytes",
            archive.len()
        );
    }
}
