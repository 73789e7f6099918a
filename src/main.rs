//! The `fastdl` binary: parse arguments and the config file, build the jobs, run them, turn the
//! result into an exit code. Everything else is in the library.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use fastdl::error::exit;
use fastdl::progress::Renderer;
use fastdl::shutdown::Shutdown;
use fastdl::{batch, cli, config, input, Context, Error, Job};

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
        Err(e) => {
            eprintln!("fastdl: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Everything that can fail before a download starts, so bad input never half-runs a batch.
/// `None` when there is nothing to download (`--help`, `--version`, `--print-config`).
fn prepare() -> Result<Option<(cli::Args, Vec<Job>)>, Error> {
    let mut args = cli::parse()?;
    if args.help {
        print!("{}", cli::HELP);
        return Ok(None);
    }
    if args.version {
        println!("fastdl {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    config::apply(&mut args)?;
    let cookies = cookie_jar(&args)?;
    if args.print_config {
        print!("{}", args.print_config());
        return Ok(None);
    }
    let jobs = jobs(&args)?;
    args.cookie_jar = cookies;
    Ok(Some((args, jobs)))
}

/// Reads `--cookies FILE|-` (before anything starts, so a bad jar is a usage error).
fn cookie_jar(args: &cli::Args) -> Result<Option<Arc<fastdl::cookies::CookieJar>>, Error> {
    let Some(source) = &args.cookies else {
        return Ok(None);
    };
    if source == "-" && args.input_file.as_deref() == Some("-") {
        return Err(Error::Usage(
            "--cookies - and -i - cannot both read standard input".into(),
        ));
    }
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Usage(format!("cannot read cookies from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| Error::Usage(format!("{source}: cannot read cookies file: {e}")))?
    };
    let name = if source == "-" {
        "stdin"
    } else {
        source.as_str()
    };
    Ok(Some(Arc::new(fastdl::cookies::CookieJar::parse(
        &text, name,
    )?)))
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
        let (text, name) = if file == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::Usage(format!("cannot read the input list from stdin: {e}")))?;
            (text, "stdin".to_string())
        } else {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::Usage(format!("{file}: cannot read input file: {e}")))?;
            (text, file.clone())
        };
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
            .map_err(|e| Error::Usage(format!("{file}: cannot read fragment job: {e}")))?;
        jobs.extend(fastdl::fragment::parse(&text, file)?);
    }
    if jobs.is_empty() {
        return Err(Error::Usage("the input list has no URL".into()));
    }
    Ok(jobs)
}

async fn run(args: cli::Args, jobs: Vec<Job>) -> u8 {
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.trigger();
    });
    let mut render = args.render_options();
    render.files = jobs.len();
    let (events, renderer) = Renderer::spawn(render);
    let code = match Context::new(args.options(), events, shutdown) {
        Ok(ctx) => batch::run(Arc::new(ctx), jobs).await,
        Err(e) => {
            eprintln!("fastdl: error: {e}");
            e.exit_code()
        }
    };
    let _ = renderer.await;
    code
}

/// SIGINT (Ctrl-C) or SIGTERM.
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
