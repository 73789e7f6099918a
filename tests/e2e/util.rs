//! Running the binary, temporary directories, digests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "fastdl-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(state_dir(&self.0));
    }
}

/// The `FASTDL_STATE_DIR` of runs in `dir`: beside it, so that tests listing `dir` see only what
/// fastdl left among the user's files.
fn state_dir(dir: &Path) -> PathBuf {
    dir.with_extension("state")
}

pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub stdout: String,
    /// stdout as bytes (for `-o -`).
    pub stdout_raw: Vec<u8>,
}

/// fastdl with `args`, in `dir`. Preconnecting is off, so that a probe slowed down by a busy
/// machine cannot add requests to a test's planned sequence of faults; `preconnect` tests it.
pub fn command(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut all = vec!["--no-preconnect"];
    all.extend(args);
    command_with_preconnect(dir, &all)
}

/// The binary under test: this build's fastdl, or `FASTDL_E2E_BIN` started through
/// `FASTDL_E2E_RUNNER` when that is set (the Windows build under wine: .ci/cross.sh runs the
/// tests that make sense there so).
pub fn binary() -> tokio::process::Command {
    let Some(bin) = std::env::var_os("FASTDL_E2E_BIN") else {
        return tokio::process::Command::new(env!("CARGO_BIN_EXE_fastdl"));
    };
    match std::env::var_os("FASTDL_E2E_RUNNER") {
        Some(runner) => {
            let mut c = tokio::process::Command::new(runner);
            c.arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    }
}

/// fastdl with `args` as given (preconnecting on).
pub fn command_with_preconnect(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = binary();
    c.args(args)
        .current_dir(dir)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        // Never read the real user's config file.
        .env_remove("FASTDL_CONFIG")
        // Nor the shard of a job array the tests may run in.
        .env_remove("FASTDL_SHARD")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env("XDG_CONFIG_HOME", dir.join(".no-config"))
        // Completion-record journals (filesystems without xattrs, and wine, which has no
        // alternate data streams) stay out of the real home and out of the listed directory.
        .env("FASTDL_STATE_DIR", state_dir(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Runs fastdl in `dir` and waits (at most a minute).
pub async fn fastdl(dir: &Path, args: &[&str]) -> Run {
    fastdl_with(dir, args, &[], None).await
}

/// Runs fastdl in `dir` with extra environment and optional standard input. A run still going
/// after a minute is killed and the test fails with what it printed so far.
pub async fn fastdl_with(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Run {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = command(dir, args);
    for (k, v) in env {
        c.env(k, v);
    }
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().expect("spawn fastdl");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A run that fails before reading its input closes the pipe: not a test failure.
        let _ = pipe.write_all(data).await;
        drop(pipe);
    }
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        let (a, b) = tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr));
        a.and(b).expect("read fastdl's output");
        child.wait().await.expect("wait for fastdl")
    })
    .await;
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let Ok(status) = finished else {
        panic!("fastdl {args:?} still running after a minute; it printed:\n{stderr}");
    };
    Run {
        code: status.code().unwrap_or(-1),
        stderr,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stdout_raw: stdout,
    }
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sha256_file(p: &Path) -> String {
    sha256(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Asserts a run succeeded, printing its stderr if not.
#[track_caller]
pub fn assert_ok(r: &Run) {
    assert_eq!(r.code, 0, "fastdl failed:\n{}", r.stderr);
}

/// Sends `signal` (`-INT`, `-KILL`, ...) to a running fastdl and returns its exit code
/// (-1 when killed by the signal).
pub async fn interrupt(mut child: tokio::process::Child, signal: &str) -> i32 {
    let pid = child.id().expect("still running").to_string();
    std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("fastdl stopped within 10 s")
        .unwrap();
    status.code().unwrap_or(-1)
}

/// A header that marks the requests of a rerun: after an interrupted run, the server may still
/// record a request the killed process sent, so counting requests from "now" is not enough.
pub const RERUN: &str = "X-Test-Run: rerun";

/// Waits up to 10 s for `path` to exist (a spawned fastdl has started on its file); true if it
/// does.
pub async fn appears(path: &Path) -> bool {
    let t0 = std::time::Instant::now();
    while !path.exists() && t0.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    path.exists()
}

/// Whether the server saw this request from a run given `-H RERUN`.
pub fn is_rerun(seen: &crate::server::Seen) -> bool {
    seen.header("X-Test-Run") == Some("rerun")
}

/// How many bytes the resume state file at `state` records as on disk (0 while there is none).
pub fn saved_bytes(state: &Path) -> u64 {
    let Ok(state) = std::fs::read(state) else {
        return 0;
    };
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap_or_default();
    let done = state["done"].as_array().cloned().unwrap_or_default();
    done.iter()
        .map(|r| r["end"].as_u64().unwrap() - r["start"].as_u64().unwrap())
        .sum()
}

/// `-x 4 -k 256K` (four connections, ranges split down to 256 KiB) followed by `rest`: enough to
/// spread a few MiB over several connections.
pub fn four_connections<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-x", "4", "-k", "256K"];
    args.extend(rest);
    args
}

/// A filesystem of type `fstype` mounted on a new directory, unmounted when dropped. Mounting
/// needs root (CI runs as root; elsewhere the tests that need one say SKIPPED).
pub struct Mount(pub TempDir);

impl Mount {
    pub fn new(fstype: &str, options: &str) -> Option<Mount> {
        let dir = TempDir::new();
        let ok = std::process::Command::new("mount")
            .args(["-t", fstype, "-o", options, fstype])
            .arg(&dir.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Mount(dir))
    }

    pub fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0 .0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.0 .0)
            .status();
    }
}

/// Runs the shell command `cmd` in `dir` under a pseudo-terminal of 100 x 30 (`script`, from
/// util-linux) with `env`, and returns everything it drew. Its stdin stays open until the end:
/// on an immediate end of input, `script` may end the session before the command has drawn.
pub async fn under_a_terminal(dir: &Path, cmd: &str, env: &[(&str, &str)]) -> String {
    use tokio::io::AsyncReadExt;
    let sized = format!("stty cols 100 rows 30; {cmd}");
    let mut c = tokio::process::Command::new("script");
    c.args(["-qfec", &sized, "/dev/null"])
        .current_dir(dir)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("script (util-linux) runs");
    let stdin = child.stdin.take();
    let mut out = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_end(&mut out))
        .await
        .expect("the command ended within 30 s")
        .unwrap();
    let status = child.wait().await.unwrap();
    drop(stdin);
    let drawn = String::from_utf8_lossy(&out).into_owned();
    assert!(status.success(), "{cmd}: {status:?}\n{drawn}");
    drawn
}
