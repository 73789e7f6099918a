//! Names, existing files, redirects and credentials.

use crate::server::{payload, Resource, Server};
use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_names_cannot_escape_the_directory() {
    let srv = Server::start().await;
    let body = payload(1000, 40);
    let mut res = Resource::new(body.clone());
    res.headers.push((
        "Content-Disposition".into(),
        "attachment; filename=\"../../escaped.bin\"".into(),
    ));
    srv.add("/x", res);
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path("out")).unwrap();
    assert_ok(&fastdl(&dir.0, &["-d", "out", &srv.url("/x")]).await);
    assert_eq!(sha256_file(&dir.path("out/escaped.bin")), sha256(&body));
    assert_eq!(
        dir.files(),
        vec!["out"],
        "nothing outside the output directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_file_is_not_overwritten_unless_asked() {
    let srv = Server::start().await;
    let body = payload(1000, 41);
    srv.add("/f", Resource::new(body.clone()));
    let dir = TempDir::new();
    std::fs::write(dir.path("f"), b"precious").unwrap();
    let r = fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), b"precious");
    assert!(srv.seen().is_empty(), "refused before any request");
    assert_ok(&fastdl(&dir.0, &["--overwrite", "-o", "f", &srv.url("/f")]).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
}

/// Two servers (two origins): `a/f` redirects to `b/f`, which serves `size` bytes.
async fn redirect_to_another_origin(size: usize, seed: u64) -> (Server, Server, Vec<u8>) {
    let a = Server::start().await;
    let b = Server::start().await;
    let body = payload(size, seed);
    b.add("/f", Resource::new(body.clone()));
    a.add(
        "/f",
        Resource {
            redirect: Some(b.url("/f")),
            ..Resource::default()
        },
    );
    (a, b, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let (a, b, body) = redirect_to_another_origin(50_000, 42).await;
    a.add(
        "/same",
        Resource {
            redirect: Some("/g".into()),
            ..Resource::default()
        },
    );
    a.add("/g", Resource::new(body.clone()));
    let dir = TempDir::new();
    let creds = [
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "Cookie: sid=1",
        "-H",
        "X-Plain: yes",
    ];
    let mut args = creds.to_vec();
    let url = a.url("/f");
    args.extend(["-o", "f", &url]);
    assert_ok(&fastdl(&dir.0, &args).await);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert_eq!(a.seen()[0].header("authorization"), Some("Bearer s3cret"));
    for s in b.seen() {
        assert_eq!(
            s.header("authorization"),
            None,
            "Authorization leaked to another origin"
        );
        assert_eq!(s.header("cookie"), None, "Cookie leaked to another origin");
        assert_eq!(s.header("x-plain"), Some("yes"));
    }
    // Same origin: credentials stay.
    let mut args = creds.to_vec();
    let url = a.url("/same");
    args.extend(["-o", "g", &url]);
    assert_ok(&fastdl(&dir.0, &args).await);
    let g: Vec<_> = a.seen().into_iter().filter(|s| s.path == "/g").collect();
    assert!(g
        .iter()
        .all(|s| s.header("authorization") == Some("Bearer s3cret")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_scheme_is_refused() {
    let srv = Server::start().await;
    srv.add(
        "/f",
        Resource {
            redirect: Some("file:///etc/passwd".into()),
            ..Resource::default()
        },
    );
    let dir = TempDir::new();
    let r = fastdl(&dir.0, &["-o", "f", &srv.url("/f")]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("refusing to follow a redirect to file:///etc/passwd"),
        "{}",
        r.stderr
    );
    assert!(dir.files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_usage_errors() {
    let dir = TempDir::new();
    for args in [
        vec!["-H", "X: a\r\nInjected: 1", "http://127.0.0.1:1/"],
        vec!["file:///etc/passwd"],
        vec!["--connections", "0", "http://127.0.0.1:1/"],
    ] {
        let r = fastdl(&dir.0, &args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
        assert!(r.stderr.starts_with("fastdl: error: "), "{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_scoped_by_host_and_path_across_redirects() {
    let a = Server::start().await;
    let b = Server::start().await;
    let body = payload(20_000, 43);
    b.add("/f", Resource::new(body.clone()));
    // Another host name for the same machine: cookies for 127.0.0.1 must not go there.
    let to_b = format!("http://localhost:{}/f", b.addr.port());
    a.add(
        "/f",
        Resource {
            redirect: Some(to_b),
            ..Resource::default()
        },
    );
    let jar = "# Netscape HTTP Cookie File\n\
               127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tlocal-secret\n\
               127.0.0.1\tFALSE\t/private/\tFALSE\t0\tpriv\tp\n\
               .example.com\tTRUE\t/\tFALSE\t0\tother\tx\n";
    let dir = TempDir::new();
    let r = fastdl_with(
        &dir.0,
        &["--cookies", "-", "-o", "f", &a.url("/f")],
        &[],
        Some(jar.as_bytes()),
    )
    .await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    assert_eq!(
        a.seen()[0].header("cookie"),
        Some("sid=local-secret"),
        "only the matching cookie"
    );
    for s in b.seen() {
        assert_eq!(
            s.header("cookie"),
            None,
            "a cookie followed the redirect to another host"
        );
    }
    let r = fastdl_with(
        &dir.0,
        &["--cookies", "-", "-o", "g", &a.url("/f")],
        &[],
        Some(b"not a jar\n"),
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("fastdl: error: stdin:1: expected 7 TAB-separated fields"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_stay_with_their_host_and_out_of_the_output() {
    let (a, b, body) = redirect_to_another_origin(300_000, 43).await;
    let dir = TempDir::new();
    let url = a.url("/f").replace("://", "://user:s3cret@");
    let r = fastdl(&dir.0, &["--progress", "json", "-v", &url]).await;
    assert_ok(&r);
    assert_eq!(sha256_file(&dir.path("f")), sha256(&body));
    // "user:s3cret" in Basic form.
    assert_eq!(
        a.seen()[0].header("authorization"),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
    assert!(b.seen().iter().all(|s| s.header("authorization").is_none()));
    assert!(
        !r.stderr.contains("s3cret"),
        "password printed:\n{}",
        r.stderr
    );
    // Nor in an error, in a run of human-readable lines.
    let url = a.url("/missing").replace("://", "://user:s3cret@");
    let r = fastdl(&dir.0, &["--progress", "lines", &url]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("user:***@"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("s3cret"),
        "password printed:\n{}",
        r.stderr
    );
}

/// Several fastdl processes on one output (what `xargs -P` users with colliding names get): one
/// downloads, every other exits at once with code 7 and one clear line, and the file is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_output_exits_at_once() {
    let srv = Server::start().await;
    let body = payload(8 << 20, 77);
    srv.add("/t.mp4", Resource::new(body.clone()));
    // About 4 s over 8 connections: the others run while it does.
    srv.cap(256 << 10);
    let dir = TempDir::new();
    let url = srv.url("/t.mp4");
    let args = ["-q", "--overwrite", "--output=x.mp4.part", url.as_str()];
    let first = command(&dir.0, &args).spawn().unwrap();
    // The first holds the lock once its .part exists.
    let part = dir.path("x.mp4.part.part");
    assert!(appears(&part).await, "the first download never started");
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = fastdl(&dir.0, &args).await;
        assert_eq!(r.code, 7, "{}", r.stderr);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("another fastdl is downloading this file now"),
            "{}",
            r.stderr
        );
    }
    let out = first.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&dir.path("x.mp4.part")), sha256(&body));
}

/// A file that appears at the output's name while the download runs is someone else's: the
/// finished download does not replace it (exit 4, one line naming it), and keeps its bytes in
/// the `.part`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_made_at_the_name_meanwhile_is_not_replaced() {
    let srv = Server::start().await;
    let body = payload(4 << 20, 79);
    srv.add("/late.bin", Resource::new(body.clone()));
    // About 2 s over 8 connections.
    srv.cap(256 << 10);
    let dir = TempDir::new();
    let child = command(&dir.0, &["-q", "-o", "late.bin", &srv.url("/late.bin")])
        .spawn()
        .unwrap();
    let part = dir.path("late.bin.part");
    assert!(appears(&part).await, "the download never started");
    let mine = b"the user's own file, made meanwhile";
    std::fs::write(dir.path("late.bin"), mine).unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("late.bin: already exists"), "{stderr}");
    assert_eq!(std::fs::read(dir.path("late.bin")).unwrap(), mine);
    assert_eq!(sha256_file(&part), sha256(&body), "the download is kept");
}

/// SIGTERM ends a fastdl waiting in any phase, saving progress (exit 130).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_always_ends_fastdl() {
    let srv = Server::start().await;
    srv.add("/slow", Resource::new(payload(8 << 20, 78)));
    srv.cap(1 << 20);
    let dir = TempDir::new();
    let child = command(&dir.0, &["-q", "-o", "s.bin", &srv.url("/slow")])
        .spawn()
        .unwrap();
    let state = dir.path("s.bin.part.fastdl");
    let t0 = std::time::Instant::now();
    while saved_bytes(&state) == 0 && t0.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(interrupt(child, "-TERM").await, 130);
    assert!(saved_bytes(&state) > 0, "progress was saved");
}

/// Every byte fastdl writes under `dir` (file contents and their extended attributes), and the
/// journals of `state`, as text.
fn everything_written(dirs: &[&std::path::Path]) -> String {
    let mut all = String::new();
    let mut stack: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(&p).unwrap_or_default(),
        ));
        for name in xattr::list(&p).into_iter().flatten() {
            if let Ok(Some(v)) = xattr::get(&p, &name) {
                all.push_str(&String::from_utf8_lossy(&v));
            }
        }
    }
    all
}

/// A signed URL's secrets (and a password) in every way fastdl could show or keep them: -v
/// lines, JSON events, a redirect's Location, an error, the resume state of an interrupted
/// download, the completion record. None may appear; the request still carries them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_url_secrets_never_leak() {
    const SECRETS: [&str; 4] = ["PASSWD-7f3a", "SIG-91be2c", "TOKEN-c0ffee", "CRED-44aa01"];
    let srv = Server::start().await;
    let query = format!(
        "?X-Amz-Credential={}&X-Amz-Signature={}&token={}&id=7",
        SECRETS[3], SECRETS[1], SECRETS[2]
    );
    let body = payload(3 << 20, 79);
    srv.add(&format!("/f.bin{query}"), Resource::new(body.clone()));
    // A redirect whose Location is itself signed.
    let mut hop = Resource::new(Vec::new());
    hop.redirect = Some(srv.url(&format!("/f.bin{query}")));
    srv.add(&format!("/go{query}"), hop);
    let secret_url = |path: &str| {
        srv.url(&format!("{path}{query}"))
            .replace("://", &format!("://user:{}@", SECRETS[0]))
    };
    let dir = TempDir::new();
    let check = |what: &str, text: &str| {
        for s in SECRETS {
            assert!(!text.contains(s), "{what} shows {s}:\n{text}");
        }
    };

    // A whole download, every line and event, through the redirect.
    let r = fastdl(
        &dir.0,
        &["-v", "--progress", "json", "-x", "4", &secret_url("/go")],
    )
    .await;
    assert_ok(&r);
    check("the JSON events and -v lines", &r.stderr);
    assert!(r.stderr.contains("X-Amz-Signature=***"), "{}", r.stderr);
    assert_eq!(sha256_file(&dir.path("f.bin")), sha256(&body));
    let seen = srv.seen();
    assert!(
        seen.iter().any(|s| s.path.contains(SECRETS[1])),
        "the request carried the secret"
    );
    // The same in plain lines, and the completion record of the finished file.
    let r = fastdl(&dir.0, &["-v", "--overwrite", &secret_url("/f.bin")]).await;
    assert_ok(&r);
    check("plain lines", &r.stderr);

    // An error.
    let r = fastdl(&dir.0, &["--progress", "lines", &secret_url("/missing")]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    check("an error", &r.stderr);

    // The resume state of an interrupted download.
    srv.cap(512 << 10);
    let child = command(&dir.0, &["-q", "-o", "slow.bin", &secret_url("/f.bin")])
        .spawn()
        .unwrap();
    let state = dir.path("slow.bin.part.fastdl");
    let t0 = std::time::Instant::now();
    while saved_bytes(&state) == 0 && t0.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(interrupt(child, "-INT").await, 130);
    assert!(state.exists());
    check("the files fastdl wrote", &everything_written(&[&dir.0]));
}
