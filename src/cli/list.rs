//! `list`: one line a flow, never a secret.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{FlowFilter, FlowSummary, Status, StoreOptions};
use serde::Serialize;

use super::{emit, emit_json, open_existing, parse_status, relative, span, table, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the flows of this server id
    #[arg(long, value_name = "ID")]
    server: Option<String>,
    /// Only the flows in this status: unbound, pending, completed, failed or consumed
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,
    /// At most N flows, those expiring first
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    now: i64,
    flows: Vec<FlowSummary>,
}

pub fn run(path: &Path, args: Args) -> CliResult {
    let store = open_existing(path, StoreOptions::default())?;
    let mut filter = FlowFilter::new();
    if let Some(s) = args.server {
        filter = filter.server_id(s);
    }
    if let Some(s) = args.status {
        filter = filter.status(s);
    }
    if let Some(n) = args.limit {
        filter = filter.limit(n);
    }
    let report = Report {
        now: store.now_ms(),
        flows: store.list_flows(&filter)?,
    };
    if args.json {
        emit_json(&report)?;
    } else if report.flows.is_empty() {
        emit("no flows\n")?;
    } else {
        emit(&human(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn human(r: &Report) -> String {
    let mut rows = vec![[
        "FINGERPRINT",
        "SERVER",
        "CLIENT",
        "STATUS",
        "AGE",
        "EXPIRES",
    ]
    .map(String::from)
    .to_vec()];
    for f in &r.flows {
        let age = r.now.saturating_sub(f.created_at).max(0).unsigned_abs() / 1_000;
        rows.push(vec![
            f.fingerprint.clone().unwrap_or_else(|| "(unbound)".into()),
            f.server_id.clone(),
            f.client_id.clone().unwrap_or_else(|| "-".into()),
            f.status.to_string(),
            span(age),
            relative(f.expires_at, r.now),
        ]);
    }
    table(&rows)
}
