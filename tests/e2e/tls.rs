//! HTTPS: certificates are verified (a test CA is trusted only when given), and everything the
//! plain-HTTP tests check holds over TLS too: many connections per file, keep-alive reuse.

use crate::server::{payload, Resource, Server};
use crate::util::*;

const MIB: usize = 1 << 20;

/// An HTTPS server serving `/f`, and a directory holding its certificate as `ca.pem`.
async fn tls_server(size: usize) -> (Server, Vec<u8>, TempDir) {
    let srv = Server::start_tls().await;
    let body = payload(size, 70);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    std::fs::write(dir.path("ca.pem"), srv.cert_pem.as_ref().unwrap()).unwrap();
    (srv, body, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let (srv, _, dir) = tls_server(MIB).await;
    let r = fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    assert!(r.stderr.contains("--ca-certificate"), "{}", r.stderr);
    assert!(!dir.path("f").exists() && !dir.path("f.part").exists());
    assert!(
        srv.seen().is_empty(),
        "no request went over the unverified connection"
    );
    let tries = srv
        .state
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(tries, 1, "a rejected certificate is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_ca_certificate_is_trusted_for_many_connections() {
    let (srv, body, dir) = tls_server(8 * MIB).await;
    let url = srv.url("/f");
    let args = four_connections(&["--ca-certificate", "ca.pem", "-o", "f", &url]);
    assert_ok(&fastdl(&dir.0, &args).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let connections: std::collections::HashSet<u64> =
        srv.seen().iter().map(|s| s.connection).collect();
    assert!(connections.len() > 1, "ranges over several TLS connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_check_certificate_skips_verification() {
    let (srv, body, dir) = tls_server(MIB).await;
    let url = srv.url("/f");
    assert_ok(&fastdl(&dir.0, &["--no-check-certificate", "-o", "f", &url]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reuses_tls_connections() {
    let srv = Server::start_tls().await;
    let dir = TempDir::new();
    std::fs::write(dir.path("ca.pem"), srv.cert_pem.as_ref().unwrap()).unwrap();
    let mut list = String::new();
    for i in 0..40 {
        srv.add(&format!("/s{i}"), Resource::new(payload(4096, i)));
        list += &format!("{}\n", srv.url(&format!("/s{i}")));
    }
    std::fs::write(dir.path("urls.txt"), list).unwrap();
    let args = ["--ca-certificate", "ca.pem", "-j", "4", "-i", "urls.txt"];
    assert_ok(&fastdl(&dir.0, &args).await);
    for i in 0..40 {
        assert_eq!(
            sha256_file(&dir.path(&format!("s{i}"))),
            sha256(&payload(4096, i))
        );
    }
    let handshakes = srv
        .state
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        handshakes <= 8,
        "40 files took {handshakes} TLS connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_certificate_file_is_a_usage_error() {
    let dir = TempDir::new();
    std::fs::write(dir.path("junk.pem"), "not a certificate\n").unwrap();
    for (file, says) in [
        ("missing.pem", "cannot read"),
        ("junk.pem", "no PEM certificate"),
    ] {
        let r = fastdl(&dir.0, &["--ca-certificate", file, "https://127.0.0.1:9/f"]).await;
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains(file) && r.stderr.contains(says),
            "{}",
            r.stderr
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_is_honoured() {
    let (srv, body, dir) = tls_server(MIB).await;
    let url = srv.url("/f");
    let r = fastdl_with(
        &dir.0,
        &["-o", "f", &url],
        &[("SSL_CERT_FILE", "ca.pem")],
        None,
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}
