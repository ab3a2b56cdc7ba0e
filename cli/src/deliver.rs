//! `deliver`: records a callback the browser could not bring to a listener (its address bar's
//! URL, pasted), exactly as the listener would have.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{Error, FlowInfo, Status};
use serde::Serialize;

use super::context::Context;
use super::open::open_existing;
use super::output::CliResult;
use super::output::{emit, emit_json, Failure};

/// The longest line `deliver -` reads.
const MAX_LINE: u64 = 16 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The callback URL the browser ended on, or `-` to read it from stdin (keeps the code out
    /// of shell history)
    #[arg(value_name = "URL")]
    url: String,
}

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    outcome: &'static str,
    status: Status,
    server_id: &'a str,
}

pub fn run(path: &Path, ctx: &Context, args: Args) -> CliResult {
    let url = if args.url == "-" {
        read_stdin()?
    } else {
        // Recorded or not, the code now sits in the shell's history; if it is not recorded
        // (a wrong --db, say) it stays usable there until it expires at the server.
        if args.url.contains("code=") && std::io::stderr().is_terminal() {
            eprintln!(
                "note: the URL is in your shell history now; `oauth-state-store deliver -` \
                 reads it from stdin instead"
            );
        }
        args.url
    };
    let store = open_existing(path, ctx.options())?;
    let info = store.deliver(&url).map_err(refusal)?;
    let outcome = match info.status {
        Status::Failed => "recorded_error",
        _ => "recorded",
    };
    if ctx.json {
        emit_json(&Report {
            ok: true,
            outcome,
            status: info.status,
            server_id: &info.server_id,
        })?;
    } else {
        emit(&human(&info))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_LINE)
        .read_line(&mut line)?;
    let line = line.trim();
    if line.is_empty() {
        return Err(Failure::usage("no callback URL on stdin").into());
    }
    Ok(line.to_owned())
}

fn human(info: &FlowInfo) -> String {
    match info.status {
        Status::Failed => format!(
            "recorded: the authorization server refused the login for {}; the waiting \
             application is told\n",
            info.server_id
        ),
        _ => format!(
            "recorded: the login for {} has its callback; the waiting application finishes it\n",
            info.server_id
        ),
    }
}

/// A refused callback as one honest line (exit status 1); other errors keep their own.
fn refusal(e: Error) -> super::output::BoxError {
    let (kind, message) = match &e {
        Error::AlreadyCompleted | Error::AlreadyConsumed => (
            "already_used",
            "already used: this login already received its callback; nothing changed",
        ),
        Error::UnknownState => (
            "unknown_state",
            "unknown state: no login in this store matches this callback (never started here, \
             or cleaned up); nothing recorded",
        ),
        Error::Expired => (
            "expired",
            "expired: this login took too long; start it again in the application",
        ),
        Error::ServerMismatch { field: "iss" } => (
            "wrong_authorization_server",
            "wrong authorization server: the callback names another issuer than the login \
             expects (a possible mix-up attack); nothing recorded",
        ),
        Error::ServerMismatch {
            field: "redirect_uri",
        } => (
            "wrong_callback_address",
            "wrong callback address: this login expects its callback at another address \
             (scheme, host, port and path); nothing recorded",
        ),
        Error::FlowEnded { .. } => (
            "ended",
            "ended: this login was ended without signing in (a callback for another server, \
             or the authorization server refused it); start the login again in the application",
        ),
        _ => return e.into(),
    };
    Failure::refused(kind, message).into()
}
