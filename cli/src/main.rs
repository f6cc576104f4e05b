//! The `sealant` binary: parse the command line, run, report.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    match sealant_cli::Cli::try_parse() {
        Ok(cli) => sealant_cli::exit_code(sealant_cli::run(cli)),
        Err(err) => sealant_cli::clap_exit(&err),
    }
}
