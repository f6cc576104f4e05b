//! The `sealant` binary: parse the command line, run, report.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let program = argv.next().unwrap_or_default();
    if let Some(line) = sealant_cli::kubeseal_version(&program, &argv.collect::<Vec<_>>()) {
        print!("{line}");
        return ExitCode::SUCCESS;
    }
    match sealant_cli::Cli::try_parse() {
        Ok(cli) => sealant_cli::exit_code(sealant_cli::run(cli)),
        Err(err) => sealant_cli::clap_exit(&err),
    }
}
