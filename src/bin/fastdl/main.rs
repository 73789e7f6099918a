//! The `fastdl` binary: parse arguments and the config file, build the jobs, run them, turn the
//! result into an exit code. Downloading is the library's; this binary owns the command line,
//! the config file, the input formats, the rendering and the exit codes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fastdl::{CookieJar, Error};

mod batch;
mod cli;
mod config;
mod exit;
mod fragment;
mod generate;
mod info_json;
mod input;
mod job;
mod list;
mod render;
mod report;
mod settings;
mod shard;
mod units;

use job::Job;
use list::List;
use render::Renderer;

fn main() -> ExitCode {
    match prepare() {
        Ok(Some((args, plan))) => {
            // One thread runs every connection, as curl and aria2c do. A download spends its
            // time waiting on sockets and the kernel's copies; a second runtime thread mostly
            // woke and slept again (tokio wakes an idle worker to share new work), a context
            // switch each time. 2000 files of 32 KiB: 11,900 context switches on two threads,
            // 9,400 on one; 1 GiB on loopback: 1.41 CPU-s and 1.17 (medians of 5 interleaved
            // runs), and over TLS the same wall time. Blocking work has threads of its own
            // (the directory and sync threads, the blocking pool).
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("fastdl: error: cannot start the async runtime: {e}");
                    return ExitCode::from(exit::IO);
                }
            };
            // The run is a task, not the future `block_on` drives: waking that one (every
            // file's end does) writes to the runtime's eventfd even from its own thread, where
            // a task's wake is a push onto the run queue.
            let code = runtime.block_on(async { tokio::spawn(run(args, plan)).await });
            ExitCode::from(code.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(report(&e)),
    }
}

/// Everything that can fail before a download starts, so bad input never half-runs a batch.
/// `None` when there is nothing to download (`--help`, `--version`, `--print-config`, an empty
/// shard).
fn prepare() -> Result<Option<(cli::Args, Plan)>, Error> {
    let mut args = cli::parse()?;
    if args.help {
        return print_out(&cli::help()).map(|()| None);
    }
    if let Some(kind) = args.generate {
        return print_out(&generate::generate(kind)).map(|()| None);
    }
    if args.version {
        return print_out(&format!("fastdl {}\n", env!("CARGO_PKG_VERSION"))).map(|()| None);
    }
    config::apply(&mut args)?;
    check_stdin(&args)?;
    let cookies = cookie_jar(&args)?;
    if args.print_config {
        return print_out(&fastdl::redact(&args.print_config())).map(|()| None);
    }
    let plan = plan(&args)?;
    if plan.total == Some(0) {
        return nothing_to_do(&args).map(|()| None);
    }
    args.cookie_jar = cookies;
    Ok(Some((args, plan)))
}

/// Writes `text` to standard output; a full disk or a closed pipe is an error (exit 6), never a
/// panic that leaves a shell completion or man page cut short without saying so.
fn print_out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `fastdl --help | head`: the reader has what it wanted.
        Err(e) if closed_pipe(&e) => Ok(()),
        r => r.map_err(|e| Error::Io {
            path: "standard output".into(),
            source: std::sync::Arc::new(e),
        }),
    }
}

/// Whether a write failed because the reader went away. Windows reports that as
/// ERROR_NO_DATA (232) or ERROR_PIPE_NOT_CONNECTED (233), which std does not map to BrokenPipe.
fn closed_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
        || (cfg!(windows) && matches!(e.raw_os_error(), Some(232 | 233)))
}

/// A run with no job: success for a shard that holds none of the list, else an error.
fn nothing_to_do(args: &cli::Args) -> Result<(), Error> {
    if args.shard.is_none() {
        return Err(Error::Invalid("the input list has no URL".into()));
    }
    if !args.quiet {
        eprintln!("fastdl: this shard holds none of the list's entries");
    }
    Ok(())
}

/// Reads `--cookies FILE|-` (before anything starts, so a bad jar is a usage error).
fn cookie_jar(args: &cli::Args) -> Result<Option<CookieJar>, Error> {
    let Some(source) = &args.cookies else {
        return Ok(None);
    };
    let (text, name) = read_source(source, "cookies")?;
    Ok(Some(CookieJar::parse(&text, &name)?))
}

/// The text of `FILE`, or of standard input for `-`, and a name for messages.
fn read_source(source: &str, what: &str) -> Result<(String, String), Error> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Invalid(format!("cannot read the {what} from stdin: {e}")))?;
        Ok((text, "stdin".into()))
    } else {
        let text = std::fs::read_to_string(source)
            .map_err(|e| Error::Invalid(format!("{source}: cannot read the {what}: {e}")))?;
        Ok((text, source.to_string()))
    }
}

/// At most one of `--cookies`, `-i` and `--info-json` may read standard input.
fn check_stdin(args: &cli::Args) -> Result<(), Error> {
    let readers: Vec<&str> = [
        (&args.cookies, "--cookies -"),
        (&args.input_file, "-i -"),
        (&args.info_json, "--info-json -"),
    ]
    .into_iter()
    .filter(|(source, _)| source.as_deref() == Some("-"))
    .map(|(_, flag)| flag)
    .collect();
    if readers.len() > 1 {
        return Err(Error::Invalid(format!(
            "{} cannot all read standard input",
            readers.join(" and ")
        )));
    }
    Ok(())
}

/// What a run downloads: the jobs known up front, then the `-i` list's, read as they are
/// downloaded (list.rs).
struct Plan {
    upfront: Vec<Job>,
    list: Option<List>,
    /// Jobs in all, when known before the run (not for a list on standard input).
    total: Option<usize>,
}

/// The command line's URLs, the fragment job, the info JSON, then the input list (a file is
/// read through and checked here; standard input only as it downloads).
fn plan(args: &cli::Args) -> Result<Plan, Error> {
    let mut upfront: Vec<Job> = args
        .urls
        .iter()
        .map(|url| Job {
            url: url.clone(),
            output: args.output.clone(),
            dir: args.dir.clone(),
            checksums: args.checksums.clone(),
            ..Job::default()
        })
        .collect();
    if let Some(file) = &args.fragments {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Invalid(format!("{file}: cannot read the fragment job: {e}")))?;
        upfront.extend(fragment::parse(&text, file)?);
    }
    if let Some(source) = &args.info_json {
        let (text, name) = read_source(source, "info JSON")?;
        for mut job in info_json::parse(&text, args.output.as_ref(), &name)? {
            job.dir = args.dir.clone();
            upfront.push(job);
        }
    }
    let joined = args.fragments.is_some() || args.info_json.is_some();
    if args.save_failed.is_some() && joined {
        return Err(Error::Invalid(
            "--save-failed saves URLs and -i lists, not --fragments or --info-json".into(),
        ));
    }
    if args.report.as_deref() == Some("-")
        && upfront
            .iter()
            .any(|j| j.output.as_deref() == Some("-".as_ref()))
    {
        return Err(Error::Invalid(
            "--report - and -o - cannot both write to standard output".into(),
        ));
    }
    let shard = match args.shard {
        Some(_) if joined => {
            return Err(Error::Invalid(
                "--shard splits URLs and -i lists, not --fragments or --info-json".into(),
            ))
        }
        Some(spec) => Some(
            spec.resolve(|name| std::env::var(name).ok())
                .map_err(Error::Invalid)?,
        ),
        None => None,
    };
    if let Some(shard) = shard {
        upfront.retain(|job| shard.takes(&job.shard_key()));
    }
    let list = args.input_file.as_ref().map(|file| List {
        path: (file != "-").then(|| PathBuf::from(file)),
        dir: args.dir.clone(),
        shard,
    });
    let total = match &list {
        None => Some(upfront.len()),
        Some(list) if list.path.is_some() => Some(upfront.len() + list.check()?),
        Some(_) => None,
    };
    Ok(Plan {
        upfront,
        list,
        total,
    })
}

async fn run(args: cli::Args, plan: Plan) -> u8 {
    // One plain file: its extra connections are worth opening early (preconnecting).
    let preconnect = !args.no_preconnect
        && plan.total == Some(1)
        && plan.upfront.iter().all(|j| j.pieces.is_empty());
    let downloader = match args.downloader().preconnect(preconnect).build() {
        Ok(d) => d,
        Err(e) => return report(&e),
    };
    let report_file = match args
        .report
        .as_deref()
        .map(report::Report::create)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    let mut render = args.render_options();
    render.files = plan.total;
    let rendering = Renderer::spawn(render, downloader.events());
    let stop = downloader.clone();
    tokio::spawn(async move {
        // The first signal saves every running file's progress; a second one does not wait.
        wait_for_signal().await;
        stop.interrupt();
        wait_for_signal().await;
        std::process::exit(exit::INTERRUPTED.into());
    });
    let list = plan.list.map(|list| {
        let checked = list.path.is_some();
        list.spawn(checked)
    });
    let opts = batch::Options {
        failures_allowed: args.fragments.is_some() && !args.abort_on_unavailable_fragment,
        report: report_file,
        save_failed: args.save_failed.is_some(),
        dir: args.dir.clone(),
    };
    let args = std::sync::Arc::new(args);
    let jobs = list::Jobs::new(plan.upfront, list);
    let ran = batch::run(&downloader, jobs, std::sync::Arc::clone(&args), opts).await;
    if ran.jobs == 0 {
        // A list on standard input that held nothing (for this shard).
        rendering.finish(None).await;
        return match ran.list_error.map_or_else(|| nothing_to_do(&args), Err) {
            Ok(()) => exit::OK,
            Err(e) => report(&e),
        };
    }
    rendering.finish(Some(ran.summary)).await;
    let mut code = ran.code;
    if let Some(e) = &ran.list_error {
        report(e);
    }
    if let Some(path) = &args.save_failed {
        code = save_failed(path, &ran.unfinished).unwrap_or(code);
    }
    code
}

/// Writes `--save-failed`: the unfinished entries. Returns an exit code only if that failed.
fn save_failed(path: &Path, unfinished: &[Option<String>]) -> Option<u8> {
    let saved: Vec<&str> = unfinished.iter().flatten().map(String::as_str).collect();
    if saved.len() < unfinished.len() {
        eprintln!(
            "fastdl: warning: --save-failed {}: {} of the unfinished entries cannot be written as \
             an input list (an -o outside the output directory) and are left out",
            path.display(),
            unfinished.len() - saved.len()
        );
    }
    match report::save_failed(path, &saved) {
        Ok(()) => None,
        Err(e) => {
            eprintln!("fastdl: error: --save-failed {}: {e}", path.display());
            Some(exit::IO)
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM; on Windows Ctrl-C, Ctrl-Break or the console closing.
#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(windows)]
async fn wait_for_signal() {
    use tokio::signal::windows::{ctrl_break, ctrl_close};
    let (Ok(mut brk), Ok(mut close)) = (ctrl_break(), ctrl_close()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = brk.recv() => {}
        _ = close.recv() => {}
    }
}

/// Prints a run-ending error as one line (passwords in URLs hidden) and returns its exit code.
fn report(e: &Error) -> u8 {
    eprintln!("fastdl: error: {}", fastdl::redact(&e.to_string()));
    exit::code(e)
}
