//! `list`: one line a flow, never a secret.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{EndReason, FlowFilter, FlowSummary, Status};
use serde::Serialize;

use super::context::Context;
use super::format::{parse_limit, parse_status, relative, span, table};
use super::open::open_to_look;
use super::output::CliResult;
use super::output::{emit, emit_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the flows of this server id
    #[arg(long, value_name = "ID")]
    server: Option<String>,
    /// Only the flows in this status: unbound, pending, completed, failed or consumed
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,
    /// At most N flows (N at least 1), those expiring first
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Report {
    now: i64,
    flows: Vec<Listed>,
}

/// A flow and whether it has expired (a sweep removes it; no operation uses it any more).
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    flow: FlowSummary,
    expired: bool,
}

pub fn run(path: &Path, ctx: &Context, args: Args) -> CliResult {
    let store = open_to_look(path, ctx.options())?;
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
    let now = store.now_ms();
    let flows = store
        .list_flows(&filter)?
        .into_iter()
        .map(|flow| Listed {
            expired: flow.expires_at <= now,
            flow,
        })
        .collect();
    let report = Report { now, flows };
    if ctx.json {
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
    for Listed { flow: f, expired } in &r.flows {
        let age = r.now.saturating_sub(f.created_at).max(0).unsigned_abs() / 1_000;
        let expires = relative(f.expires_at, r.now);
        rows.push(vec![
            f.fingerprint.clone().unwrap_or_else(|| "(unbound)".into()),
            f.server_id.clone(),
            f.client_id.clone().unwrap_or_else(|| "-".into()),
            match f.ended {
                Some(reason) => format!("{} ({})", f.status, ended(reason)),
                None => f.status.to_string(),
            },
            span(age),
            if *expired {
                format!("expired {expires}")
            } else {
                expires
            },
        ]);
    }
    table(&rows)
}

/// Why a tombstone's flow ended without a login, short enough for the status column (`--json`
/// has the reason's name, `ended`).
fn ended(reason: EndReason) -> &'static str {
    match reason {
        EndReason::AuthorizationFailed => "refused",
        EndReason::ServerMismatch => "server mismatch",
        _ => "ended",
    }
}
