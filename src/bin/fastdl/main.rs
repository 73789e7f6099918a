//! The `fastdl` binary: parse arguments and the config file, build the jobs, run them, turn the
//! result into an exit code. Downloading is the library's; this binary owns the command line,
//! the config file, the input formats, the rendering and the exit codes.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use fastdl::{CookieJar, Error};

mod batch;
mod cli;
mod config;
mod exit;
mod fragment;
mod info_json;
mod input;
mod job;
mod render;
mod report;
mod settings;
mod shard;
mod units;

use job::Job;
use render::Renderer;

fn main() -> ExitCode {
    match prepare() {
        Ok(Some((args, jobs))) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("fastdl: error: cannot start the async runtime: {e}");
                    return ExitCode::from(exit::IO);
                }
            };
            ExitCode::from(runtime.block_on(run(args, jobs)))
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(report(&e)),
    }
}

/// Everything that can fail before a download starts, so bad input never half-runs a batch.
/// `None` when there is nothing to download (`--help`, `--version`, `--print-config`).
fn prepare() -> Result<Option<(cli::Args, Vec<Job>)>, Error> {
    let mut args = cli::parse()?;
    if args.help {
        print!("{}", cli::help());
        return Ok(None);
    }
    if args.version {
        println!("fastdl {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    config::apply(&mut args)?;
    check_stdin(&args)?;
    let cookies = cookie_jar(&args)?;
    if args.print_config {
        print!("{}", fastdl::redact(&args.print_config()));
        return Ok(None);
    }
    let jobs = jobs(&args)?;
    if jobs.is_empty() {
        // Only a shard can be empty (an empty list is an error): nothing to do is success.
        if !args.quiet {
            eprintln!("fastdl: this shard holds none of the list's entries");
        }
        return Ok(None);
    }
    args.cookie_jar = cookies;
    Ok(Some((args, jobs)))
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

/// The command line's URLs, then the input file's entries.
fn jobs(args: &cli::Args) -> Result<Vec<Job>, Error> {
    let mut jobs: Vec<Job> = args
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
    if let Some(file) = &args.input_file {
        let (text, name) = read_source(file, "input list")?;
        let entries = input::parse(&text, &name)?;
        input::check_duplicates(&entries, args.dir.as_deref(), &name)?;
        for mut e in entries {
            // Entries' out= and dir= are relative to -d.
            e.job.dir = match (&args.dir, e.job.dir.take()) {
                (Some(d), Some(sub)) => Some(d.join(sub)),
                (d, sub) => sub.or_else(|| d.clone()),
            };
            jobs.push(e.job);
        }
    }
    if let Some(file) = &args.fragments {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Invalid(format!("{file}: cannot read the fragment job: {e}")))?;
        jobs.extend(fragment::parse(&text, file)?);
    }
    if let Some(source) = &args.info_json {
        let (text, name) = read_source(source, "info JSON")?;
        for mut job in info_json::parse(&text, args.output.as_ref(), &name)? {
            job.dir = args.dir.clone();
            jobs.push(job);
        }
    }
    if jobs.is_empty() {
        return Err(Error::Invalid("the input list has no URL".into()));
    }
    if args.save_failed.is_some() && (args.fragments.is_some() || args.info_json.is_some()) {
        return Err(Error::Invalid(
            "--save-failed saves URLs and -i lists, not --fragments or --info-json".into(),
        ));
    }
    if args.report.as_deref() == Some("-")
        && jobs
            .iter()
            .any(|j| j.output.as_deref() == Some("-".as_ref()))
    {
        return Err(Error::Invalid(
            "--report - and -o - cannot both write to standard output".into(),
        ));
    }
    if let Some(spec) = args.shard {
        if args.fragments.is_some() || args.info_json.is_some() {
            return Err(Error::Invalid(
                "--shard splits URLs and -i lists, not --fragments or --info-json".into(),
            ));
        }
        let shard = spec
            .resolve(|name| std::env::var(name).ok())
            .map_err(Error::Invalid)?;
        jobs.retain(|job| shard.takes(&job.shard_key()));
    }
    Ok(jobs)
}

async fn run(args: cli::Args, jobs: Vec<Job>) -> u8 {
    // One plain file: its extra connections are worth opening early (preconnecting).
    let preconnect = !args.no_preconnect && jobs.len() == 1 && jobs[0].pieces.is_empty();
    let downloader = match args.downloader().preconnect(preconnect).build() {
        Ok(d) => d,
        Err(e) => return report(&e),
    };
    let mut render = args.render_options();
    render.files = jobs.len();
    let rendering = Renderer::spawn(render, downloader.events());
    let stop = downloader.clone();
    tokio::spawn(async move {
        // The first signal saves every running file's progress; a second one does not wait.
        wait_for_signal().await;
        stop.interrupt();
        wait_for_signal().await;
        std::process::exit(exit::INTERRUPTED.into());
    });
    let report = match args
        .report
        .as_deref()
        .map(report::Report::create)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    // What --save-failed may write, in the input list's own words.
    let entries: Vec<Option<String>> = match args.save_failed {
        Some(_) => jobs
            .iter()
            .map(|j| input::format(j, args.dir.as_deref()))
            .collect(),
        None => Vec::new(),
    };
    let requests = jobs
        .into_iter()
        .map(|job| args.request(job.into_request()))
        .collect();
    let failures_allowed = args.fragments.is_some() && !args.abort_on_unavailable_fragment;
    let ran = batch::run(&downloader, requests, failures_allowed, report).await;
    rendering.finish(Some(ran.summary)).await;
    match &args.save_failed {
        Some(path) => save_failed(path, &entries, &ran.unfinished).unwrap_or(ran.code),
        None => ran.code,
    }
}

/// Writes `--save-failed`: the unfinished entries. Returns an exit code only if that failed.
fn save_failed(path: &Path, entries: &[Option<String>], unfinished: &[usize]) -> Option<u8> {
    let saved: Vec<&str> = unfinished
        .iter()
        .filter_map(|&i| entries[i].as_deref())
        .collect();
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
