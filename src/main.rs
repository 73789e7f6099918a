//! The `fastdl` binary: parse arguments, run the downloads, turn the result into an exit code.
//! Everything else is in the library.

use std::process::ExitCode;
use std::sync::Arc;

use fastdl::error::exit;
use fastdl::progress::Renderer;
use fastdl::shutdown::Shutdown;
use fastdl::{cli, download, Context, Error, Job};

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fastdl: error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if args.help {
        print!("{}", cli::HELP);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("fastdl {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
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
    ExitCode::from(runtime.block_on(run(args)))
}

async fn run(args: cli::Args) -> u8 {
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.trigger();
    });
    let (events, renderer) = Renderer::spawn(args.render_options());
    let ctx = match Context::new(args.options(), events, shutdown) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            drop(renderer);
            eprintln!("fastdl: error: {e}");
            return e.exit_code();
        }
    };
    let mut code = exit::OK;
    for (id, url) in args.urls.iter().enumerate() {
        let job = Job {
            url: url.clone(),
            output: args.output.clone(),
            dir: args.dir.clone(),
            checksums: args.checksums.clone(),
        };
        if let Err(e) = download(Arc::clone(&ctx), id, job).await {
            if code == exit::OK {
                code = e.exit_code();
            }
            if matches!(e, Error::Interrupted) {
                code = exit::INTERRUPTED;
                break;
            }
        }
    }
    drop(ctx);
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
