//! The command line: argument types, the database path, opening the store, and output helpers
//! shared by the subcommands (one module each).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oauth_state_store::{default_database_path, Error, Status, Store, StoreOptions};

mod check;
mod list;
mod migrate;
mod stats;
mod sweep;

/// Any failure of a command; printed as one line with its cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A command's result: the exit code, or an error to print.
pub type CliResult<T = ExitCode> = Result<T, BoxError>;

/// Maintenance of an OAuth flow store: the SQLite file that applications share to keep their
/// pending authorization-code + PKCE logins.
#[derive(Debug, Parser)]
#[command(name = "oauth-state-store", version, propagate_version = true)]
#[command(after_help = "The database is --db PATH, else $OAUTH_STATE_DB, else \
$XDG_STATE_HOME/oauth-state-store/flows.db, else ~/.local/state/oauth-state-store/flows.db.\n\
Exit status: 0 success, 1 a problem found or an operation refused, 2 a usage error.")]
pub struct Cli {
    /// The database file [default: $OAUTH_STATE_DB, else the XDG state path]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Remove expired flows in short batches; safe while applications use the file.
    #[command(after_help = "Examples:\n  oauth-state-store sweep\n  \
        oauth-state-store sweep --dry-run --json\n  \
        oauth-state-store sweep --older-than 1h --vacuum")]
    Sweep(sweep::Args),
    /// Show flow counts by status, expiries, file and WAL sizes, schema and SQLite versions.
    #[command(after_help = "Example:\n  oauth-state-store stats --json")]
    Stats(stats::Args),
    /// List flows, one a line, without any secret (a state-key fingerprint stands for the state).
    #[command(
        after_help = "Example:\n  oauth-state-store list --server https://mcp.example.com \
        --status pending"
    )]
    List(list::Args),
    /// Check integrity, schema version, permissions and journal mode, without changing the file.
    #[command(
        after_help = "Example:\n  oauth-state-store check || echo \"store needs attention\""
    )]
    Check(check::Args),
    /// Create the database if needed and apply pending schema migrations.
    #[command(after_help = "Example:\n  \
        oauth-state-store migrate --db ~/.local/state/oauth-state-store/flows.db")]
    Migrate(migrate::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> CliResult {
    let path = database_path(cli.db)?;
    match cli.command {
        Command::Sweep(args) => sweep::run(&path, args),
        Command::Stats(args) => stats::run(&path, args),
        Command::List(args) => list::run(&path, args),
        Command::Check(args) => check::run(&path, args),
        Command::Migrate(args) => migrate::run(&path, args),
    }
}

fn database_path(db: Option<PathBuf>) -> CliResult<PathBuf> {
    db.filter(|p| !p.as_os_str().is_empty())
        .or_else(default_database_path)
        .ok_or_else(|| {
            "no database path: pass --db PATH, or set OAUTH_STATE_DB (or HOME for the default)"
                .into()
        })
}

/// Opens an existing store; a missing file (or directory) is an error, never created.
fn open_existing(path: &Path, options: StoreOptions) -> CliResult<Store> {
    refuse_missing(path)?;
    Ok(options.create_if_missing(false).open(path)?)
}

/// Whether `--db` names a PostgreSQL database (`postgres://` / `postgresql://`), not a file.
fn is_database_url(path: &Path) -> bool {
    path.to_str().is_some_and(|p| {
        let lower = p.get(..13).unwrap_or(p).to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    })
}

/// How messages name the database: the path of a file; a URL never (it may hold a password).
fn shown(path: &Path) -> String {
    if is_database_url(path) {
        "the PostgreSQL database".to_owned()
    } else {
        path.display().to_string()
    }
}

/// A missing file, or a missing directory, is [`Error::DatabaseMissing`] (a URL has neither).
fn refuse_missing(path: &Path) -> Result<(), Error> {
    if is_database_url(path) {
        return Ok(());
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.exists() => Err(Error::DatabaseMissing {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// The error and its sources on one line, each source once.
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut last = line.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
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
fn emit(text: &str) -> CliResult<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Pretty JSON with a final newline.
fn emit_json(value: &impl serde::Serialize) -> CliResult<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text)
}

/// `--status` values.
fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status; use one of {}", names.join(", "))
    })
}

/// A duration such as `90s`, `15m`, `2h`, `1d` or `1h30m`; positive.
fn parse_duration(s: &str) -> Result<time::Duration, String> {
    const HELP: &str = "use a number and a unit (s, m, h, d), such as 30m or 1h30m";
    let mut total = time::Duration::ZERO;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| HELP.to_string())?;
        digits.clear();
        let part = match c {
            's' => time::Duration::seconds(n),
            'm' => time::Duration::minutes(n),
            'h' => time::Duration::hours(n),
            'd' => time::Duration::days(n),
            _ => return Err(HELP.into()),
        };
        total = total.checked_add(part).ok_or("the duration is too large")?;
    }
    if !digits.is_empty() || !total.is_positive() {
        return Err(HELP.into());
    }
    Ok(total)
}

/// "in 4m", "3m ago", "now".
fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = at_ms.saturating_sub(now_ms);
    if delta.unsigned_abs() < 1_000 {
        return "now".into();
    }
    let span = span(delta.unsigned_abs() / 1_000);
    if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A length of time in whole seconds, in at most two units: "45s", "4m", "2h 5m", "3d 1h".
fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// "512 B", "96.0 KiB", "1.5 MiB".
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Rows of cells as left-aligned columns, two spaces apart, without trailing blanks.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("90s"), Ok(time::Duration::seconds(90)));
        assert_eq!(parse_duration("1h30m"), Ok(time::Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Ok(time::Duration::days(2)));
        for bad in ["", "0m", "15", "m", "1x", "-5m", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_000_000_000;
        assert_eq!(relative(now + 4 * 60_000, now), "in 4m");
        assert_eq!(relative(now - 3 * 60_000 - 10_000, now), "3m ago");
        assert_eq!(relative(now + 500, now), "now");
        assert_eq!(relative(now + 3_600_000 + 5 * 60_000, now), "in 1h 5m");
        assert_eq!(relative(now - 86_400_000 * 2, now), "2d ago");
    }

    #[test]
    fn sizes_and_tables_are_human() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["CCC".into(), "D".into()],
        ]);
        assert_eq!(t, "A    BB\nCCC  D\n");
    }
}
