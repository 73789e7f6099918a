//! Replies that break HTTP's rules in ways that would corrupt a file if believed: bodies
//! compressed although fastdl asked for `identity`, chunked bodies longer than their
//! `Content-Range`.

use crate::server::{payload, Fault, Resource, Server};
use crate::util::*;

const MIB: usize = 1 << 20;

/// A 206 whose chunked body carries junk past the end its `Content-Range` announces: none of it
/// may reach the file (it used to be written and counted, shifting the next request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_range_reply_longer_than_announced_never_reaches_the_file() {
    for extra in [1, 3, 70_000] {
        let srv = Server::start().await;
        let body = payload(4 * MIB, 40 + extra);
        let mut res = Resource::new(body.clone());
        res.chunked = true;
        res.faults = std::iter::repeat_n(Fault::ExtraBytes(extra), 6).collect();
        srv.add("/f", res);
        let dir = TempDir::new();
        let r = fastdl(&dir.0, &four_connections(&["-o", "f", &srv.url("/f")])).await;
        assert_ok(&r);
        assert_eq!(
            sha256_file(&dir.path("f")),
            sha256(&body),
            "{extra} extra bytes"
        );
    }
}

/// The same with `--http-chunk-size`, where a claim goes on past each reply's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_overflow_with_http_chunk_size() {
    let srv = Server::start().await;
    let body = payload(3 * MIB, 44);
    let mut res = Resource::new(body.clone());
    res.chunked = true;
    res.faults = std::iter::repeat_n(Fault::ExtraBytes(2), 40).collect();
    srv.add("/f", res);
    let dir = TempDir::new();
    let url = srv.url("/f");
    let args = four_connections(&["--http-chunk-size", "256K", "-o", "f", &url]);
    let r = fastdl(&dir.0, &args).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}

/// `Content-Encoding: gzip` on every reply although fastdl asked for `identity`: the ranges are
/// refused, and the whole file, decoded, is what lands on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_replies_are_decoded_never_saved_as_the_file() {
    for chunked in [false, true] {
        let srv = Server::start().await;
        let body = payload(2 * MIB, 45);
        let mut res = Resource::new(body.clone());
        res.faults = std::iter::repeat_n(Fault::Gzip, 20).collect();
        res.chunked = chunked;
        srv.add("/data.bin", res);
        let dir = TempDir::new();
        let r = fastdl(
            &dir.0,
            &four_connections(&["-o", "out", &srv.url("/data.bin")]),
        )
        .await;
        assert_ok(&r);
        assert_eq!(
            sha256_file(&dir.path("out")),
            sha256(&body),
            "chunked: {chunked}"
        );
        assert_eq!(dir.files(), vec!["out"]);
    }
}

/// Only the extra connections' 206s are compressed (and chunked, so no `Content-Length` gives
/// them away): those are refused, never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_on_an_extra_connection_is_refused() {
    let srv = Server::start().await;
    let body = payload(4 * MIB, 46);
    let mut res = Resource::new(body.clone());
    res.chunked = true;
    res.faults = std::iter::once(Fault::None)
        .chain(std::iter::repeat_n(Fault::Gzip, 3))
        .collect();
    srv.add("/f", res);
    let dir = TempDir::new();
    let r = fastdl(
        &dir.0,
        &four_connections(&["-v", "-o", "f", &srv.url("/f")]),
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert!(
        r.stderr.contains("compressed (Content-Encoding: gzip)"),
        "{}",
        r.stderr
    );
}

/// A `.gz` file stored compressed and served with `Content-Encoding: gzip` (Apache's
/// `AddEncoding`): the encoding describes the file itself, which is saved as stored, as
/// browsers do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gz_file_served_with_its_own_encoding_is_kept_as_stored() {
    let srv = Server::start().await;
    let body = payload(3 * MIB, 47);
    let mut res = Resource::new(body.clone());
    res.headers.push(("Content-Encoding".into(), "gzip".into()));
    res.headers
        .push(("Content-Type".into(), "application/gzip".into()));
    srv.add("/archive.tar.gz", res);
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &four_connections(&[&srv.url("/archive.tar.gz")])).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("archive.tar.gz")), sha256(&body));
    let ranged = srv.seen().iter().filter(|s| s.status == 206).count();
    assert!(
        ranged >= 2,
        "still downloaded over several ranges ({ranged})"
    );
}

/// HLS/DASH pieces joined in order: a compressed piece is decoded, a compressed byte range of a
/// piece is refused and fetched again, a piece whose chunked body runs past its range loses the
/// extra bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_pieces_are_decoded_and_bounded() {
    let srv = Server::start().await;
    let (a, b) = (payload(300_000, 48), payload(2 * MIB, 49));
    let mut ra = Resource::new(a.clone());
    ra.faults = [Fault::Gzip].into();
    srv.add("/a.ts", ra);
    let mut rb = Resource::new(b.clone());
    rb.chunked = true;
    rb.faults = [Fault::Gzip, Fault::ExtraBytes(5), Fault::ExtraBytes(5)].into();
    srv.add("/b.mp4", rb);
    let mib = MIB as u64;
    let fragments = serde_json::json!([
        {"url": srv.url("/a.ts")},
        {"url": srv.url("/b.mp4"), "byte_range": {"start": 0, "end": mib}},
        {"url": srv.url("/b.mp4"), "byte_range": {"start": mib, "end": 2 * mib}},
    ]);
    let job = serde_json::json!({"version": 1, "output": "v.mp4", "fragments": fragments});
    let dir = TempDir::new();
    std::fs::write(dir.path("job.json"), job.to_string()).unwrap();
    let r = fastdl(
        &dir.0,
        &[
            "-v",
            "--fragments",
            "job.json",
            "--concurrent-fragments",
            "1",
        ],
    )
    .await;
    assert_ok(&r);
    let want: Vec<u8> = [a, b].concat();
    assert_eq!(
        sha256_file(&dir.path("v.mp4")),
        sha256(&want),
        "{}",
        r.stderr
    );
}
