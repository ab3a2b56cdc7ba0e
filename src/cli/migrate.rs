//! `migrate`: create the database (and its directory, 0700) if needed; apply migrations.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::ExitCode;

use oauth_state_store::{Error, Store};

use super::{emit, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(path: &Path, _args: Args) -> CliResult {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
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
            path.display(),
            m.to
        )
    } else if m.from == 0 {
        format!(
            "{}: created the store at schema version {}\n",
            path.display(),
            m.to
        )
    } else {
        format!(
            "{}: migrated from schema version {} to {}\n",
            path.display(),
            m.from,
            m.to
        )
    };
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}
