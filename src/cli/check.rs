//! `check`: integrity, schema version, permissions and journal mode; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{check_file, CheckReport};
use serde::Serialize;

use super::{emit, emit_json, refuse_missing, CliResult};

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
