//! `--report` and `--save-failed`: a line per entry with the SHA-256 of what was written
//! (however many connections wrote it, resumed or skipped), a summary line, no secret, and a
//! list of what did not finish that runs again as is.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{payload, Fault, Resource, Server};
use crate::util::*;

const MIB: usize = 1 << 20;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The report's line for the entry whose `url` ends with `tail`.
fn entry<'a>(report: &'a [Value], tail: &str) -> &'a Value {
    report
        .iter()
        .find(|l| l["url"].as_str().is_some_and(|u| u.ends_with(tail)))
        .unwrap_or_else(|| panic!("no line for {tail}: {report:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_line_per_entry_and_a_list_of_what_to_run_again() {
    let srv = Server::start().await;
    let big = payload(6 * MIB, 1);
    let small = payload(5000, 2);
    srv.add("/big", Resource::new(big.clone()));
    srv.add("/small", Resource::new(small.clone()));
    let mut flaky = Resource::new(small.clone());
    flaky.faults.push_back(Fault::Status(503, Some("0".into())));
    let secret = "S3CR3Tsig";
    srv.add(&format!("/flaky?token={secret}"), flaky);
    let list = format!(
        "{}\n{}\n  out=sub/small.bin\n{}?token={secret}\n  out=flaky.bin\n{}\n  out=gone.bin\n  split=2\n",
        srv.url("/big"),
        srv.url("/small"),
        srv.url("/flaky"),
        srv.url("/gone"),
    );
    let dir = TempDir::new();
    std::fs::write(dir.path("urls.txt"), &list).unwrap();
    // Slow enough per connection that the big file is written by several, out of order.
    srv.cap(8 * MIB as u64);
    let args = four_connections(&[
        "-i",
        "urls.txt",
        "-d",
        "out",
        "--report",
        "report.jsonl",
        "--save-failed",
        "failed.txt",
    ]);
    let r = fastdl(&dir.0, &args).await;
    assert_eq!(r.code, 8, "some failed, others done: {}", r.stderr);
    let report = lines(&dir.path("report.jsonl"));
    assert_eq!(report.len(), 5, "{report:?}");
    let big_line = entry(&report, "/big");
    assert_eq!(big_line["status"], "done");
    assert_eq!(big_line["sha256"], sha256(&big));
    assert_eq!(big_line["bytes"], big.len());
    assert_eq!(big_line["path"], "out/big");
    assert_eq!(big_line["attempts"], 1);
    assert!(big_line["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(entry(&report, "/small")["sha256"], sha256(&small));
    let flaky_line = entry(&report, "token=***");
    assert_eq!(flaky_line["status"], "done");
    assert_eq!(flaky_line["attempts"], 2, "the 503, then the retry");
    assert_eq!(flaky_line["path"], "out/flaky.bin");
    let gone = entry(&report, "/gone");
    assert_eq!(gone["status"], "failed");
    assert_eq!(gone["path"], Value::Null);
    assert!(gone["error"].as_str().unwrap().contains("404"), "{gone}");
    let summary = report.last().unwrap();
    assert_eq!(summary["status"], "summary");
    assert_eq!(
        (summary["done"].as_u64(), summary["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert!(summary.get("path").is_none());
    let text = std::fs::read_to_string(dir.path("report.jsonl")).unwrap();
    assert!(!text.contains(secret), "{text}");
    // The failed entry, options and all, in the list's format, relative to -d.
    let failed = std::fs::read_to_string(dir.path("failed.txt")).unwrap();
    assert_eq!(
        failed,
        format!("{}\n  out=gone.bin\n  split=2\n", srv.url("/gone"))
    );

    // Once the server has it, the saved list runs as is and, all done, is removed.
    srv.add("/gone", Resource::new(small.clone()));
    let r = fastdl(
        &dir.0,
        &[
            "-i",
            "failed.txt",
            "-d",
            "out",
            "--save-failed",
            "failed.txt",
        ],
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("out/gone.bin")), sha256(&small));
    assert!(!dir.path("failed.txt").exists());

    // Run again: every file skipped without a request, its digest from the completion record.
    let before = srv.seen().len();
    let r = fastdl(&dir.0, &["-i", "urls.txt", "-d", "out", "--report", "-"]).await;
    assert_ok(&r);
    assert_eq!(srv.seen().len(), before, "nothing fetched again");
    let report: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entry(&report, "/big")["status"], "skipped");
    assert_eq!(entry(&report, "/big")["sha256"], sha256(&big));
    assert_eq!(entry(&report, "/gone")["sha256"], sha256(&small));
    assert_eq!(report.last().unwrap()["skipped"], 4);
}

/// An interrupted file resumed: the digest covers the bytes of both runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_file_is_hashed_whole() {
    let srv = Server::start().await;
    let body = payload(12 * MIB, 3);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    srv.cap(MIB as u64);
    let child = command(&dir.0, &four_connections(&["-o", "f", &srv.url("/f")]))
        .spawn()
        .unwrap();
    let state = dir.path("f.part.fastdl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while saved_bytes(&state) < 3 * MIB as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(interrupt(child, "-INT").await, 130);
    assert!(saved_bytes(&state) > 0, "progress was saved");
    srv.shape(Default::default());
    let r = fastdl(
        &dir.0,
        &four_connections(&["-o", "f", "--report", "r.jsonl", &srv.url("/f")]),
    )
    .await;
    assert_ok(&r);
    let report = lines(&dir.path("r.jsonl"));
    assert_eq!(report[0]["sha256"], sha256(&body));
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_worked_is_the_failures_own_code() {
    let srv = Server::start().await;
    let dir = TempDir::new();
    let list = format!("{}\n{}\n", srv.url("/a"), srv.url("/b"));
    std::fs::write(dir.path("urls.txt"), list).unwrap();
    let r = fastdl(&dir.0, &["-i", "urls.txt", "--report", "r.jsonl"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = lines(&dir.path("r.jsonl"));
    assert_eq!(report.last().unwrap()["failed"], 2);
    let r = fastdl(&dir.0, &["-i", "urls.txt", "--report", "reports/0.jsonl"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = lines(&dir.path("reports/0.jsonl"));
    assert_eq!(report.len(), 3, "its directory was made: {report:?}");
    for (args, want) in [
        (
            vec!["--report", "-", "-o", "-", "http://127.0.0.1:9/f"],
            "standard output",
        ),
        // Its directory is created, unless a file is in the way.
        (
            vec!["--report", "urls.txt/r", "http://127.0.0.1:9/f"],
            "--report urls.txt/r",
        ),
    ] {
        let r = fastdl(&dir.0, &args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}
