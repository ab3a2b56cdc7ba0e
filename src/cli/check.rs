//! `check`: integrity, schema version, permissions and journal mode; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{check_file_with_timeout, CheckReport, Problem};
use serde::Serialize;

use super::output::{emit, emit_json};
use super::{is_database_url, refuse_missing, CliResult, Context};

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

/// On PostgreSQL: connectivity and the schema version, read without migrating anything.
fn run_on_url(path: &Path, ctx: &Context) -> CliResult {
    let store = ctx.options().read_only(true).open(path)?;
    let info = store.file_info()?;
    let ok = info.schema_version == info.supported_schema_version;
    if ctx.json {
        emit_json(&serde_json::json!({
            "ok": ok,
            "engine": "postgresql",
            "schema_version": info.schema_version,
            "supported_schema_version": info.supported_schema_version,
            "store_id": info.store_id,
        }))?;
    } else if ok {
        emit(&format!(
            "ok: the PostgreSQL database: connected, schema version {}\n",
            info.schema_version
        ))?;
    } else {
        emit(&format!(
            "problem (schema): the PostgreSQL database has schema version {} and this program \
             writes {}; to fix: run `oauth-state-store migrate`\n",
            info.schema_version, info.supported_schema_version
        ))?;
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

/// One problem, one line: "problem (corrupt): <what>; to fix: <what to do>".
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
