//! `check`: integrity, schema version, permissions and journal mode of a file; connectivity,
//! schema version and the catalog of a PostgreSQL database. Changes nothing.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{
    check_database, check_file_with_timeout, CheckReport, DatabaseCheck, Problem,
};
use serde::Serialize;

use super::context::Context;
use super::open::{is_database_url, refuse_missing, shown};
use super::output::CliResult;
use super::output::{emit, emit_json};

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Report {
    ok: bool,
    #[serde(flatten)]
    check: CheckReport,
}

pub fn run(path: &Path, ctx: &Context, _args: Args) -> CliResult {
    if is_database_url(path) {
        return run_on_url(path, ctx);
    }
    refuse_missing(path)?;
    let check = check_file_with_timeout(path, ctx.busy_timeout)?;
    let ok = check.is_ok();
    if ctx.json {
        emit_json(&Report { ok, check })?;
    } else {
        emit(&human(&check))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// On PostgreSQL: connectivity, the schema version, and every table, column and index of the
/// schema in the catalog; one line a problem. Nothing is migrated or created.
fn run_on_url(path: &Path, ctx: &Context) -> CliResult {
    let url = path.to_str().unwrap_or_default();
    let check = check_database(url, ctx.busy_timeout)?;
    let ok = check.is_ok();
    if ctx.json {
        #[derive(Serialize)]
        struct UrlReport {
            ok: bool,
            #[serde(flatten)]
            check: DatabaseCheck,
        }
        emit_json(&UrlReport { ok, check })?;
    } else if ok {
        emit(&format!(
            "ok: {}: connected (PostgreSQL {}), schema version {}, {} tables, columns and \
             indexes present\n",
            shown(path),
            check.server_version,
            check.schema_version,
            check.checked.len()
        ))?;
    } else {
        emit(&check.problems.iter().map(line).collect::<String>())?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn human(c: &CheckReport) -> String {
    if c.is_ok() {
        return format!(
            "ok: {}: permissions, integrity, schema version {}, journal mode {}\n",
            c.path.display(),
            c.schema_version.unwrap_or_default(),
            c.journal_mode.as_deref().unwrap_or("-"),
        );
    }
    c.problems.iter().map(line).collect()
}

/// One problem, one line: `problem (corrupt): <what>; to fix: <what to do>`.
fn line(p: &Problem) -> String {
    let kind = serde_json::to_value(p.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = format!("problem ({kind}): {}", p.message);
    if !p.fix.is_empty() {
        out.push_str("; to fix: ");
        out.push_str(&p.fix);
    }
    let mut out = out.replace('\n', " ");
    out.push('\n');
    out
}
