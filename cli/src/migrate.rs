//! `migrate`: create the database (and its directory, 0700) if needed; apply migrations. A
//! damaged file is refused before anything is written to it.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use oauth_state_store::{check_file_with_timeout, Error, ProblemKind};
use serde::Serialize;

use super::context::Context;
use super::open::{is_database_url, refuse_read_only, shown};
use super::output::CliResult;
use super::output::{emit, emit_json, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {}

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
}

pub fn run(path: &Path, ctx: &Context, _args: Args) -> CliResult {
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
    let report = Report {
        path: shown(path),
        from: m.from,
        to: m.to,
        created: m.from == 0 && m.to > 0,
        migrated: m.from != m.to,
    };
    if ctx.json {
        emit_json(&report)?;
    } else {
        emit(&human(&report))?;
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
