//! `completions`: a shell completion script on stdout.

use std::process::ExitCode;

use clap_complete::Shell;

use super::output::emit;
use super::output::CliResult;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

pub fn run(mut command: clap::Command, args: Args) -> CliResult {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "oauth-state-store", &mut script);
    emit(&String::from_utf8(script)?)?;
    Ok(ExitCode::SUCCESS)
}
