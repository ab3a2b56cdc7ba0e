//! `oauth-state-store`: maintenance of an OAuth flow store file (sweep, stats, list, check,
//! migrate, completions). See `oauth-state-store --help`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    let args = cli::parse();
    let json = args.json();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => cli::report_error(&*e, json),
    }
}
