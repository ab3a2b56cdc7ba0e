//! `oauth-state-store`: maintenance of an OAuth flow store (sweep, stats, list, check, migrate,
//! deliver, tokens, completions). See `oauth-state-store --help`.
//!
//! `main` parses the arguments shared by every subcommand and runs one; each subcommand is a
//! module with its own `run`. Opening the database is in `open`, output and exit statuses in
//! `output`, human formatting and argument parsers in `format`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use oauth_state_store::{default_database_path, LockWait};

mod check;
mod completions;
mod context;
mod deliver;
mod format;
mod list;
mod migrate;
mod open;
mod output;
mod progress;
mod stats;
mod sweep;
mod tokens;

use context::Context;
use format::parse_timeout;
use output::{report_error, usage_error, CliResult};

fn main() -> ExitCode {
    let args = parse();
    let json = args.json();
    match run(args) {
        Ok(code) => code,
        Err(e) => report_error(&*e, json),
    }
}

/// The exit statuses, as `--help` and the manual (`cli/README.md`) document them.
const AFTER_HELP: &str = "\
The database is --db PATH, else $OAUTH_STATE_DB, else $XDG_STATE_HOME/oauth-state-store/flows.db, \
else ~/.local/state/oauth-state-store/flows.db.

Exit status:
  0  success
  1  a problem found (check) or an operation refused (an insecure, damaged or too new file)
  2  a usage error (a bad argument)
  3  the command could not run (a missing or read-only file, an I/O error, a lock held past the
     busy timeout)

With --json, the result is one JSON document on stdout; an error is one JSON object on stdout
({\"ok\": false, \"error\", \"message\", \"exit_status\"}) as well as its line on stderr.";

/// Maintenance of an OAuth flow store: the SQLite file that applications share to keep their
/// pending authorization-code + PKCE logins.
#[derive(Debug, Parser)]
#[command(name = "oauth-state-store", version, propagate_version = true)]
#[command(after_help = AFTER_HELP)]
pub struct Cli {
    /// The database file
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "OAUTH_STATE_DB",
        hide_env_values = true
    )]
    db: Option<PathBuf>,

    /// How long to wait for another process's lock before giving up (e.g. 500ms, 10s, 1m)
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_timeout,
          default_value = "5s")]
    busy_timeout: Duration,

    /// How to wait for that lock: backoff (SQLite's schedule) or aging (short tries after
    /// 10 ms: a shorter worst wait under heavy contention, a longer typical one)
    #[arg(long, global = true, value_name = "HOW", default_value = "backoff")]
    lock_wait: LockWaitArg,

    /// Print one JSON document on stdout (an error too)
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Remove expired flows in short batches; safe while applications use the file.
    #[command(after_help = "Examples:\n  oauth-state-store sweep\n  \
        oauth-state-store sweep --dry-run --json\n  \
        oauth-state-store sweep --older-than 1h --vacuum\n\n\
        When stderr is a terminal, a long sweep shows its progress there.")]
    Sweep(sweep::Args),
    /// Show flow counts by status, expiries, file and WAL sizes, schema and SQLite versions
    /// (on PostgreSQL: table and index sizes, dead rows, vacuums).
    #[command(after_help = "Example:\n  oauth-state-store stats --json")]
    Stats(stats::Args),
    /// List flows, one a line, without any secret (a state-key fingerprint stands for the state).
    #[command(
        after_help = "Example:\n  oauth-state-store list --server https://mcp.example.com \
        --status pending"
    )]
    List(list::Args),
    /// Check integrity, schema version, permissions and journal mode, without changing the file
    /// (on PostgreSQL: connectivity, schema version, every table, column and index).
    #[command(
        after_help = "Example:\n  oauth-state-store check || echo \"store needs attention\""
    )]
    Check(check::Args),
    /// Create the database if needed and apply pending schema migrations.
    #[command(after_help = "Example:\n  \
        oauth-state-store migrate --db ~/.local/state/oauth-state-store/flows.db")]
    Migrate(migrate::Args),
    /// Record a callback URL the browser could not bring to the waiting application.
    #[command(after_help = "Examples:\n  \
        oauth-state-store deliver -        (then paste the URL and press Enter)\n  \
        pbpaste | oauth-state-store deliver -\n\n\
        Exit status 0 only when the callback was recorded (a code, or the server's refusal); \
        1 when it was refused (already used, unknown state, expired, wrong authorization \
        server); 2 for a malformed URL.")]
    Deliver(deliver::Args),
    /// List the stored token sets (never a token), or forget one.
    #[command(after_help = "Examples:\n  oauth-state-store tokens list\n  \
        oauth-state-store tokens forget --server https://mcp.example.com --client my-client")]
    Tokens(tokens::Args),
    /// Print a shell completion script (bash, elvish, fish, powershell, zsh) on stdout.
    #[command(after_help = "Example:\n  \
        oauth-state-store completions bash > ~/.local/share/bash-completion/completions/oauth-state-store")]
    Completions(completions::Args),
}

impl Cli {
    /// `--json` was given: an error is then also a JSON object on stdout.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// The clap command, with the database path that applies now shown in `--db`'s help.
fn command() -> clap::Command {
    let default = default_database_path().map_or_else(
        || "none: set HOME, OAUTH_STATE_DB or pass --db".to_string(),
        |p| p.display().to_string(),
    );
    Cli::command().mut_arg("db", |a| {
        a.help(format!("The database file [default: {default}]"))
    })
}

/// Parses the process's arguments. A usage error exits with status 2 (after printing one JSON
/// object on stdout too when `--json` is among the arguments); `--help` and `--version` exit 0.
pub fn parse() -> Cli {
    // An empty OAUTH_STATE_DB means "not set", as for the library's default path (clap would
    // report it as a missing `--db` value). Single-threaded here: nothing else reads the
    // environment yet.
    if std::env::var_os("OAUTH_STATE_DB").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("OAUTH_STATE_DB");
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(cli) => cli,
        Err(e) => usage_error(e, args.iter().any(|a| a == "--json")),
    }
}

/// Runs the parsed command line.
///
/// # Errors
/// The command's failure, to print with [`report_error`].
pub fn run(cli: Cli) -> CliResult {
    let ctx = Context {
        busy_timeout: cli.busy_timeout,
        lock_wait: match cli.lock_wait {
            LockWaitArg::Backoff => LockWait::Backoff,
            LockWaitArg::Aging => LockWait::Aging,
        },
        json: cli.json,
    };
    if let Command::Completions(args) = cli.command {
        return completions::run(command(), args);
    }
    let path = open::database_path(cli.db)?;
    match cli.command {
        Command::Sweep(args) => sweep::run(&path, &ctx, args),
        Command::Stats(args) => stats::run(&path, &ctx, args),
        Command::List(args) => list::run(&path, &ctx, args),
        Command::Check(args) => check::run(&path, &ctx, args),
        Command::Migrate(args) => migrate::run(&path, &ctx, args),
        Command::Deliver(args) => deliver::run(&path, &ctx, args),
        Command::Tokens(args) => tokens::run(&path, &ctx, args),
        Command::Completions(_) => unreachable!("handled above"),
    }
}

/// `--lock-wait`: the command line's names for [`LockWait`].
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LockWaitArg {
    Backoff,
    Aging,
}
