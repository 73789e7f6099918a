//! Progress for people (bars on a terminal, plain lines in a pipe) and for programs (JSON lines).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{payload, Fault, Resource, Server};
use crate::util::*;

const MIB: usize = 1 << 20;

/// Every stderr line as JSON; panics on a line that is not.
fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

fn of<'a>(evs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["event"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_stream_is_complete_and_monotonic() {
    let srv = Server::start().await;
    let body = payload(4 * MIB, 50);
    srv.add("/f", Resource::new(body.clone()));
    srv.cap(4 * MIB as u64);
    let dir = TempDir::new();
    let r = fastdl(
        &dir.0,
        &[
            "--progress",
            "json",
            "--progress-interval",
            "50ms",
            "-x",
            "2",
            "-o",
            "f",
            &srv.url("/f"),
        ],
    )
    .await;
    assert_ok(&r);
    let evs = events(&r.stderr);
    assert_eq!(evs[0]["event"], "hello");
    assert_eq!(evs[0]["v"], 1);
    let start = of(&evs, "start");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0]["total_bytes"], body.len());
    assert_eq!(start[0]["tmpfilename"], "f.part");
    let progress = of(&evs, "progress");
    assert!(progress.len() >= 5, "{} progress events", progress.len());
    let mut last = 0;
    for p in &progress {
        for key in [
            "id",
            "status",
            "downloaded_bytes",
            "total_bytes",
            "total_bytes_estimate",
            "speed",
            "eta",
            "elapsed",
            "filename",
            "tmpfilename",
            "connections",
        ] {
            assert!(p.get(key).is_some(), "progress without {key}: {p}");
        }
        let d = p["downloaded_bytes"].as_u64().unwrap();
        assert!(d >= last, "downloaded_bytes went back from {last} to {d}");
        last = d;
    }
    assert_eq!(
        last,
        body.len() as u64,
        "the last progress is the whole file"
    );
    let finished = of(&evs, "finished");
    assert_eq!(finished[0]["total_bytes"], body.len());
    let result = of(&evs, "result");
    assert_eq!(result[0]["status"], "done");
    assert_eq!(result[0]["bytes"], body.len());
    let summary = evs.last().unwrap();
    assert_eq!(summary["event"], "summary", "a run ends with its summary");
    assert_eq!(
        (
            summary["done"].as_u64(),
            summary["failed"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_events_have_distinct_ids_and_failures_are_reported() {
    let srv = Server::start().await;
    let body = payload(200_000, 51);
    srv.add("/a", Resource::new(body.clone()));
    let dir = TempDir::new();
    let r = fastdl(
        &dir.0,
        &["--progress", "json", &srv.url("/a"), &srv.url("/missing")],
    )
    .await;
    assert_eq!(r.code, 8, "one of two failed: {}", r.stderr);
    let evs = events(&r.stderr);
    let ids = |kind| {
        of(&evs, kind)
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("start"), vec![0]);
    assert_eq!(ids("finished"), vec![0]);
    assert_eq!(ids("error"), vec![1]);
    // Both run at once: results arrive in any order.
    let mut results = of(&evs, "result");
    results.sort_by_key(|r| r["id"].as_u64());
    assert_eq!(results.len(), 2);
    assert_eq!(
        (results[0]["id"].as_u64(), results[0]["status"].as_str()),
        (Some(0), Some("done"))
    );
    assert_eq!(
        (results[1]["id"].as_u64(), results[1]["status"].as_str()),
        (Some(1), Some("failed"))
    );
    assert!(results[1]["error"].as_str().unwrap().contains("404"));
    assert_eq!(results[1]["exit_code"], 1);
    let summary = evs.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["done"], 1);
    assert_eq!(summary["failed"][0]["id"], 1);
    assert_eq!(sha256_file(&dir.path("a")), sha256(&body));
}

/// A download of about a second, so bars and lines have time to appear.
async fn slow_file() -> Server {
    let srv = Server::start().await;
    srv.add("/slow.bin", Resource::new(payload(4 * MIB, 52)));
    srv.cap(2 * MIB as u64);
    srv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_gets_plain_lines_only() {
    let srv = slow_file().await;
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &["-x", "2", &srv.url("/slow.bin")]).await;
    assert_ok(&r);
    assert!(
        !r.stderr.contains('\r') && !r.stderr.contains('\x1b'),
        "terminal codes in a pipe: {:?}",
        r.stderr
    );
    assert!(
        r.stderr.lines().all(|l| l.starts_with("[download] ")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("% of 4.00MiB at "), "{}", r.stderr);
    assert!(r
        .stderr
        .lines()
        .last()
        .unwrap()
        .starts_with("[download] 100% of 4.00MiB in "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_bars() {
    let srv = slow_file().await;
    let dir = TempDir::new();
    let cmd = format!(
        "{} -x 2 {}",
        env!("CARGO_BIN_EXE_fastdl"),
        srv.url("/slow.bin")
    );
    let screen = under_a_terminal(&dir.0, &cmd, &[]).await;
    assert!(screen.contains('\x1b'), "no terminal drawing: {screen:?}");
    assert!(
        screen.contains("slow.bin") && screen.contains("=>") && screen.contains("MiB/s eta"),
        "no bar: {screen:?}"
    );
    assert!(
        screen.contains("[download] 100% of 4.00MiB in "),
        "no summary line: {screen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_errors_only() {
    let srv = Server::start().await;
    srv.add("/a", Resource::new(payload(100_000, 53)));
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &["-q", &srv.url("/a")]).await;
    assert_ok(&r);
    assert_eq!(r.stderr, "");
    let r = fastdl(&dir.0, &["-q", &srv.url("/missing")]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_shows_requests_replies_and_retries() {
    let srv = Server::start().await;
    let mut res = Resource::new(payload(100_000, 54));
    res.faults = [Fault::Status(503, Some("0".into()))].into();
    srv.add("/a", res);
    let dir = TempDir::new();
    let url = srv.url("/a");
    let r = fastdl(&dir.0, &["-v", "--retry-delay", "10ms", &url]).await;
    assert_ok(&r);
    assert!(
        r.stderr.contains(&format!("GET {url} Range: bytes=0-")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("HTTP 503") && l.contains("retry-after: 0")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("server answered HTTP 503 (Service Unavailable); retry 1 in 0.0s"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("HTTP 206 content-range: bytes 0-99999/100000"),
        "{}",
        r.stderr
    );
}

/// Runs `fastdl args` in a tmux pane of `cols` x 30 with `env`, waits for it to end, and returns
/// the screen as a user would see it then (trailing blank lines dropped).
async fn screen_after(dir: &TempDir, cols: u16, env: &[(&str, &str)], args: &[String]) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let socket = format!(
        "fastdl-e2e-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let done = dir.path("screen.done");
    let vars: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    let cmd = format!(
        "cd '{}' && {vars}'{}' {}; touch '{}'; sleep 60",
        dir.0.display(),
        env!("CARGO_BIN_EXE_fastdl"),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" "),
        done.display()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux runs (integration/test.sh installs it)")
    };
    let cols = cols.to_string();
    let started = tmux(&["new-session", "-d", "-x", &cols, "-y", "30", &cmd]);
    assert!(started.status.success(), "{started:?}");
    let t0 = Instant::now();
    while !done.exists() && t0.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done.exists(), "fastdl did not end within 30 s");
    // Let tmux draw the last output.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let screen = tmux(&["capture-pane", "-p"]);
    tmux(&["kill-server"]);
    String::from_utf8_lossy(&screen.stdout)
        .trim_end()
        .to_string()
}

/// A batch on a terminal, with errors printed while bars run: at the end the screen holds the
/// finished lines, the errors and the summary, and no frozen copy of any bar; a failed entry
/// names its URL once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_a_terminal_leaves_a_clean_screen() {
    let srv = Server::start().await;
    let mut list = String::new();
    for i in 0..5 {
        srv.add(&format!("/f{i}"), Resource::new(payload(2 * MIB, 300 + i)));
        list.push_str(&srv.url(&format!("/f{i}")));
        list.push('\n');
        if i == 1 {
            list.push_str(&format!("{}\n", srv.url("/missing")));
        }
    }
    srv.cap(2 * MIB as u64);
    let dir = TempDir::new();
    std::fs::write(dir.path("list.txt"), list).unwrap();
    let args: Vec<String> = ["-i", "list.txt", "-d", "out", "-j", "3"]
        .map(String::from)
        .into();
    for cols in [100, 48] {
        let _ = std::fs::remove_dir_all(dir.path("out"));
        let _ = std::fs::remove_file(dir.path("screen.done"));
        let screen = screen_after(&dir, cols, &[("TERM", "xterm-256color")], &args).await;
        let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        for l in &lines {
            let bar = l.contains(" [") && l.contains(']') && !l.starts_with("[download]");
            assert!(!bar, "a frozen bar is left ({cols} columns):\n{screen}");
            assert!(
                !l.starts_with("total"),
                "a frozen total line ({cols} columns):\n{screen}"
            );
        }
        let done = lines
            .iter()
            .filter(|l| l.starts_with("[download] 100% of "))
            .count();
        assert_eq!(done, 5, "{screen}");
        assert!(
            screen.contains("Summary: 5 done, 0 skipped, 1 failed"),
            "{screen}"
        );
        let url = srv.url("/missing");
        assert_eq!(
            screen.replace('\n', "").matches(url.as_str()).count(),
            2,
            "the URL once in the error line and once in the summary:\n{screen}"
        );
    }
}

/// `TERM=dumb` gets plain lines, no cursor movement; `NO_COLOR` bars carry no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumb_terminals_and_no_color_are_honoured() {
    let srv = slow_file().await;
    let dir = TempDir::new();
    let url = srv.url("/slow.bin");
    let cmd = format!("{} -x 2 --overwrite {url}", env!("CARGO_BIN_EXE_fastdl"));
    let drawn = under_a_terminal(&dir.0, &cmd, &[("NO_COLOR", "1")]).await;
    assert!(drawn.contains("=>"), "no bar: {drawn:?}");
    assert!(!drawn.contains("\x1b[1m"), "bold with NO_COLOR: {drawn:?}");

    let drawn = under_a_terminal(&dir.0, &cmd, &[("TERM", "dumb")]).await;
    assert!(
        drawn.contains("[download] Destination: slow.bin"),
        "{drawn:?}"
    );
    assert!(
        !drawn.contains("=>") && !drawn.contains('\x1b'),
        "bars on a dumb terminal: {drawn:?}"
    );
}
