//! The `-i` list is read as it downloads: from standard input, entries start while the
//! producer is still writing; a bad line there ends the run after the entries before it; an
//! interrupted run saves the entries it never started.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::server::{payload, Resource, Server};
use crate::util::*;

/// Waits (at most 20 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_from_a_slow_producer_start_before_the_list_ends() {
    let srv = Server::start().await;
    for i in 0..4 {
        srv.add(&format!("/f{i}"), Resource::new(payload(10_000, i)));
    }
    let dir = TempDir::new();
    let mut child = command(&dir.0, &["-i", "-", "-d", "out"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // An entry is complete once the next one begins: two lines let the first start.
    let line = |i: usize| format!("{}\n", srv.url(&format!("/f{i}")));
    stdin
        .write_all(format!("{}{}", line(0), line(1)).as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let first = dir.path("out/f0");
    until("the first entry, while the list is still open", || {
        first.exists()
    })
    .await;
    stdin
        .write_all(format!("{}{}", line(2), line(3)).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ends once the list does")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for i in 0..4 {
        assert_eq!(
            sha256_file(&dir.path(&format!("out/f{i}"))),
            sha256(&payload(10_000, i as u64))
        );
    }
    assert!(stderr.contains("Summary: 4 done"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_on_stdin_ends_the_run_after_the_entries_before_it() {
    let srv = Server::start().await;
    srv.add("/a", Resource::new(payload(1000, 1)));
    srv.add("/b", Resource::new(payload(1000, 2)));
    let dir = TempDir::new();
    let list = format!(
        "{}\n{}\n  on-download-complete=rm -rf ~\n{}\n",
        srv.url("/a"),
        srv.url("/b"),
        srv.url("/a"),
    );
    let r = fastdl_with(&dir.0, &["-i", "-"], &[], Some(list.as_bytes())).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("fastdl: error: stdin:3: unknown option \"on-download-complete\""),
        "{}",
        r.stderr
    );
    assert!(dir.path("a").exists(), "the entry before the bad one ran");
    assert!(!dir.path("b").exists(), "the bad line's entry did not");
    // Two entries writing one file on stdin: the second is refused when it comes.
    let list = format!("{}\n{}\n", srv.url("/a"), srv.url("/a"));
    let r = fastdl_with(&dir.0, &["-i", "-", "-d", "d2"], &[], Some(list.as_bytes())).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("stdin:2: writes d2/a, like an earlier entry; give one of them out="),
        "{}",
        r.stderr
    );
    // Nothing on stdin: no URL.
    let r = fastdl_with(&dir.0, &["-i", "-"], &[], Some(b"# empty\n")).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("fastdl: error: the input list has no URL"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_saves_what_it_never_started() {
    let srv = Server::start().await;
    let mut list = String::new();
    for i in 0..20 {
        srv.add(&format!("/f{i}"), Resource::new(payload(200_000, i)));
        list.push_str(&format!("{}\n  out=n{i}.bin\n", srv.url(&format!("/f{i}"))));
    }
    let dir = TempDir::new();
    std::fs::write(dir.path("urls.txt"), &list).unwrap();
    srv.cap(50_000);
    let child = command(
        &dir.0,
        &["-i", "urls.txt", "-j", "1", "--save-failed", "failed.txt"],
    )
    .spawn()
    .unwrap();
    until("the first file's first bytes", || srv.body_bytes() > 0).await;
    assert_eq!(interrupt(child, "-INT").await, 130);
    let saved = std::fs::read_to_string(dir.path("failed.txt")).unwrap();
    let saved_entries = saved.lines().filter(|l| l.starts_with("http")).count();
    let done = (0..20)
        .filter(|i| dir.path(&format!("n{i}.bin")).exists())
        .count();
    assert_eq!(done + saved_entries, 20, "{saved}");
    assert!(saved_entries >= 19, "the running one and the rest: {saved}");
    srv.shape(Default::default());
    let r = fastdl(&dir.0, &["-i", "failed.txt", "--save-failed", "failed.txt"]).await;
    assert_ok(&r);
    for i in 0..20 {
        assert_eq!(
            sha256_file(&dir.path(&format!("n{i}.bin"))),
            sha256(&payload(200_000, i as u64))
        );
    }
    assert!(!dir.path("failed.txt").exists());
}

/// Ctrl-C with a list on standard input whose producer has not finished: fastdl stops at once,
/// without waiting for the rest of the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_does_not_wait_for_the_rest_of_stdin() {
    let srv = Server::start().await;
    srv.add("/a", Resource::new(payload(2_000_000, 1)));
    srv.add("/b", Resource::new(payload(2_000_000, 2)));
    srv.cap(100_000);
    let dir = TempDir::new();
    let mut child = command(&dir.0, &["-i", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = format!("{}\n{}\n", srv.url("/a"), srv.url("/b"));
    stdin.write_all(lines.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    until("the first entry's first bytes", || srv.body_bytes() > 0).await;
    // The producer is still there (stdin open): interrupt() fails the test after 10 s.
    assert_eq!(interrupt(child, "-INT").await, 130);
    drop(stdin);
    assert!(
        dir.path("a.part").exists(),
        "progress kept for the next run"
    );
}
