//! The config file: where it is found, what wins, and what a mistake in it says.

use crate::server::{payload, Resource, Server};
use crate::util::*;

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_defaults_then_file_then_command_line() {
    let dir = TempDir::new();
    let xdg = dir.path("xdg").display().to_string();
    write(
        &dir,
        "xdg/fastdl/config.toml",
        "connections = 12\nchunk_size = \"2M\"\ntimeout = \"45s\"\n",
    );
    let env = [("XDG_CONFIG_HOME", xdg.as_str())];
    let r = fastdl_with(&dir.0, &["--print-config", "-x", "3"], &env, None).await;
    assert_ok(&r);
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            .to_string()
    };
    assert_eq!(line("connections"), "connections = 3  # command line");
    assert!(
        line("chunk_size").starts_with("chunk_size = 2097152  # ")
            && line("chunk_size").ends_with("config.toml:2")
    );
    assert_eq!(line("retries"), "retries = 10  # default");
    // --config beats the default location, $FASTDL_CONFIG beats XDG, --no-config ignores all.
    let team = write(&dir, "team.toml", "connections = 5\n");
    let r = fastdl_with(&dir.0, &["--print-config", "--config", &team], &env, None).await;
    assert!(r.stdout.contains("connections = 5  # "), "{}", r.stdout);
    let env2 = [
        ("XDG_CONFIG_HOME", xdg.as_str()),
        ("FASTDL_CONFIG", team.as_str()),
    ];
    let r = fastdl_with(&dir.0, &["--print-config"], &env2, None).await;
    assert!(r.stdout.contains("connections = 5  # "), "{}", r.stdout);
    let r = fastdl_with(&dir.0, &["--print-config", "--no-config"], &env2, None).await;
    assert!(
        r.stdout.contains("connections = 8  # default"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_settings_reach_the_requests() {
    let srv = Server::start().await;
    srv.add("/a", Resource::new(payload(1000, 130)));
    let dir = TempDir::new();
    let cfg = write(
        &dir,
        "c.toml",
        "user_agent = \"team-agent/1\"\nheaders = { X-Team = \"blue\" }\ndir = \"from-config\"\n",
    );
    let r = fastdl(&dir.0, &["--config", &cfg, &srv.url("/a")]).await;
    assert_ok(&r);
    assert!(dir.path("from-config/a").exists());
    let seen = &srv.seen()[0];
    assert_eq!(seen.header("user-agent"), Some("team-agent/1"));
    assert_eq!(seen.header("x-team"), Some("blue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_config_mistake_is_named() {
    let dir = TempDir::new();
    let cases = [
        ("connectons = 4\n", ":1: connectons: unknown key"),
        (
            "timeout = \"30s\"\nchunk_size = \"1X\"\n",
            ":2: chunk_size: \"1X\" is not a size",
        ),
        ("retries = -1\n", ":1: retries: -1 is out of range"),
        (
            "limit_rate = true\n",
            ":1: limit_rate: expected a size like \"1M\", got boolean",
        ),
        ("connections = \n", ":1:"),
    ];
    for (text, want) in cases {
        let cfg = write(&dir, "bad.toml", text);
        let r = fastdl(&dir.0, &["--config", &cfg, "http://127.0.0.1:1/x"]).await;
        assert_eq!(r.code, 2, "{text:?}: {}", r.stderr);
        let expected = format!("fastdl: error: {cfg}{want}");
        assert!(r.stderr.starts_with(&expected), "{text:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    let r = fastdl(
        &dir.0,
        &["--config", "missing.toml", "http://127.0.0.1:1/x"],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.trim_end(),
        "fastdl: error: missing.toml: no such config file"
    );
}

/// `--generate` and `--help` to a full disk: one line and exit 6, not a panic; a reader that
/// stops early (`| head`) is no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_text_to_a_full_disk_is_an_error_and_to_a_closed_pipe_is_not() {
    let dir = TempDir::new();
    for args in [&["--generate", "man"][..], &["--help"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let child = command(&dir.0, args).stdout(full).spawn().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("fastdl: error: standard output: "),
            "{stderr}"
        );
    }
    let mut child = command(&dir.0, &["--generate", "man"]).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
