//! "Permission denied" told apart from "does not exist": which user owns the file (or the
//! directory that hides it), and the advice to run as that user.

use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::Error;

/// `e` on `path` as the crate's error: [`Error::PermissionDenied`] naming the owner of `path`,
/// or of the nearest directory above it that this process can look at, for an access error;
/// [`Error::Io`] otherwise.
pub(crate) fn io_error(path: &Path, e: io::Error) -> Error {
    if e.kind() != ErrorKind::PermissionDenied {
        return Error::io(path, e);
    }
    let me = rustix::process::geteuid().as_raw();
    let blocker = path
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (p.to_path_buf(), m)));
    let reason = match blocker {
        Some((at, meta)) => {
            let owner = meta.uid();
            let what = if at == path {
                "the file".to_string()
            } else {
                format!("the directory {}", at.display())
            };
            format!(
                "this program runs as {}, and {what} belongs to {} (mode {:04o}); run the \
                 command as the user who owns it, for example with `sudo -u {}`",
                user(me),
                user(owner),
                meta.mode() & 0o7777,
                user_name(owner).unwrap_or_else(|| format!("'#{owner}'")),
            )
        }
        None => format!(
            "this program runs as {}, which may not read it; run the command as the user \
             who owns the file",
            user(me)
        ),
    };
    Error::PermissionDenied {
        path: path.to_path_buf(),
        reason,
    }
}

/// "uid 1000 (alice)", or "uid 1000" when the name is unknown.
fn user(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

/// The login name of `uid` from `/etc/passwd`, when it is there.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        let printable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        (id == uid && printable).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_stay_io_errors() {
        let e = io_error(Path::new("/x"), io::Error::from(ErrorKind::NotFound));
        assert!(matches!(e, Error::Io { .. }));
    }

    #[test]
    fn an_access_error_names_the_owner_and_the_advice() {
        let e = io_error(Path::new("/"), io::Error::from(ErrorKind::PermissionDenied));
        let text = e.to_string();
        assert!(matches!(e, Error::PermissionDenied { .. }));
        assert!(text.contains("belongs to uid 0"), "{text}");
        assert!(
            text.contains("run the command as the user who owns it"),
            "{text}"
        );
        assert!(!text.contains("migrate"), "{text}");
    }
}
