//! `migrate`: create the database (and its directory, 0700) if needed; apply migrations. A
//! damaged file is refused before anything is written to it.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use oauth_state_store::{check_file_with_timeout, Error, OldTable, ProblemKind};
use serde::Serialize;

use super::output::{emit, emit_json, Failure};
use super::{is_database_url, refuse_read_only, shown, CliResult, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Then drop the old table of a file made at schema version 6 or older, if it is empty
    /// (its flows are then read from one table). A program of version 6 or older that still
    /// has the file open fails from then on: upgrade every program first.
    #[arg(long)]
    drop_old_table: bool,
}

/// What `--drop-old-table` found.
#[derive(Serialize)]
struct OldTableReport {
    found: Found,
    /// The rows left in it (`kept`).
    rows: u64,
}

/// `absent`, `dropped` or `kept` in JSON.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Found {
    Absent,
    Dropped,
    Kept,
}

impl From<OldTable> for OldTableReport {
    fn from(old: OldTable) -> Self {
        let (found, rows) = match old {
            OldTable::Dropped => (Found::Dropped, 0),
            OldTable::Kept { rows } => (Found::Kept, rows),
            _ => (Found::Absent, 0),
        };
        OldTableReport { found, rows }
    }
}

/// "1 row", "3 rows".
fn rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// The JSON document.
#[derive(Serialize)]
struct Report {
    /// The file's path; a database URL is never shown (it may hold a password).
    path: String,
    /// The schema version before (0: the store was created).
    from: i64,
    /// The schema version now.
    to: i64,
    created: bool,
    migrated: bool,
    /// With `--drop-old-table`.
    #[serde(skip_serializing_if = "Option::is_none")]
    old_table: Option<OldTableReport>,
}

pub fn run(path: &Path, ctx: &Context, args: Args) -> CliResult {
    if is_database_url(path) {
        // A server database: no file to check for damage, no directory to create.
    } else if path.exists() {
        refuse_damaged(path, ctx)?;
        refuse_read_only(path)?;
    } else {
        create_dir(path)?;
    }
    let store = ctx.options().open(path)?;
    let m = store.migration();
    let old_table = if args.drop_old_table {
        Some(OldTableReport::from(store.drop_old_table()?))
    } else {
        None
    };
    let report = Report {
        path: shown(path),
        from: m.from,
        to: m.to,
        created: m.from == 0 && m.to > 0,
        migrated: m.from != m.to,
        old_table,
    };
    if ctx.json {
        emit_json(&report)?;
    } else {
        emit(&human(&report))?;
    }
    if let Some(old) = report.old_table.as_ref().filter(|o| o.found == Found::Kept) {
        eprintln!(
            "oauth-state-store: the old table still holds {}, so it was kept; old rows \
             go when they expire and `oauth-state-store sweep` removes them: run `migrate \
             --drop-old-table` again then",
            rows(old.rows)
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The integrity check first: migrating a damaged file would write into it.
fn refuse_damaged(path: &Path, ctx: &Context) -> CliResult<()> {
    let check = check_file_with_timeout(path, ctx.busy_timeout)?;
    match check
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt)
    {
        Some(p) => Err(Failure::refused(
            "corrupt",
            format!(
                "{}: not migrated, nothing was changed: {}; to fix: {}",
                path.display(),
                p.message,
                p.fix
            ),
        )
        .into()),
        None => Ok(()),
    }
}

/// Creates a missing directory with mode 0700.
fn create_dir(path: &Path) -> CliResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::Io {
                    path: PathBuf::from(dir),
                    source: e,
                })?;
        }
    }
    Ok(())
}

fn human(r: &Report) -> String {
    let mut out = schema_line(r);
    if let Some(old) = &r.old_table {
        let path = &r.path;
        out.push_str(&match old.found {
            Found::Dropped => format!(
                "{path}: dropped the empty old table of schema version 6 and its triggers; the \
                 file is laid out as a new one\n"
            ),
            Found::Kept => format!(
                "{path}: the old table holds {}; nothing was dropped\n",
                rows(old.rows)
            ),
            Found::Absent => format!("{path}: no old table, nothing to drop\n"),
        });
    }
    out
}

fn schema_line(r: &Report) -> String {
    let path = &r.path;
    if !r.migrated {
        format!(
            "{path}: schema version {} is current, nothing to do\n",
            r.to
        )
    } else if r.created {
        format!("{path}: created the store at schema version {}\n", r.to)
    } else {
        format!(
            "{path}: migrated from schema version {} to {}\n",
            r.from, r.to
        )
    }
}
