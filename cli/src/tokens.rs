//! `tokens list` and `tokens forget`: the stored token sets, described without any token, and
//! forgetting them (a sign-out for every process that shares the store).

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{TokenSetInfo, TokenState};
use serde::Serialize;

use super::context::Context;
use super::format::{relative, span, table};
use super::open::{open_existing, open_to_look};
use super::output::{emit, emit_json, CliResult, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the stored token sets: server, client, generation, expiry, who is refreshing;
    /// never a token.
    #[command(
        after_help = "Example:\n  oauth-state-store tokens list --server https://mcp.example.com"
    )]
    List(ListArgs),
    /// Forget the token set of a server and client (or of every client of a server): every
    /// process sharing the store must sign in again. Its tokens are wiped from the file.
    #[command(after_help = "Examples:\n  \
        oauth-state-store tokens forget --server https://mcp.example.com --client my-client\n  \
        oauth-state-store tokens forget --server https://mcp.example.com --all-clients\n\n\
        Exit status 0 when a set was forgotten; 1 when none matched (nothing changed).")]
    Forget(ForgetArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only the token sets of this server id
    #[arg(long, value_name = "ID")]
    server: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["client", "all_clients"]))]
struct ForgetArgs {
    /// The server id of the set
    #[arg(long, value_name = "ID")]
    server: String,
    /// The client id of the set
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// Every client's set of that server
    #[arg(long)]
    all_clients: bool,
}

pub fn run(path: &Path, ctx: &Context, args: Args) -> CliResult {
    match args.command {
        Command::List(args) => list(path, ctx, args),
        Command::Forget(args) => forget(path, ctx, args),
    }
}

#[derive(Serialize)]
struct ListReport {
    now: i64,
    token_sets: Vec<TokenSetInfo>,
}

fn list(path: &Path, ctx: &Context, args: ListArgs) -> CliResult {
    let store = open_to_look(path, ctx.options())?;
    let now = store.now_ms();
    let token_sets = store.list_token_sets(args.server.as_deref())?;
    let report = ListReport { now, token_sets };
    if ctx.json {
        emit_json(&report)?;
    } else if report.token_sets.is_empty() {
        emit("no token sets\n")?;
    } else {
        emit(&human(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn human(r: &ListReport) -> String {
    let header = [
        "SERVER",
        "CLIENT",
        "GENERATION",
        "STATE",
        "ACCESS TOKEN",
        "RECEIVED",
        "REFRESHING",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for set in &r.token_sets {
        let (state, expiry) = match &set.state {
            TokenState::Live {
                expires_at,
                refresh_token,
            } => (
                if *refresh_token {
                    "live".to_owned()
                } else {
                    "live (no refresh token)".to_owned()
                },
                match expires_at {
                    Some(at) if *at <= r.now => format!("expired {}", relative(*at, r.now)),
                    Some(at) => format!("expires {}", relative(*at, r.now)),
                    None => "no expiry".to_owned(),
                },
            ),
            TokenState::Revoked { reason, .. } => (format!("revoked ({reason})"), "-".to_owned()),
            _ => ("unknown".to_owned(), "-".to_owned()),
        };
        let age = r.now.saturating_sub(set.received_at).max(0).unsigned_abs() / 1_000;
        let lease = match &set.lease {
            Some(lease) if lease.expires_at <= r.now => format!(
                "{} (lease ended {}: it stopped)",
                lease.owner,
                relative(lease.expires_at, r.now)
            ),
            Some(lease) => format!(
                "{} (lease ends {})",
                lease.owner,
                relative(lease.expires_at, r.now)
            ),
            None => "-".to_owned(),
        };
        rows.push(vec![
            set.server_id.clone(),
            set.client_id.clone(),
            set.generation.to_string(),
            state,
            expiry,
            format!("{} ago", span(age)),
            lease,
        ]);
    }
    table(&rows)
}

#[derive(Serialize)]
struct ForgetReport<'a> {
    server_id: &'a str,
    client_id: Option<&'a str>,
    forgotten: u64,
}

fn forget(path: &Path, ctx: &Context, args: ForgetArgs) -> CliResult {
    let store = open_existing(path, ctx.options())?;
    let client = if args.all_clients {
        None
    } else {
        args.client.as_deref()
    };
    let forgotten = store.forget_tokens(&args.server, client)?;
    drop(store);
    let whose = match client {
        Some(client) => format!("server {} and client {client}", args.server),
        None => format!("server {} (every client)", args.server),
    };
    if forgotten == 0 {
        return Err(Failure::refused(
            "no_tokens",
            format!("no token set is stored for {whose}; nothing was changed"),
        )
        .into());
    }
    if ctx.json {
        emit_json(&ForgetReport {
            server_id: &args.server,
            client_id: client,
            forgotten,
        })?;
    } else {
        let sets = if forgotten == 1 { "set" } else { "sets" };
        emit(&format!(
            "forgot {forgotten} token {sets} of {whose}; the processes sharing the store \
             must sign in again\n"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
