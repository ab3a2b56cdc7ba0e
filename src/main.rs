//! `oauth-state-store`: maintenance of an OAuth flow store file (sweep, stats, list, check,
//! migrate). See `oauth-state-store --help`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oauth-state-store: error: {}", cli::cause_chain(&*e));
            ExitCode::FAILURE
        }
    }
}
