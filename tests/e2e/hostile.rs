//! Replies that break HTTP's rules in ways that would corrupt a file if believed: bodies
//! compressed although fastdl asked for `identity`, chunked bodies longer than their
//! `Content-Range`.

use std::sync::Arc;
use std::time::Duration;

use crate::server::{payload, Fault, Hostile, Resource, Server};
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

/// What one run against a hostile resource may end with (see `a_hostile_server_*`).
async fn run_bounded(dir: &std::path::Path, args: &[String], bound: Duration) -> Option<Run> {
    use tokio::io::AsyncReadExt;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = command(dir, &args).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let ended = tokio::time::timeout(bound, async {
        let _ = tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr));
        child.wait().await.unwrap()
    })
    .await
    .ok()?;
    Some(Run {
        code: ended.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stdout_raw: stdout,
    })
}

/// A seed's settings: (body size, -x, -k, --http-chunk-size).
fn settings(seed: u64) -> (usize, &'static str, &'static str, Option<&'static str>) {
    let mut x = seed.wrapping_mul(0x2545F4914F6CDD1D) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let size = [0, 1, 1000, 300_000, MIB + 17, 3 * MIB][next() as usize % 6];
    let conns = ["1", "2", "4", "8"][next() as usize % 4];
    let split = ["64K", "256K", "1M"][next() as usize % 3];
    let chunk = [None, None, Some("200K")][next() as usize % 3];
    (size, conns, split, chunk)
}

/// A server that misbehaves at random on every reply ([`Hostile`]), fastdl with random settings,
/// over many seeds (`FASTDL_HOSTILE_SEEDS`, default 24; `FASTDL_HOSTILE_FIRST_SEED`, default 1;
/// `integration/soak.sh` runs thousands). Only invariants are checked: exit 0 means the output is
/// exactly one whole version of the resource; any other exit is a documented code, leaves no
/// file at the final path, says one error line and no panic; no run outlives its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_never_gets_a_wrong_file() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (first, count) = (
        env("FASTDL_HOSTILE_FIRST_SEED", 1),
        env("FASTDL_HOSTILE_SEEDS", 24),
    );
    let srv = Arc::new(Server::start().await);
    let limit = Arc::new(tokio::sync::Semaphore::new(6));
    let mut runs = tokio::task::JoinSet::new();
    for seed in first..first + count {
        let (srv, limit) = (Arc::clone(&srv), Arc::clone(&limit));
        runs.spawn(async move {
            let _turn = limit.acquire().await.unwrap();
            let (size, conns, split, chunk) = settings(seed);
            let (v1, v2) = (payload(size, seed), payload(size, seed ^ 0xFFFF));
            let mut res = Resource::new(v1.clone());
            res.hostile = Some(Hostile::new(seed, Some(v2.clone())));
            let path = format!("/h{seed}.bin");
            srv.add(&path, res);
            let dir = TempDir::new();
            let mut args: Vec<String> = [
                "-o",
                "out",
                "--timeout",
                "1s",
                "--connect-timeout",
                "2s",
                "--retries",
                "6",
                "--retry-delay",
                "5ms",
                "--max-retry-delay",
                "100ms",
                "-x",
                conns,
                "-k",
                split,
            ]
            .map(String::from)
            .into();
            if let Some(c) = chunk {
                args.extend(["--http-chunk-size".into(), c.into()]);
            }
            args.push(srv.url(&path));
            let what = format!("seed {seed} ({size} bytes, {args:?})");
            let Some(r) = run_bounded(&dir.0, &args, Duration::from_secs(45)).await else {
                panic!("{what}: still running after 45 s");
            };
            assert!(
                !r.stderr.contains("panicked"),
                "{what}: a panic:\n{}",
                r.stderr
            );
            let out = dir.path("out");
            if r.code == 0 {
                let got = sha256_file(&out);
                assert!(
                    got == sha256(&v1) || got == sha256(&v2),
                    "{what}: exit 0 with a wrong file:\n{}",
                    r.stderr
                );
            } else {
                assert!(
                    [1, 5].contains(&r.code),
                    "{what}: exit {}:\n{}",
                    r.code,
                    r.stderr
                );
                assert!(
                    !out.exists(),
                    "{what}: exit {} left a file:\n{}",
                    r.code,
                    r.stderr
                );
                let errors = r
                    .stderr
                    .lines()
                    .filter(|l| l.starts_with("fastdl: error:"))
                    .count();
                assert_eq!(
                    errors, 1,
                    "{what}: exit {}, one error line:\n{}",
                    r.code, r.stderr
                );
            }
            r.code
        });
    }
    let mut codes = std::collections::BTreeMap::new();
    while let Some(code) = runs.join_next().await {
        *codes.entry(code.unwrap()).or_insert(0) += 1;
    }
    eprintln!(
        "hostile seeds {first}..{}: exit codes {codes:?}",
        first + count
    );
    assert!(
        codes.get(&0).copied().unwrap_or(0) * 2 >= count as usize,
        "most runs should succeed: {codes:?}"
    );
}

/// The same in one batch: 20 hostile resources, a dead host and a flapping one (every other
/// request a 503). Every file that ends done is right, every one that does not is named in the
/// summary, and the run's exit code says whether any failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_batch_keeps_every_good_file_and_names_every_bad_one() {
    let srv = Server::start().await;
    let flapping = Server::start().await;
    let mut list = String::new();
    let mut versions = std::collections::HashMap::new();
    for seed in 1000..1020u64 {
        let (size, ..) = settings(seed);
        let (v1, v2) = (payload(size, seed), payload(size, seed ^ 0xFFFF));
        let mut res = Resource::new(v1.clone());
        res.hostile = Some(Hostile::new(seed, Some(v2.clone())));
        srv.add(&format!("/b{seed}"), res);
        list.push_str(&format!("{}\n", srv.url(&format!("/b{seed}"))));
        versions.insert(format!("b{seed}"), [sha256(&v1), sha256(&v2)]);
    }
    let body = payload(500_000, 2000);
    let mut flap = Resource::new(body.clone());
    flap.faults = (0..40)
        .map(|i| match i % 2 {
            0 => Fault::Status(503, Some("0".into())),
            _ => Fault::None,
        })
        .collect();
    flapping.add("/flap", flap);
    list.push_str(&format!("{}\n", flapping.url("/flap")));
    versions.insert("flap".into(), [sha256(&body), sha256(&body)]);
    list.push_str("http://127.0.0.1:1/dead\n");
    let dir = TempDir::new();
    std::fs::write(dir.path("list.txt"), list).unwrap();
    let args: Vec<String> = [
        "-i",
        "list.txt",
        "-d",
        "out",
        "--timeout",
        "1s",
        "--connect-timeout",
        "1s",
        "--retries",
        "6",
        "--retry-delay",
        "5ms",
        "--max-retry-delay",
        "100ms",
        "-j",
        "8",
    ]
    .map(String::from)
    .into();
    let r = run_bounded(&dir.0, &args, Duration::from_secs(60))
        .await
        .expect("the batch ended within 60 s");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let summary = r
        .stderr
        .lines()
        .find(|l| l.starts_with("Summary: "))
        .unwrap_or_else(|| panic!("no summary:\n{}", r.stderr));
    let mut failed = 0;
    for (name, shas) in &versions {
        let path = dir.path("out").join(name);
        match path.exists() {
            true => assert!(
                shas.contains(&sha256_file(&path)),
                "{name} is wrong:\n{}",
                r.stderr
            ),
            false => {
                failed += 1;
                assert!(
                    r.stderr.contains(&format!(
                        "failed: http://127.0.0.1:{}/{name}",
                        srv.addr.port()
                    )) || r
                        .stderr
                        .contains(&format!("failed: {}", flapping.url(&format!("/{name}")))),
                    "{name} is not named in the summary:\n{}",
                    r.stderr
                );
            }
        }
    }
    assert!(
        dir.path("flap").exists() || dir.path("out/flap").exists(),
        "the flapping host got through:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("failed: http://127.0.0.1:1/dead"),
        "{}",
        r.stderr
    );
    assert!(
        summary.contains(&format!("{} failed", failed + 1)),
        "{summary}"
    );
    assert_eq!(
        r.code, 8,
        "bad entries failed, good ones done: {}",
        r.stderr
    );
}
