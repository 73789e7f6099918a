//! Proxies: every request of a download (probe, ranges) goes through `--proxy` or the proxy
//! environment variables, and `--proxy ''` ignores those. The URLs name `fastdl-test.invalid`,
//! a host that cannot resolve: a request that reached the server without the proxy could not
//! exist (and nothing is looked up outside this machine: the proxy resolves names).

use std::collections::HashSet;

use crate::server::{payload, Resource, Server, Socks5};
use crate::util::*;

const MIB: usize = 1 << 20;
const HOST: &str = "fastdl-test.invalid";

/// A server that answers as an HTTP proxy (and origin) for `/f`.
async fn proxy_with_file(size: usize, seed: u64) -> (Server, Vec<u8>, TempDir) {
    let srv = Server::start().await;
    let body = payload(size, seed);
    srv.add("/f", Resource::new(body.clone()));
    (srv, body, TempDir::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_carries_every_range_request() {
    let (proxy, body, dir) = proxy_with_file(8 * MIB, 80).await;
    let via = format!("http://{}", proxy.addr);
    let url = format!("http://{HOST}/f");
    let args = four_connections(&["--proxy", &via, "-o", "f", &url]);
    let r = fastdl(&dir.0, &args).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let seen = proxy.seen();
    assert!(
        seen.iter().all(|s| s.proxied_host.as_deref() == Some(HOST)),
        "{seen:?}"
    );
    let connections: HashSet<u64> = seen.iter().map(|s| s.connection).collect();
    assert!(
        connections.len() > 1,
        "ranges over several proxy connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_environment_is_used_unless_proxy_is_empty() {
    let (proxy, body, dir) = proxy_with_file(MIB, 81).await;
    let env = format!("http://{}", proxy.addr);
    let url = format!("http://{HOST}/f");
    let r = fastdl_with(&dir.0, &["-o", "f", &url], &[("http_proxy", &env)], None).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert!(proxy
        .seen()
        .iter()
        .all(|s| s.proxied_host.as_deref() == Some(HOST)));

    // `--proxy ''`: straight to the origin, the proxy sees nothing more.
    let origin = Server::start().await;
    origin.add("/g", Resource::new(body.clone()));
    let before = proxy.seen().len();
    let args = ["--proxy", "", "-o", "g", &origin.url("/g")];
    assert_ok(&fastdl_with(&dir.0, &args, &[("http_proxy", &env)], None).await);
    assert_eq!(sha256_file(&dir.path("g")), sha256(&body));
    assert_eq!(proxy.seen().len(), before);
    assert!(origin.seen().iter().all(|s| s.proxied_host.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5h_proxy_resolves_the_name_itself() {
    let (origin, body, dir) = proxy_with_file(4 * MIB, 82).await;
    let socks = Socks5::start(origin.addr).await;
    let url = format!("http://{HOST}:8080/f");
    let socks_url = socks.url();
    let args = four_connections(&["--proxy", &socks_url, "-o", "f", &url]);
    let r = fastdl(&dir.0, &args).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    let asked = socks.asked.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|a| a == &format!("{HOST}:8080")),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_credentials_are_sent_and_never_shown() {
    let (proxy, body, dir) = proxy_with_file(MIB, 83).await;
    let via = format!("http://user:pr0xypw@{}", proxy.addr);
    let url = format!("http://{HOST}/f");
    let r = fastdl(&dir.0, &["-v", "--proxy", &via, "-o", "f", &url]).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    // "user:pr0xypw" in Basic form.
    let auth = proxy.seen()[0]
        .header("proxy-authorization")
        .map(str::to_owned);
    assert_eq!(auth.as_deref(), Some("Basic dXNlcjpwcjB4eXB3"));
    assert!(!r.stderr.contains("pr0xypw"), "{}", r.stderr);
    let printed = fastdl(&dir.0, &["--proxy", &via, "--print-config"]).await;
    assert!(printed.stdout.contains("user:***@"), "{}", printed.stdout);
    assert!(!printed.stdout.contains("pr0xypw"), "{}", printed.stdout);
}
