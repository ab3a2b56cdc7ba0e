//! `migrate`: create the database (and its directory, 0700) if needed; apply migrations.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{Error, Store};

use super::{emit, is_database_url, shown, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(path: &Path, _args: Args) -> CliResult {
    let dir = path
        .parent()
        .filter(|d| !is_database_url(path) && !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::Io {
                    path: dir.to_path_buf(),
                    source: e,
                })?;
        }
    }
    let store = Store::open(path)?;
    let m = store.migration();
    let text = if m.from == m.to {
        format!(
            "{}: schema version {} is current, nothing to do\n",
            shown(path),
            m.to
        )
    } else if m.from == 0 {
        format!(
            "{}: created the store at schema version {}\n",
            shown(path),
            m.to
        )
    } else {
        format!(
            "{}: migrated from schema version {} to {}\n",
            shown(path),
            m.from,
            m.to
        )
    };
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}
