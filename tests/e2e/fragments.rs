//! `--fragments JOB.json`: HLS/DASH pieces, each to its own file or joined in order into one,
//! and `-o -` over several connections (the same ordered writer).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::server::{payload, Fault, Resource, Server, Shaping};
use crate::util::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Serves `n` fragments `/seg{i}` of different sizes; returns their bytes.
fn serve_segments(srv: &Server, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let body = payload(100 * KIB + i * 7919, i as u64);
            srv.add(&format!("/seg{i}"), Resource::new(body.clone()));
            body
        })
        .collect()
}

/// A joined job over `/seg0..` (plus `extra` pieces), written to `dir/job.json`.
fn joined_job(srv: &Server, dir: &TempDir, n: usize, extra: Vec<serde_json::Value>) {
    let mut fragments: Vec<_> = (0..n)
        .map(|i| json!({"url": srv.url(&format!("/seg{i}"))}))
        .collect();
    fragments.extend(extra);
    let job = json!({"version": 1, "output": "video.mp4", "fragments": fragments});
    std::fs::write(dir.path("job.json"), job.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_fragments_arrive_in_order_across_faults() {
    let srv = Server::start().await;
    let segs = serve_segments(&srv, 40);
    srv.update("/seg3", |r| r.faults = [Fault::CloseAfter(30_000)].into());
    // The retry of a half-sent piece is answered with the whole piece: its start is skipped.
    srv.update("/seg7", |r| {
        r.faults = [Fault::ResetAfter(50_000), Fault::IgnoreRange].into()
    });
    srv.update("/seg11", |r| {
        r.faults = [Fault::Status(503, Some("0".into()))].into()
    });
    // Byte ranges of one resource (EXT-X-BYTERANGE, DASH SegmentBase), the first one faulty.
    let whole = payload(3 * MIB, 99);
    let mut res = Resource::new(whole.clone());
    res.faults = [Fault::StallAfter(10_000)].into();
    srv.add("/all.mp4", res);
    let ranges = [(0, 1000), (1000, 2 * MIB), (2 * MIB, 3 * MIB)];
    let extra = ranges
        .iter()
        .map(|(s, e)| json!({"url": srv.url("/all.mp4"), "byte_range": {"start": s, "end": e}}))
        .collect();
    let dir = TempDir::new();
    joined_job(&srv, &dir, 40, extra);
    let r = fastdl(
        &dir.0,
        &[
            "--fragments",
            "job.json",
            "--concurrent-fragments",
            "8",
            "--retry-delay",
            "10ms",
            "--timeout",
            "500ms",
            "--progress",
            "json",
        ],
    )
    .await;
    assert_ok(&r);
    let mut want: Vec<u8> = segs.concat();
    want.extend_from_slice(&whole);
    assert_eq!(sha256_file(&dir.path("video.mp4")), sha256(&want));
    assert_eq!(
        dir.files(),
        ["job.json", "video.mp4"],
        "no pieces or state left"
    );
    // One download with fragment progress: (frag i/n) for yt-dlp.
    let last = r
        .stderr
        .lines()
        .rfind(|l| l.contains(r#""event":"progress""#))
        .expect("progress events");
    let p: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(p["fragment_count"], 43);
    assert_eq!(p["fragment_index"], 43);
    assert_eq!(p["downloaded_bytes"], want.len());
    // A `fragment` event per piece, in order, with its size.
    let frags: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter(|l| l.contains(r#""event":"fragment""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frags.len(), 43);
    for (i, f) in frags.iter().enumerate() {
        assert_eq!(
            (f["index"].as_u64(), f["status"].as_str()),
            (Some(i as u64), Some("done"))
        );
    }
    assert_eq!(frags[3]["bytes"], segs[3].len());
    let seen = srv.seen();
    let retry = seen.iter().filter(|s| s.path == "/seg3").nth(1).unwrap();
    assert_eq!(retry.range.as_deref(), Some("bytes=30000-"), "{seen:?}");
    assert!(retry.if_range.is_some(), "the retry is guarded by If-Range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_fragment_is_skipped_or_fails_the_job() {
    let srv = Server::start().await;
    let segs = serve_segments(&srv, 6);
    srv.update("/seg2", |r| r.faults = [Fault::Status(404, None)].into());
    let dir = TempDir::new();
    joined_job(&srv, &dir, 6, vec![]);
    let r = fastdl(&dir.0, &["--fragments", "job.json"]).await;
    assert_ok(&r);
    assert!(r.stderr.contains("skipping fragment 2"), "{}", r.stderr);
    let want: Vec<u8> = [&segs[..2], &segs[3..]].concat().concat();
    assert_eq!(sha256_file(&dir.path("video.mp4")), sha256(&want));

    let dir = TempDir::new();
    srv.update("/seg2", |r| r.faults = [Fault::Status(404, None)].into());
    joined_job(&srv, &dir, 6, vec![]);
    let r = fastdl(
        &dir.0,
        &["--fragments", "job.json", "--abort-on-unavailable-fragment"],
    )
    .await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("404"), "{}", r.stderr);
    assert!(!dir.path("video.mp4").exists(), "no final file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_join_resumes_after_its_last_saved_fragment() {
    let srv = Server::start().await;
    let segs = serve_segments(&srv, 30);
    let dir = TempDir::new();
    joined_job(&srv, &dir, 30, vec![]);
    srv.cap(MIB as u64);
    let child = command(
        &dir.0,
        &["--fragments", "job.json", "--concurrent-fragments", "2"],
    )
    .spawn()
    .unwrap();
    // Interrupt once a few fragments are recorded as saved (however loaded the machine is).
    let state = dir.path("video.mp4.part.fastdl");
    let saved = || -> u64 {
        let state = std::fs::read(&state).unwrap_or_default();
        let state: serde_json::Value = serde_json::from_slice(&state).unwrap_or_default();
        state["done"].as_u64().unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while saved() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(interrupt(child, "-INT").await, 130);
    srv.shape(Shaping::default());
    assert!(!dir.path("video.mp4").exists());
    let state = std::fs::read_to_string(dir.path("video.mp4.part.fastdl")).expect("state saved");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let saved = state["done"].as_u64().unwrap() as usize;
    assert!(saved > 0, "the first run saved some fragments: {state}");
    let r = fastdl(&dir.0, &["--fragments", "job.json", "-H", RERUN]).await;
    assert_ok(&r);
    assert!(r.stderr.contains("resuming at piece"), "{}", r.stderr);
    assert_eq!(sha256_file(&dir.path("video.mp4")), sha256(&segs.concat()));
    // The fragments the state calls saved are not fetched again.
    let rerun: Vec<String> = srv
        .seen()
        .into_iter()
        .filter(is_rerun)
        .map(|s| s.path)
        .collect();
    for i in 0..saved {
        let path = format!("/seg{i}");
        assert!(
            !rerun.contains(&path),
            "{path} was saved, yet fetched again"
        );
    }
    assert_eq!(rerun.len(), segs.len() - saved, "{rerun:?}");
    // Complete: a third run fetches nothing.
    let before = srv.seen().len();
    assert_ok(&fastdl(&dir.0, &["--fragments", "job.json"]).await);
    assert_eq!(srv.seen().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_pieces_go_to_their_own_files() {
    let srv = Server::start().await;
    let segs = serve_segments(&srv, 3);
    let dir = TempDir::new();
    let fragments: Vec<_> = (0..3)
        .map(|i| json!({"url": srv.url(&format!("/seg{i}")), "out": format!("v.part-Frag{i}")}))
        .collect();
    let job = json!({"version": 1, "fragments": fragments});
    std::fs::write(dir.path("job.json"), job.to_string()).unwrap();
    let r = fastdl(&dir.0, &["--fragments", "job.json"]).await;
    assert_ok(&r);
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(
            sha256_file(&dir.path(&format!("v.part-Frag{i}"))),
            sha256(seg)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_over_several_connections_keeps_order() {
    let srv = Server::start().await;
    let body = payload(19 * MIB + 12345, 5);
    let mut res = Resource::new(body.clone());
    // The probe, then a piece cut off after 1 MiB and retried from its last byte.
    res.faults = [Fault::None, Fault::CloseAfter(MIB as u64)].into();
    srv.add("/f", res);
    let dir = TempDir::new();
    let r = fastdl(
        &dir.0,
        &[
            "-q",
            "-x",
            "4",
            "--retry-delay",
            "10ms",
            "-o",
            "-",
            &srv.url("/f"),
        ],
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256(&r.stdout_raw), sha256(&body));
    assert!(dir.files().is_empty(), "nothing written to disk");
    let seen = srv.seen();
    let conns: std::collections::HashSet<u64> = seen.iter().map(|s| s.connection).collect();
    assert!(conns.len() >= 4, "{} connections", conns.len());
    let starts = seen.iter().filter_map(|s| {
        let r = s.range.as_deref()?.strip_prefix("bytes=")?;
        r.split('-').next()?.parse::<usize>().ok()
    });
    assert!(
        starts.into_iter().any(|s| s % (4 * MIB) == MIB),
        "the cut piece asked for its rest: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_json_formats_are_downloaded_with_their_headers() {
    let srv = Server::start().await;
    let segs = serve_segments(&srv, 5);
    let video = payload(2 * MIB, 77);
    srv.add("/v.mp4", Resource::new(video.clone()));
    let info = json!({
        "id": "abc", "title": "My/Video", "ext": "mp4",
        "http_headers": {"X-Token": "t1"},
        "requested_formats": [
            {"format_id": "137", "ext": "mp4", "protocol": "https", "url": srv.url("/v.mp4")},
            {"format_id": "140", "ext": "m4a", "protocol": "http_dash_segments",
             "fragment_base_url": srv.url("/"),
             "fragments": (0..5).map(|i| json!({"path": format!("seg{i}")})).collect::<Vec<_>>()}
        ]
    });
    let dir = TempDir::new();
    let r = fastdl_with(
        &dir.0,
        &["-q", "--info-json", "-", "-d", "out"],
        &[],
        Some(info.to_string().as_bytes()),
    )
    .await;
    assert_ok(&r);
    let out = TempDir(dir.path("out"));
    assert_eq!(
        out.files(),
        ["My_Video [abc].f137.mp4", "My_Video [abc].f140.m4a"]
    );
    assert_eq!(
        sha256_file(&out.path("My_Video [abc].f137.mp4")),
        sha256(&video)
    );
    assert_eq!(
        sha256_file(&out.path("My_Video [abc].f140.m4a")),
        sha256(&segs.concat())
    );
    assert!(srv.seen().iter().all(|s| s.header("X-Token") == Some("t1")));
    std::mem::forget(out); // removed with `dir`

    let r = fastdl_with(
        &dir.0,
        &["--info-json", "-", "--cookies", "-"],
        &[],
        Some(b"{}"),
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot all read standard input"),
        "{}",
        r.stderr
    );
}
