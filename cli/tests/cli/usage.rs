//! What every command shares: missing and insecure files, exit statuses, JSON errors, `--help`,
//! `--busy-timeout` and `completions`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use oauth_state_store::SCHEMA_VERSION;
use serde_json::Value;

use super::{cli, cli_raw, json_error, stderr, stdout};
use crate::common::Fixture;

#[test]
fn check_and_the_other_commands_refuse_an_insecure_mode() {
    // As root the owner test passes, so the mode rule is what refuses the file here.
    let fx = Fixture::new();
    drop(fx.store());
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&fx.path, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("problem (permissions)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("chmod 600"));
    for cmd in ["stats", "list", "sweep"] {
        let out = cli(&fx.path, &[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&out).contains("refusing to use"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_missing_file_is_a_clear_error_and_only_migrate_creates_it() {
    let fx = Fixture::new();
    let nested = fx.dir.path().join("state/oauth-state-store/flows.db");
    for path in [&fx.path, &nested] {
        for cmd in ["stats", "list", "check", "sweep"] {
            let out = cli(path, &[cmd]);
            // 3: the command could not run (was 1 before exit statuses were split).
            assert_eq!(out.status.code(), Some(3), "{cmd}");
            let err = stderr(&out);
            assert!(err.contains("does not exist"), "{cmd}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
            assert!(!path.exists(), "{cmd} created the file");
        }
    }
    let out = cli(&nested, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("schema version {SCHEMA_VERSION}")));
    let dir_mode = fs::metadata(nested.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert_eq!(
        fs::metadata(&nested).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = cli(&nested, &["migrate"]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );
    assert_eq!(cli(&nested, &["check"]).status.code(), Some(0));
}

#[test]
fn help_shows_an_example_and_usage_errors_exit_2() {
    let fx = Fixture::new();
    for cmd in ["sweep", "stats", "list", "check", "migrate"] {
        let out = cli(&fx.path, &[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("Example"), "{cmd}");
    }
    assert_eq!(cli(&fx.path, &["sweep", "--bogus"]).status.code(), Some(2));
    assert_eq!(
        cli(&fx.path, &["sweep", "--older-than", "soon"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn exit_statuses_are_ok_problem_usage_and_could_not_run_and_json_errors_are_objects() {
    let fx = Fixture::new();
    let missing = cli(&fx.path, &["stats", "--json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(json_error(&missing)["error"], "database_missing");
    assert!(!stderr(&missing).contains("os error"));

    drop(fx.store());
    assert_eq!(cli(&fx.path, &["stats"]).status.code(), Some(0));
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    for cmd in ["stats", "list", "sweep", "migrate"] {
        let refused = cli(&fx.path, &[cmd, "--json"]);
        assert_eq!(refused.status.code(), Some(1), "{cmd}");
        assert_eq!(json_error(&refused)["error"], "insecure_file", "{cmd}");
    }
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();

    let usage = cli(&fx.path, &["sweep", "--bogus", "--json"]);
    assert_eq!(usage.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&usage.stdout).expect("JSON usage error");
    assert_eq!(
        (doc["error"].as_str(), doc["exit_status"].as_i64()),
        (Some("usage"), Some(2))
    );
    // Without --json, nothing on stdout.
    assert!(cli(&fx.path, &["sweep", "--bogus"]).stdout.is_empty());
}

#[test]
fn a_missing_file_in_a_shared_directory_is_does_not_exist_not_an_os_error() {
    let fx = Fixture::new();
    let shared = fx.dir.path().join("tmp");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    for cmd in ["check", "stats", "list", "sweep"] {
        let out = cli(&shared.join("x.db"), &[cmd]);
        assert_eq!(out.status.code(), Some(3), "{cmd}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("does not exist"), "{cmd}: {err}");
        assert!(!err.contains("os error"), "{cmd}: {err}");
        assert!(!shared.join("x.db").exists());
    }
}

#[test]
fn busy_timeout_is_used_and_the_busy_message_names_the_flag() {
    let fx = Fixture::new();
    drop(fx.store());
    let holder = rusqlite::Connection::open(&fx.path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = cli(&fx.path, &["sweep", "--busy-timeout", "200ms", "--json"]);
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"], "busy");
    let err = stderr(&out);
    assert!(err.contains("(200ms)"), "{err}");
    assert!(err.contains("--busy-timeout"), "{err}");
    let bad = cli(&fx.path, &["stats", "--busy-timeout", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        cli(&fx.path, &["check", "--busy-timeout", "1s"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn lock_wait_aging_keeps_to_the_busy_timeout_and_other_values_are_usage_errors() {
    let fx = Fixture::new();
    drop(fx.store());
    let holder = rusqlite::Connection::open(&fx.path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let args = [
        "sweep",
        "--lock-wait",
        "aging",
        "--busy-timeout",
        "200ms",
        "--json",
    ];
    let out = cli(&fx.path, &args);
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"], "busy");
    assert_eq!(cli(&fx.path, &args).status.code(), Some(0));
    let bad = cli(&fx.path, &["stats", "--lock-wait", "spin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("backoff"), "{}", stderr(&bad));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cli_raw(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["oauth-state-store", "sweep", "older-than", "busy-timeout"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    assert_eq!(cli_raw(&["completions", "cmd"], &[]).status.code(), Some(2));
}

#[test]
fn help_names_the_variable_the_resolved_default_and_the_exit_statuses() {
    let home = "/home/someone";
    let out = cli_raw(&["--help"], &[("HOME", home)]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("[env: OAUTH_STATE_DB]"), "{help}");
    assert!(
        help.contains("[default: /home/someone/.local/state/oauth-state-store/flows.db]"),
        "{help}"
    );
    for status in [
        "0  success",
        "1  a problem found",
        "2  a usage error",
        "3  the command could not run",
    ] {
        assert!(help.contains(status), "{status}: {help}");
    }
    let env = cli_raw(&["sweep", "--help"], &[("OAUTH_STATE_DB", "/srv/flows.db")]);
    assert!(
        stdout(&env).contains("[default: /srv/flows.db]"),
        "{}",
        stdout(&env)
    );
}

#[test]
fn an_empty_database_variable_means_the_default_path() {
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let out = cli_raw(&["stats"], &[("OAUTH_STATE_DB", ""), ("HOME", home_dir)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        err.contains(".local/state/oauth-state-store/flows.db"),
        "{err}"
    );
}
