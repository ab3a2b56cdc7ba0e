//! The database file's side files: its `-wal`, `-shm` and `-journal`.

use std::path::{Path, PathBuf};

/// `path` with `suffix` appended: its `-wal`, `-shm` or `-journal` file.
pub(crate) fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}
