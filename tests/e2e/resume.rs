//! Interrupted downloads resume, fetching only what is missing, and never mix two versions.

use std::time::{Duration, Instant};

use crate::server::{payload, Fault, Resource, Seen, Server, Shaping};
use crate::util::*;

const MIB: usize = 1 << 20;

/// Starts a throttled download and stops it with `signal` once its state file records 4 MiB
/// on disk (however loaded the machine is).
async fn interrupted(srv: &Server, dir: &TempDir, signal: &str) -> i32 {
    srv.cap(MIB as u64);
    let child = command(
        &dir.0,
        &["-x", "4", "-k", "256K", "-o", "f", &srv.url("/f")],
    )
    .spawn()
    .unwrap();
    let state = dir.path("f.part.fastdl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while saved_bytes(&state) < 4 * MIB as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = interrupt(child, signal).await;
    srv.shape(Shaping::default());
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_rerun_fetches_only_what_is_missing() {
    let srv = Server::start().await;
    let body = payload(16 * MIB, 20);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    interrupted(&srv, &dir, "-KILL").await;
    let state =
        std::fs::read_to_string(dir.path("f.part.fastdl")).expect("state saved before the kill");
    let url = srv.url("/f");
    let r = fastdl(
        &dir.0,
        &["-x", "4", "-k", "256K", "-H", RERUN, "-o", "f", &url],
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let rerun: Vec<Seen> = srv.seen().into_iter().filter(is_rerun).collect();
    asks_only_for_gaps(&rerun, &state, body.len() as u64);
    assert!(rerun[0].if_range.is_some(), "resume probe carries If-Range");
    assert!(r.stderr.contains("Resuming"), "{}", r.stderr);
}

/// Asserts that no request of a rerun asks again for bytes the resume `state` (the JSON of
/// `FILE.part.fastdl`) has on disk. Byte counts cannot say this: a connection cut short by a
/// steal leaves bytes in flight that the server counts as sent.
fn asks_only_for_gaps(rerun: &[Seen], state: &str, size: u64) {
    let state: serde_json::Value = serde_json::from_str(state).unwrap();
    let done: Vec<(u64, u64)> = state["done"]
        .as_array()
        .expect("done is a list")
        .iter()
        .map(|r| (r["start"].as_u64().unwrap(), r["end"].as_u64().unwrap()))
        .collect();
    assert!(
        !done.is_empty(),
        "the first run saved some progress: {state}"
    );
    assert!(
        !rerun.is_empty(),
        "the rerun's requests carry the RERUN header"
    );
    for seen in rerun {
        let asked = asked_range(seen.range.as_deref(), size);
        for &(start, end) in &done {
            assert!(
                asked.1 <= start || asked.0 >= end,
                "rerun asked for {:?}, which overlaps {start}..{end} already on disk",
                seen.range
            );
        }
    }
}

/// The byte range a `Range` header asks for, as `(start, end)` with `end` exclusive.
fn asked_range(header: Option<&str>, size: u64) -> (u64, u64) {
    let Some(spec) = header.and_then(|h| h.strip_prefix("bytes=")) else {
        return (0, size);
    };
    let (start, end) = spec.split_once('-').expect("a byte range");
    let end = match end {
        "" => size,
        end => end.parse::<u64>().unwrap() + 1,
    };
    (start.parse().unwrap(), end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_saves_state_and_exits_130() {
    let srv = Server::start().await;
    let body = payload(16 * MIB, 21);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    let code = interrupted(&srv, &dir, "-INT").await;
    assert_eq!(code, 130);
    assert!(dir.path("f.part").exists() && dir.path("f.part.fastdl").exists());
    assert!(
        !dir.path("f").exists(),
        "no final file from an interrupted run"
    );
    let state = std::fs::read_to_string(dir.path("f.part.fastdl")).unwrap();
    assert_ok(&fastdl(&dir.0, &["-H", RERUN, "-o", "f", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let rerun: Vec<Seen> = srv.seen().into_iter().filter(is_rerun).collect();
    asks_only_for_gaps(&rerun, &state, body.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changed_between_runs_starts_over() {
    let srv = Server::start().await;
    let old = payload(16 * MIB, 22);
    srv.add("/f", Resource::new(old));
    let dir = TempDir::new();
    interrupted(&srv, &dir, "-KILL").await;
    // Same size, new content and ETag: exactly the case where aria2c, curl and wget corrupt.
    let new = payload(16 * MIB, 23);
    srv.add("/f", Resource::new(new.clone()));
    let r = fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&new));
    assert!(r.stderr.contains("starting over"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changed_during_download_is_never_mixed() {
    let srv = Server::start().await;
    let old = payload(8 * MIB, 24);
    let mut res = Resource::new(old);
    // One connection stalls, so its retry is certain to ask after the change.
    res.faults = [Fault::None, Fault::None, Fault::StallAfter(MIB as u64)].into();
    srv.add("/f", res);
    srv.cap(2 * MIB as u64);
    let dir = TempDir::new();
    let args = ["-x", "4", "-k", "256K", "--timeout", "1500ms", "-o", "f"];
    let url = srv.url("/f");
    let child = command(&dir.0, &[&args[..], &[url.as_str()]].concat())
        .spawn()
        .unwrap();
    // Change the file once the stalling connection has started (its retry comes after).
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.seen().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new = payload(8 * MIB, 25);
    srv.add("/f", Resource::new(new.clone()));
    srv.shape(Shaping::default());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        sha256_file(&dir.path("f")),
        sha256(&new),
        "old and new bytes mixed"
    );
    assert!(stderr.contains("changed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_continue_starts_fresh() {
    let srv = Server::start().await;
    let body = payload(16 * MIB, 26);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    interrupted(&srv, &dir, "-KILL").await;
    let url = srv.url("/f");
    assert_ok(&fastdl(&dir.0, &["--no-continue", "-H", RERUN, "-o", "f", &url]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let rerun: Vec<Seen> = srv.seen().into_iter().filter(is_rerun).collect();
    assert_eq!(rerun[0].range.as_deref(), Some("bytes=0-"));
    assert_eq!(rerun[0].if_range, None);
}
