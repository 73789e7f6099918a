//! Interrupted downloads resume, fetching only what is missing, and never mix two versions.

use std::time::Duration;

use crate::server::{payload, Fault, Resource, Server, Shaping};
use crate::util::*;

const MIB: usize = 1 << 20;

/// Starts a throttled download and stops it mid-way with `signal`.
async fn interrupted(srv: &Server, dir: &TempDir, signal: &str) -> i32 {
    srv.shape(Shaping {
        rate_per_connection: Some(MIB as u64),
        ..Shaping::default()
    });
    let child = command(
        &dir.0,
        &["-x", "4", "-k", "256K", "-o", "f", &srv.url("/f")],
    )
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
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
    let first_run = srv.body_bytes();
    let requests_before = srv.seen().len();
    let r = fastdl(
        &dir.0,
        &["-x", "4", "-k", "256K", "-o", "f", &srv.url("/f")],
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let second_run = srv.body_bytes() - first_run;
    // About 4 MiB/s for 2.3 s were on disk; the rerun must not fetch them again.
    assert!(
        second_run < body.len() as u64 - 4 * MIB as u64,
        "second run fetched {second_run} bytes; state was {state}"
    );
    let resumed = &srv.seen()[requests_before];
    assert!(resumed.if_range.is_some(), "resume probe carries If-Range");
    assert_ne!(resumed.range.as_deref(), Some("bytes=0-"));
    assert!(r.stderr.contains("Resuming"), "{}", r.stderr);
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
    let sent = srv.body_bytes();
    assert_ok(&fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert!(srv.body_bytes() - sent < body.len() as u64);
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
    srv.shape(Shaping {
        rate_per_connection: Some(2 * MIB as u64),
        ..Shaping::default()
    });
    let dir = TempDir::new();
    let args = ["-x", "4", "-k", "256K", "--timeout", "1500ms", "-o", "f"];
    let url = srv.url("/f");
    let child = command(&dir.0, &[&args[..], &[url.as_str()]].concat())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
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
    let before = srv.seen().len();
    assert_ok(&fastdl(&dir.0, &["--no-continue", "-o", "f", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert_eq!(srv.seen()[before].range.as_deref(), Some("bytes=0-"));
    assert_eq!(srv.seen()[before].if_range, None);
}
