//! `stats`: counts by status, expiries, sizes and versions: a file's sizes and WAL, or, on
//! PostgreSQL, the server's table and index sizes and dead rows.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{FileInfo, RelationKind, ServerInfo, Stats, Status};
use serde::Serialize;

use super::context::Context;
use super::format::{bytes, relative, table};
use super::open::open_to_look;
use super::output::CliResult;
use super::output::{emit, emit_json, Failure};

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

/// The JSON document on a database server: its facts instead of a file's.
#[derive(Serialize)]
struct ServerReport {
    #[serde(flatten)]
    server: ServerInfo,
    #[serde(flatten)]
    stats: Stats,
    total: u64,
    now: i64,
}

pub fn run(path: &Path, ctx: &Context, _args: Args) -> CliResult {
    let store = open_to_look(path, ctx.options())?;
    let stats = store.stats()?;
    let (total, now) = (stats.counts.total(), store.now_ms());
    // Each engine answers one of the two: a file's facts (SQLite) or a server's (PostgreSQL).
    if let Some(file) = store.file_info()? {
        let report = Report {
            total,
            now,
            file,
            stats,
        };
        if ctx.json {
            emit_json(&report)?;
        } else {
            emit(&human(&report))?;
        }
    } else if let Some(server) = store.server_info()? {
        let report = ServerReport {
            total,
            now,
            server,
            stats,
        };
        if ctx.json {
            emit_json(&report)?;
        } else {
            emit(&server_human(&report))?;
        }
    } else {
        return Err(Failure::could_not_run(
            "no_facts",
            "the store reports neither a file's nor a server's facts",
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn server_human(r: &ServerReport) -> String {
    let when = |t: Option<i64>| t.map_or_else(|| "-".into(), |t| relative(t, r.now));
    let s = &r.server;
    let mut rows = vec![
        vec!["database".into(), "the PostgreSQL database".into()],
        vec!["store id".into(), s.store_id.clone()],
        vec![
            "schema version".into(),
            format!(
                "{} (this program: {})",
                s.schema_version, s.supported_schema_version
            ),
        ],
        vec!["server".into(), format!("PostgreSQL {}", s.server_version)],
    ];
    for rel in &s.relations {
        let label = match rel.kind {
            RelationKind::Table => format!("table {}", rel.name),
            _ => format!("  index {}", rel.name),
        };
        rows.push(vec![label, bytes(rel.bytes)]);
    }
    rows.push(vec![
        "row versions".into(),
        format!(
            "{} live, {} dead (estimates; VACUUM reclaims dead ones)",
            s.live_rows, s.dead_rows
        ),
    ]);
    rows.push(vec!["last vacuum".into(), when(s.last_vacuum)]);
    rows.push(vec!["last autovacuum".into(), when(s.last_autovacuum)]);
    rows.extend(flow_rows(&r.stats, r.total, r.now));
    table(&rows)
}

/// The flows' lines, the same on every engine.
fn flow_rows(stats: &Stats, total: u64, now: i64) -> Vec<Vec<String>> {
    let when = |t: Option<i64>| t.map_or_else(|| "-".into(), |t| relative(t, now));
    let mut rows = vec![vec![
        "flows".into(),
        format!("{total} ({} expired)", stats.expired),
    ]];
    for status in Status::ALL {
        rows.push(vec![
            format!("  {status}"),
            stats.counts.get(status).to_string(),
        ]);
    }
    rows.push(vec!["oldest expiry".into(), when(stats.oldest_expiry)]);
    rows.push(vec!["newest expiry".into(), when(stats.newest_expiry)]);
    rows
}

fn human(r: &Report) -> String {
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
    ];
    rows.extend(flow_rows(&r.stats, r.total, r.now));
    table(&rows)
}
