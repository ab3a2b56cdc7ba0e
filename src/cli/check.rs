//! `check`: integrity, schema version, permissions and journal mode; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{check_file, CheckReport, StoreOptions};
use serde::Serialize;

use super::{emit, emit_json, is_database_url, refuse_missing, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    #[serde(flatten)]
    check: CheckReport,
}

pub fn run(path: &Path, args: Args) -> CliResult {
    if is_database_url(path) {
        return run_on_url(path, args);
    }
    refuse_missing(path)?;
    let check = check_file(path)?;
    let ok = check.is_ok();
    if args.json {
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
fn run_on_url(path: &Path, args: Args) -> CliResult {
    let store = StoreOptions::default().read_only(true).open(path)?;
    let info = store.file_info()?;
    let ok = info.schema_version == info.supported_schema_version;
    if args.json {
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
    let mut out = String::new();
    for p in &c.problems {
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "problem ({kind}): {}; to fix: {}\n",
            p.message, p.fix
        ));
    }
    out
}
