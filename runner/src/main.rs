//! `graft`: run module upgrades tenant by tenant.

mod cli;
mod demo;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", output::one_line(&error));
            ExitCode::from(cli::EXIT_BAD_INPUT)
        }
    }
}
