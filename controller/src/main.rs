//! `sealant-controller`: parses the flags, sets up logging, and hands over to
//! [`sealant_controller::run`]. Nothing else lives here, so that the library's tests
//! reach everything.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use sealant_controller::Flags;
use sealant_controller::flags::LogFormat;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let program = argv.next().unwrap_or_default();
    let args: Vec<_> = argv.collect();
    if let Some(line) = sealant_controller::flags::bitnami_version(&program, &args) {
        print!("{line}");
        return ExitCode::SUCCESS;
    }
    let flags = Flags::parse();
    init_logging(&flags);
    match start(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "sealant-controller stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(flags: Flags) -> anyhow::Result<()> {
    // RSA work runs on the blocking pool and is CPU-bound: more threads than cores add
    // no throughput, only stacks and allocator arenas (memory).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(cores.max(2))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(sealant_controller::run(flags))?;
    Ok(())
}

/// `--log-level` sets the level (`RUST_LOG`, when set, overrides it for finer
/// control); `--log-format` picks text or one JSON object per line. Logs go to
/// stdout, as Bitnami's `--log-info-stdout` default does, in colour only when stdout
/// is a terminal and `NO_COLOR` is unset (a log file or a Pod's log gets plain text).
fn init_logging(flags: &Flags) {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(flags.log_level.to_ascii_lowercase()));
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    match flags.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
