//! `Store::open_default`: the command line's default path for library users, its directory
//! created 0700. Each case runs in a child process so that its environment is its own.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::run_child;
use oauth_state_store::{BeginRequest, Error, Store};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn fresh_home_gets_the_xdg_default_path_with_private_directories() {
    let home = tempfile::tempdir().unwrap();
    let out = run_child(
        "child_open_default",
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("XDG_STATE_HOME", ""),
            ("OAUTH_STATE_DB", ""),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = home.path().join(".local/state");
    let file = state.join("oauth-state-store/flows.db");
    assert!(file.is_file());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&state.join("oauth-state-store")), 0o700);
    assert_eq!(
        mode(&state),
        0o700,
        "every directory made on the way is private"
    );
    // A second open finds the same flows.
    let out = run_child(
        "child_open_default",
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("XDG_STATE_HOME", ""),
            ("OAUTH_STATE_DB", ""),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FLOWS 2"), "{stdout}");
}

#[test]
fn oauth_state_db_wins_and_an_open_directory_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/here/store.db");
    let out = run_child(
        "child_open_default",
        &[("OAUTH_STATE_DB", db.to_str().unwrap())],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.is_file());
    assert_eq!(mode(db.parent().unwrap()), 0o700);

    // An existing directory that others may write to is not "fixed" silently: refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run_child(
        "child_open_default",
        &[("OAUTH_STATE_DB", open.join("flows.db").to_str().unwrap())],
        "",
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INSECURE"), "{stdout}");
    assert!(
        !open.join("flows.db").exists(),
        "nothing created in a refused directory"
    );
}

#[test]
fn no_home_and_no_variable_is_a_clear_error() {
    let out = run_child(
        "child_open_default",
        &[("HOME", ""), ("XDG_STATE_HOME", ""), ("OAUTH_STATE_DB", "")],
        "",
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INVALID HOME"), "{stdout}");
    assert!(stdout.contains("OAUTH_STATE_DB"), "{stdout}");
}

/// Opens the default store, begins a flow, prints how many rows there are.
#[test]
#[ignore = "child process of the tests above"]
fn child_open_default() {
    match Store::open_default() {
        Ok(store) => {
            store
                .begin(BeginRequest::new("https://mcp.example.com"))
                .unwrap();
            println!("FLOWS {}", store.stats().unwrap().counts.total());
        }
        Err(Error::InsecureFile { .. }) => {
            println!("INSECURE");
            std::process::exit(1);
        }
        Err(e @ Error::InvalidInput { field, .. }) => {
            println!("INVALID {field}: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            println!("OTHER {e}");
            std::process::exit(1);
        }
    }
}
