//! `--shard K/N`: N runs over one list take every entry exactly once, whichever N, and a shard
//! run again skips what it finished.

use std::collections::HashMap;

use crate::server::{payload, Resource, Server};
use crate::util::*;

const ENTRIES: usize = 1000;

/// A list of `ENTRIES` small files (every 10th with an `out=` name, which is then its shard key).
async fn listed() -> (Server, TempDir) {
    let srv = Server::start().await;
    let mut list = String::new();
    for i in 0..ENTRIES {
        srv.add(
            &format!("/f{i}"),
            Resource::new(payload(64 + i % 7, i as u64)),
        );
        list.push_str(&srv.url(&format!("/f{i}")));
        list.push('\n');
        if i % 10 == 0 {
            list.push_str(&format!("  out=named/{i}.bin\n"));
        }
    }
    let dir = TempDir::new();
    std::fs::write(dir.path("urls.txt"), list).unwrap();
    (srv, dir)
}

/// How many times the server sent each file, from its `seen` requests.
fn fetched(seen: &[crate::server::Seen]) -> HashMap<&str, usize> {
    let mut count = HashMap::new();
    for s in seen {
        *count.entry(s.path.as_str()).or_default() += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cover_a_list_exactly_once_whatever_their_number() {
    let (srv, dir) = listed().await;
    // 4 shards by flag, then 3 from a Slurm job array's environment, each into one directory.
    let runs: Vec<(String, Vec<(&str, String)>)> = (0..4)
        .map(|k| (format!("{k}/4"), vec![]))
        .chain((0..3).map(|k| {
            let env = vec![
                ("SLURM_ARRAY_TASK_ID", k.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "3".to_string()),
            ];
            ("auto".to_string(), env)
        }))
        .collect();
    for (round, shards) in [(0, &runs[..4]), (1, &runs[4..])] {
        let before = srv.seen().len();
        let out = format!("out{round}");
        let mut sizes = Vec::new();
        for (shard, env) in shards {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = fastdl_with(
                &dir.0,
                &["-i", "urls.txt", "-d", &out, "--shard", shard, "-j", "16"],
                &env,
                None,
            )
            .await;
            assert_ok(&r);
            let done: usize = summary_count(&r.stderr, "done");
            sizes.push(done);
        }
        let seen = srv.seen();
        let count = fetched(&seen[before..]);
        assert_eq!(count.len(), ENTRIES, "round {round}: every entry fetched");
        assert!(count.values().all(|&n| n == 1), "round {round}: twice");
        assert_eq!(sizes.iter().sum::<usize>(), ENTRIES, "{sizes:?}");
        assert!(
            sizes.iter().all(|&n| n > ENTRIES / shards.len() / 2),
            "{sizes:?}"
        );
        for i in [0, 10, 990] {
            let want = sha256(&payload(64 + i % 7, i as u64));
            assert_eq!(
                sha256_file(&dir.path(&format!("{out}/named/{i}.bin"))),
                want
            );
        }
    }
    // A shard run again skips every finished file without a request.
    let before = srv.seen().len();
    let r = fastdl(&dir.0, &["-i", "urls.txt", "-d", "out0", "--shard", "2/4"]).await;
    assert_ok(&r);
    assert_eq!(srv.seen().len(), before, "a finished shard fetched again");
    assert!(r.stderr.contains(" 0 done, "), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shards_are_refused_and_an_empty_one_succeeds() {
    let srv = Server::start().await;
    srv.add("/one", Resource::new(payload(100, 1)));
    let dir = TempDir::new();
    let url = srv.url("/one");
    for (args, env, want) in [
        (vec!["--shard", "4/4"], vec![], "K counts from 0"),
        (
            vec!["--shard", "auto"],
            vec![],
            "no shard in the environment",
        ),
        (
            vec!["--shard", "auto"],
            vec![("JOB_COMPLETION_INDEX", "1")],
            "FASTDL_SHARD_COUNT",
        ),
    ] {
        let mut all = args.clone();
        all.push(&url);
        let r = fastdl_with(&dir.0, &all, &env, None).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    assert!(srv.seen().is_empty(), "nothing was fetched");
    // Of two shards, one has the URL and the other none: that one ends at once, exit 0.
    let mut codes = Vec::new();
    for k in 0..2 {
        let env = [("FASTDL_SHARD", if k == 0 { "0/2" } else { "1/2" })];
        let r = fastdl_with(&dir.0, &["--shard", "auto", &url], &env, None).await;
        codes.push((r.code, r.stderr.contains("holds none")));
    }
    codes.sort();
    assert_eq!(codes, [(0, false), (0, true)]);
    assert_eq!(srv.seen().len(), 1);
}

/// The count after `N ` in the summary line (`Summary: 3 done, 0 skipped, ...`).
fn summary_count(stderr: &str, what: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let words: Vec<&str> = line
        .split([' ', ',', ';'])
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == what).expect(what);
    words[at - 1].parse().expect("a count")
}

/// A shard killed half-way (a node lost) and run again: no finished file is asked for again,
/// the partial ones resume, and every file of the shard ends whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_killed_and_run_again_fetches_no_finished_file_twice() {
    let srv = Server::start().await;
    let mut list = String::new();
    for i in 0..40 {
        srv.add(&format!("/k{i}"), Resource::new(payload(300_000, i)));
        list.push_str(&format!("{}\n", srv.url(&format!("/k{i}"))));
    }
    let dir = TempDir::new();
    std::fs::write(dir.path("urls.txt"), list).unwrap();
    srv.cap(400_000);
    let args = [
        "-i", "urls.txt", "-d", "out", "--shard", "1/2", "-j", "2", "-x", "2",
    ];
    let child = command(&dir.0, &args).spawn().unwrap();
    let finished = |dir: &TempDir| -> Vec<String> {
        std::fs::read_dir(dir.path("out"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| !n.contains(".part"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while finished(&dir).len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    interrupt(child, "-KILL").await;
    let done_before = finished(&dir);
    assert!(done_before.len() >= 3, "{done_before:?}");
    srv.shape(Default::default());
    let mut rerun = args.to_vec();
    rerun.extend(["-H", RERUN]);
    let r = fastdl(&dir.0, &rerun).await;
    assert_ok(&r);
    let asked: Vec<String> = srv
        .seen()
        .into_iter()
        .filter(is_rerun)
        .map(|s| s.path.trim_start_matches('/').to_string())
        .collect();
    for name in &done_before {
        assert!(
            !asked.contains(name),
            "{name} was finished, yet asked for again"
        );
    }
    let all = finished(&dir);
    assert!(all.len() > done_before.len(), "{all:?}");
    for name in &all {
        let i: u64 = name.trim_start_matches('k').parse().unwrap();
        assert_eq!(
            sha256_file(&dir.path(&format!("out/{name}"))),
            sha256(&payload(300_000, i))
        );
    }
    // Together with the other shard, the list once: nothing of shard 1 is fetched by shard 0.
    let before = srv.seen().len();
    let r = fastdl(&dir.0, &["-i", "urls.txt", "-d", "out", "--shard", "0/2"]).await;
    assert_ok(&r);
    assert_eq!(finished(&dir).len(), 40);
    let of_shard_0: Vec<String> = srv.seen()[before..]
        .iter()
        .map(|s| s.path.trim_start_matches('/').to_string())
        .collect();
    assert!(
        all.iter().all(|n| !of_shard_0.contains(n)),
        "{of_shard_0:?}"
    );
}
