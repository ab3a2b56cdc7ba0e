//! `stats`: counts by status, expiries, sizes and versions.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{FileInfo, Stats, Status};
use serde::Serialize;

use super::format::{bytes, relative, table};
use super::output::{emit, emit_json};
use super::{open_existing, CliResult, Context};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// The JSON document: the file's facts and the flows' counts side by side.
#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    file: FileInfo,
    #[serde(flatten)]
    stats: Stats,
    total: u64,
    now: i64,
}

pub fn run(path: &Path, ctx: &Context, _args: Args) -> CliResult {
    let store = open_existing(path, ctx.options())?;
    let stats = store.stats()?;
    let file = store.file_info()?;
    let report = Report {
        total: stats.counts.total(),
        now: store.now_ms(),
        file,
        stats,
    };
    if ctx.json {
        emit_json(&report)?;
    } else {
        emit(&human(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn human(r: &Report) -> String {
    let when = |t: Option<i64>| t.map_or_else(|| "-".into(), |t| relative(t, r.now));
    let size = |b: Option<u64>| b.map_or_else(|| "none".into(), bytes);
    let mut rows = vec![
        vec![
            "database".into(),
            r.file
                .path
                .as_deref()
                .map_or_else(|| "-".into(), |p| p.display().to_string()),
        ],
        vec!["store id".into(), r.file.store_id.clone()],
        vec![
            "schema version".into(),
            format!(
                "{} (this program: {})",
                r.file.schema_version, r.file.supported_schema_version
            ),
        ],
        vec!["sqlite".into(), r.file.sqlite_version.into()],
        vec!["journal mode".into(), r.file.journal_mode.clone()],
        vec!["file size".into(), size(r.file.file_bytes)],
        vec!["wal size".into(), size(r.file.wal_bytes)],
        vec![
            "flows".into(),
            format!("{} ({} expired)", r.total, r.stats.expired),
        ],
    ];
    for status in Status::ALL {
        rows.push(vec![
            format!("  {status}"),
            r.stats.counts.get(status).to_string(),
        ]);
    }
    rows.push(vec!["oldest expiry".into(), when(r.stats.oldest_expiry)]);
    rows.push(vec!["newest expiry".into(), when(r.stats.newest_expiry)]);
    table(&rows)
}
