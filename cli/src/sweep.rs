//! `sweep`: remove expired rows in short batches, optionally finished rows early, optionally
//! compact the file.

use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{CompactReport, Status, StatusCounts, Store};
use serde::Serialize;

use super::context::Context;
use super::format::{bytes, parse_duration, table};
use super::open::{open_existing, open_to_look};
use super::output::CliResult;
use super::output::{emit, emit_json};
use super::progress::{self, Progress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Count what would be removed, by status, without removing anything
    #[arg(long)]
    dry_run: bool,
    /// Also remove tombstones consumed, and failed flows begun, more than DURATION ago, before
    /// they expire (e.g. 30m, 1h30m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    older_than: Option<std::time::Duration>,
    /// Then checkpoint the WAL into the file, truncate it, and VACUUM to reclaim space
    #[arg(long, conflicts_with = "dry_run")]
    vacuum: bool,
    /// The most rows removed per write transaction (batches also stay near 10 ms each); smaller batches block applications for less time
    #[arg(long, value_name = "ROWS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
}

/// The JSON document.
#[derive(Serialize)]
struct Report {
    dry_run: bool,
    /// Removed (or, in a dry run, would be removed), by status.
    removed: Removed,
    total: u64,
    batches: u64,
    /// The longest write transaction that removed rows, in whole microseconds: how long
    /// applications waited at most. 0 when no batch removed anything.
    longest_batch_us: u64,
    older_than_ms: Option<u128>,
    vacuum: Option<CompactReport>,
}

pub fn run(path: &Path, ctx: &Context, args: Args) -> CliResult {
    let options = ctx.options().sweep_batch_size(args.batch_size);
    // A dry run only looks: it changes nothing, not even by merging a -wal into the file.
    let store = if args.dry_run {
        open_to_look(path, options)?
    } else {
        open_existing(path, options)?
    };
    let mut removed = Removed::default();
    let mut batches = 0;
    let mut longest = std::time::Duration::ZERO;
    if args.dry_run {
        removed.add(store.sweep_preview(args.older_than)?);
    } else {
        let _progress = sweep_progress(&store, args.older_than)?;
        let swept = store.sweep()?;
        removed.add(swept.removed);
        batches += swept.batches;
        longest = swept.longest_batch;
        if let Some(d) = args.older_than {
            let finished = store.sweep_finished(d)?;
            removed.add(finished.removed);
            batches += finished.batches;
            longest = longest.max(finished.longest_batch);
        }
    }
    let vacuum = if args.vacuum {
        let _progress = if progress::wanted() {
            Progress::spinner("vacuum: rebuilding the file and truncating the WAL")
        } else {
            Progress::none()
        };
        Some(store.compact()?)
    } else {
        None
    };
    let report = Report {
        dry_run: args.dry_run,
        total: removed.by_status().iter().map(|(_, n)| n).sum(),
        removed,
        batches,
        // The library also times a last batch that found nothing to remove.
        longest_batch_us: if batches == 0 {
            0
        } else {
            u64::try_from(longest.as_micros()).unwrap_or(u64::MAX)
        },
        older_than_ms: args.older_than.map(|d| d.as_millis()),
        vacuum,
    };
    if ctx.json {
        emit_json(&report)?;
    } else {
        emit(&human(&report))?;
    }
    if let Some(v) = vacuum.filter(|v| !v.is_complete()) {
        let step = if v.vacuumed {
            "the WAL checkpoint"
        } else {
            "VACUUM"
        };
        eprintln!(
            "oauth-state-store: {step} could not finish because another process kept the \
             database busy; expired rows were removed, run `oauth-state-store sweep --vacuum` \
             again when applications are idle"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar of the rows to remove, when stderr is a terminal: the total is counted first, and the
/// rows still to go are counted again on another connection while the sweep runs.
fn sweep_progress(store: &Store, older_than: Option<std::time::Duration>) -> CliResult<Progress> {
    if !progress::wanted() {
        return Ok(Progress::none());
    }
    let total = store.sweep_preview(older_than)?.total();
    let store = store.clone();
    Ok(Progress::rows("sweep", total, move || {
        store.sweep_preview(older_than).ok().map(|c| c.total())
    }))
}

/// Rows by status, in life order (the library's `StatusCounts` is built only by the library).
#[derive(Serialize, Default)]
struct Removed {
    unbound: u64,
    pending: u64,
    completed: u64,
    failed: u64,
    consumed: u64,
}

impl Removed {
    fn add(&mut self, counts: StatusCounts) {
        self.unbound += counts.unbound;
        self.pending += counts.pending;
        self.completed += counts.completed;
        self.failed += counts.failed;
        self.consumed += counts.consumed;
    }

    fn by_status(&self) -> [(Status, u64); 5] {
        [
            (Status::Unbound, self.unbound),
            (Status::Pending, self.pending),
            (Status::Completed, self.completed),
            (Status::Failed, self.failed),
            (Status::Consumed, self.consumed),
        ]
    }
}

fn human(report: &Report) -> String {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut out = format!(
        "{verb} {} row{}",
        report.total,
        if report.total == 1 { "" } else { "s" }
    );
    if !report.dry_run {
        out.push_str(&format!(
            " in {} batch{}",
            report.batches,
            if report.batches == 1 { "" } else { "es" }
        ));
        if report.batches > 0 {
            out.push_str(&format!(
                " (the longest held the write lock {:.1} ms)",
                report.longest_batch_us as f64 / 1000.0
            ));
        }
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = report
        .removed
        .by_status()
        .iter()
        .map(|(s, n)| vec![format!("  {s}"), n.to_string()])
        .collect();
    out.push_str(&table(&rows));
    if let Some(v) = &report.vacuum {
        out.push_str(&format!(
            "vacuum: file {} -> {}, wal {} -> {}\n",
            bytes(v.file_bytes_before),
            bytes(v.file_bytes_after),
            bytes(v.wal_bytes_before),
            bytes(v.wal_bytes_after)
        ));
    }
    out
}
