//! No download waits on one trickling connection: a slow reply at the tail, on the probe, or on
//! every first connection is raced or replaced by a fresh connection. Each trickle here would
//! take minutes to hours; the downloads must end in seconds.

use std::time::{Duration, Instant};

use crate::server::{payload, Fault, Resource, Server, Trickle};
use crate::util::*;

const MIB: usize = 1 << 20;
const KIB: u64 = 1024;

/// Runs a download of `res` (bytes `body`) with `args` and checks it ends well within `bound`.
async fn finishes_fast(res: Resource, body: &[u8], args: &[&str], bound: Duration) -> Run {
    let srv = Server::start().await;
    srv.add("/f", res);
    let dir = TempDir::new();
    let url = srv.url("/f");
    let mut all = vec!["-v", "-o", "f"];
    all.extend(args);
    all.push(&url);
    let t0 = Instant::now();
    let r = fastdl(&dir.0, &all).await;
    let took = t0.elapsed();
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(body));
    assert!(
        took < bound,
        "took {took:?} (bound {bound:?}):\n{}",
        r.stderr
    );
    r
}

/// The first reply starting in `from..to` trickles at 1 KiB/s.
fn trickle(from: usize, to: usize) -> Option<Trickle> {
    Some(Trickle {
        from: from as u64,
        to: to as u64,
        rate: KIB,
    })
}

/// The case: 32 MiB with default settings; the reply starting near the middle of the
/// file trickles at 1 KiB/s. Its rest ends below `--chunk-size`, every other connection idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_at_the_tail_is_raced() {
    let body = payload(32 * MIB, 60);
    let mut res = Resource::new(body.clone());
    res.trickle = trickle(12 * MIB, 20 * MIB);
    let r = finishes_fast(res, &body, &[], Duration::from_secs(15)).await;
    // Raced, as the others are done by then; on a slower machine (wine) the others may still be
    // running when the trickle is judged, and it is replaced as far slower than its peers.
    assert!(
        r.stderr.contains("race bytes") || r.stderr.contains("slower than its peers"),
        "{}",
        r.stderr
    );
}

/// The probe's own reply trickles from its first byte, on a file too small to split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_probe_is_raced() {
    let body = payload(MIB, 61);
    let mut res = Resource::new(body.clone());
    res.trickle = trickle(0, 1);
    finishes_fast(res, &body, &[], Duration::from_secs(15)).await;
}

/// The probe trickles on a file that is split: the others take most of it, then race the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_probe_of_a_split_file_is_raced() {
    let body = payload(8 * MIB, 62);
    let mut res = Resource::new(body.clone());
    res.trickle = trickle(0, 1);
    finishes_fast(res, &body, &[], Duration::from_secs(15)).await;
}

/// Every connection's first reply trickles (nothing fast to compare with): fresh connections
/// are tried and are fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_trickles_fresh_ones_are_tried() {
    let body = payload(4 * MIB, 63);
    let mut res = Resource::new(body.clone());
    res.faults = std::iter::repeat_n(Fault::Throttle(4 * KIB), 4).collect();
    finishes_fast(res, &body, &["-x", "4"], Duration::from_secs(20)).await;
}

/// A server that is slow on every connection: the download goes at that pace, says so with
/// `-v`, and does not thrash (a few race attempts, not one per tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slow_everywhere_is_downloaded_at_its_pace() {
    let srv = Server::start().await;
    let body = payload(192 * KIB as usize, 64);
    srv.add("/f", Resource::new(body.clone()));
    srv.cap(32 * KIB);
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &["-v", "-x", "2", "-o", "f", &srv.url("/f")]).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert!(r.stderr.contains("no faster"), "{}", r.stderr);
    let requests = srv.seen().len();
    assert!(requests <= 8, "{requests} requests:\n{}", r.stderr);
}
