//! What the command line prints: results on stdout, errors as one line on stderr (and one JSON
//! object on stdout under `--json`), and the exit status each failure maps to.

use std::io::{self, Write};
use std::process::ExitCode;

use oauth_state_store::Error;
use serde::Serialize;

/// Any failure of a command; printed as one line with its cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A command's result: the exit code, or an error to print.
pub type CliResult<T = ExitCode> = Result<T, BoxError>;

/// Exit status 1: a problem found or an operation refused.
pub const PROBLEM: u8 = 1;
/// Exit status 2: a usage error.
pub const USAGE: u8 = 2;
/// Exit status 3: the command could not run.
pub const COULD_NOT_RUN: u8 = 3;

/// A failure of the command line itself (not of the library), with its exit status.
#[derive(Debug)]
pub struct Failure {
    kind: &'static str,
    status: u8,
    message: String,
}

impl Failure {
    /// An operation refused (exit status 1).
    pub fn refused(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            status: PROBLEM,
            message: message.into(),
        }
    }

    /// A command that could not run (exit status 3).
    pub fn could_not_run(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            status: COULD_NOT_RUN,
            message: message.into(),
        }
    }

    /// A usage error (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            kind: "usage",
            status: USAGE,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The machine-readable name of a failure and its exit status.
fn classify(e: &(dyn std::error::Error + 'static)) -> (&'static str, u8) {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return (f.kind, f.status);
    }
    if e.downcast_ref::<io::Error>().is_some() {
        return ("io", COULD_NOT_RUN);
    }
    let Some(e) = e.downcast_ref::<Error>() else {
        return ("error", COULD_NOT_RUN);
    };
    match e {
        Error::InsecureFile { .. } => ("insecure_file", PROBLEM),
        Error::DatabaseTooNew { .. } => ("database_too_new", PROBLEM),
        Error::Corrupt { .. } => ("corrupt", PROBLEM),
        Error::NotAStore { .. } => ("not_a_store", PROBLEM),
        Error::MigrationNeeded { .. } => ("migration_needed", PROBLEM),
        Error::PermissionDenied { .. } => ("permission_denied", COULD_NOT_RUN),
        Error::InvalidInput { .. } => ("invalid_input", USAGE),
        Error::DatabaseMissing { .. } => ("database_missing", COULD_NOT_RUN),
        Error::Busy { .. } => ("busy", COULD_NOT_RUN),
        Error::StorageFull { .. } => ("storage_full", COULD_NOT_RUN),
        Error::ReadOnly { .. } => ("read_only", COULD_NOT_RUN),
        Error::Io { .. } => ("io", COULD_NOT_RUN),
        Error::Storage(_) => ("storage", COULD_NOT_RUN),
        Error::Pool(_) => ("pool", COULD_NOT_RUN),
        Error::Unavailable { .. } => ("unavailable", COULD_NOT_RUN),
        Error::Tls { .. } => ("tls", COULD_NOT_RUN),
        Error::CommitOutcomeUnknown { .. } => ("commit_outcome_unknown", COULD_NOT_RUN),
        _ => ("error", COULD_NOT_RUN),
    }
}

/// The JSON object of an error under `--json`.
#[derive(Serialize)]
struct ErrorReport<'a> {
    ok: bool,
    error: &'a str,
    message: &'a str,
    exit_status: u8,
}

/// Prints `e` as one line on stderr (and, with `json`, one JSON object on stdout) and returns
/// its exit status.
pub fn report_error(e: &(dyn std::error::Error + 'static), json: bool) -> ExitCode {
    let (kind, status) = classify(e);
    let message = cause_chain(e);
    if json {
        let report = ErrorReport {
            ok: false,
            error: kind,
            message: &message,
            exit_status: status,
        };
        // The line on stderr below still says what went wrong if stdout is gone.
        let _ = emit_json(&report);
    }
    eprintln!("oauth-state-store: error: {message}");
    ExitCode::from(status)
}

/// Exits for a command line clap refused (status 2), or prints `--help` / `--version` (0).
pub fn usage_error(e: clap::Error, json: bool) -> ! {
    use clap::error::ErrorKind as K;
    let informational = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if json && !informational {
        let text = e.kind().as_str().unwrap_or("invalid arguments").to_string();
        let detail = e.to_string();
        let first = detail
            .lines()
            .find(|l| !l.trim().is_empty())
            .map_or(text.as_str(), |l| l.trim_start_matches("error: "));
        let _ = emit_json(&ErrorReport {
            ok: false,
            error: "usage",
            message: first,
            exit_status: USAGE,
        });
    }
    e.exit()
}

/// The error and its sources on one line, each source once, without the raw `(os error N)`.
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut last = line.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let mut text = s.to_string();
        if s.downcast_ref::<io::Error>().is_some() {
            if let Some(at) = text.find(" (os error ") {
                text.truncate(at);
            }
            // "No such file or directory" reads as one clause of the line.
            let mut chars = text.chars();
            if let Some(first) = chars.next() {
                text = first.to_lowercase().chain(chars).collect();
            }
        }
        // SQLite's errors repeat their message one level down ("Error code 26: <message>").
        if !line.contains(&text) && !text.contains(&last) {
            line.push_str(": ");
            line.push_str(&text);
        }
        last = text;
        source = s.source();
    }
    line.replace('\n', " ")
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
pub fn emit(text: &str) -> CliResult<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Pretty JSON with a final newline.
pub fn emit_json(value: &impl Serialize) -> CliResult<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_numbers_stay_out_of_the_line() {
        let e = Error::Io {
            path: "/tmp/x.db".into(),
            source: io::Error::from_raw_os_error(2),
        };
        let line = cause_chain(&e);
        assert_eq!(line, "I/O error on /tmp/x.db: no such file or directory");
        assert_eq!(classify(&e), ("io", COULD_NOT_RUN));
    }

    #[test]
    fn each_failure_has_its_status() {
        let missing = Error::DatabaseMissing { path: "/x".into() };
        assert_eq!(classify(&missing).1, COULD_NOT_RUN);
        let insecure = Error::InsecureFile {
            path: "/x".into(),
            reason: "r".into(),
        };
        assert_eq!(classify(&insecure).1, PROBLEM);
        assert_eq!(classify(&Failure::usage("u")).1, USAGE);
        assert_eq!(
            classify(&Failure::refused("damaged", "d")),
            ("damaged", PROBLEM)
        );
    }
}
