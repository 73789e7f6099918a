//! The finished file is checked before it gets its final name.

use crate::server::{payload, Resource, Server};
use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_match_and_mismatch() {
    let srv = Server::start().await;
    let body = payload(3 << 20, 30);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    let good = format!("sha-256={}", sha256(&body));
    assert_ok(&fastdl(&dir.0, &["--checksum", &good, "-o", "ok", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("ok")), sha256(&body));

    let bad = format!("sha-256={}", "0".repeat(64));
    let r = fastdl(&dir.0, &["--checksum", &bad, "-o", "bad", &srv.url("/f")]).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("sha-256 mismatch"), "{}", r.stderr);
    assert_eq!(dir.files(), vec!["ok"], "no final file, no .part, no state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_digest_is_verified() {
    let srv = Server::start().await;
    let body = payload(100_000, 31);
    let mut wrong = Resource::new(body.clone());
    // sha-256 of "abc", not of the body.
    wrong.headers.push((
        "Repr-Digest".into(),
        "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:".into(),
    ));
    srv.add("/wrong", wrong);
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &["-o", "w", &srv.url("/wrong")]).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("Repr-Digest"), "{}", r.stderr);
    assert!(dir.files().is_empty());

    use base64::Engine;
    use sha2::Digest;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
    let mut right = Resource::new(body.clone());
    right.ranges = false; // Content-MD5 describes a full body
    right.headers.push(("Content-MD5".into(), md5));
    srv.add("/right", right);
    assert_ok(&fastdl(&dir.0, &["-o", "r", &srv.url("/right")]).await);
    assert_eq!(sha256_file(&dir.path("r")), sha256(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_cleanly_and_resumes_once_there_is_room() {
    let Some(disk) = Mount::new("tmpfs", "size=2M") else {
        // Mounting needs root (CI runs as root; see docs/testing.md).
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    };
    let srv = Server::start().await;
    let body = payload(8 << 20, 31);
    srv.add("/f", Resource::new(body.clone()));
    let dir = &disk.0;
    let r = fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    let error = r.stderr.lines().last().unwrap();
    assert!(
        error.contains("No space left") && error.contains("free some space"),
        "{}",
        r.stderr
    );
    assert!(!dir.path("f").exists(), "no final file");
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "no half-written state left: {names:?}"
    );
    disk.remount("size=16M");
    assert_ok(&fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}
