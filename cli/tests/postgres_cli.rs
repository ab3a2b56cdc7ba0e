//! The `oauth-state-store` command line on a PostgreSQL URL: `check` (connectivity, schema
//! version, the catalog), `stats` (the server's sizes and dead rows, no file facts), and the
//! read commands on an empty or older database, which say "run `oauth-state-store migrate`"
//! and change nothing.

#[path = "../../tests/common/pg.rs"]
mod pg;

use std::process::{Command, Output};

use oauth_state_store::{BeginRequest, Store};
use serde_json::Value;

const SERVER: &str = "https://mcp.example.com";
/// A password in every URL the tests hand the binary: no output may repeat it.
const PASSWORD: &str = "pw-never-shown";

/// `url` with the tests' password in it (the test server trusts loopback, so any works).
fn with_password(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1)
}

/// Runs the binary with `args` and `--db url`, no database variables inherited.
fn cli(url: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_oauth-state-store"))
        .args(args)
        .arg("--db")
        .arg(url)
        .env_remove("OAUTH_STATE_DB")
        .env_remove("XDG_STATE_HOME")
        .output()
        .expect("run oauth-state-store");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(PASSWORD), "the output shows the URL: {all}");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {}", text(&o.stdout)))
}

fn migrated(cluster: &pg::Cluster, test: &str) -> String {
    let url = with_password(&cluster.fresh_database(test));
    let out = cli(&url, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    url
}

#[test]
fn check_on_a_url_reports_connectivity_schema_and_each_missing_object() {
    let Some(cluster) = pg::cluster("cli_check_url") else {
        return;
    };
    let url = migrated(cluster, "cli_check");
    let ok = cli(&url, &["check"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let line = text(&ok.stdout);
    assert!(
        line.starts_with("ok: the PostgreSQL database: connected (PostgreSQL "),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
    let doc = json(&cli(&url, &["check", "--json"]));
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["engine"], "postgresql");
    let checked: Vec<&str> = doc["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for item in [
        "table flows",
        "table meta",
        "column flows.code_verifier",
        "index flows_by_expiry",
        "index flows_state_key_key",
    ] {
        assert!(checked.contains(&item), "{item} not checked: {checked:?}");
    }

    // Two objects gone: two lines, exit status 1, and the same two in the JSON.
    cluster
        .client(url.rsplit('/').next().unwrap().split('?').next().unwrap())
        .batch_execute("DROP INDEX flows_by_server; DROP INDEX flows_by_expiry")
        .unwrap();
    let before = cluster.snapshot(&url);
    let bad = cli(&url, &["check"]);
    assert_eq!(bad.status.code(), Some(1));
    let lines: Vec<String> = text(&bad.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0]
        .starts_with("problem (schema): index flows_by_expiry on flows is missing; to fix: "));
    assert!(lines[1].starts_with("problem (schema): index flows_by_server on flows is missing"));
    let doc = json(&cli(&url, &["check", "--json"]));
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"].as_array().unwrap().len(), 2);
    assert_eq!(cluster.snapshot(&url), before, "check changed the database");
}

#[test]
fn check_on_an_unreachable_server_could_not_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url =
        format!("postgresql://u:{PASSWORD}@127.0.0.1:{port}/db?sslmode=disable&connect_timeout=2");
    let out = cli(&url, &["check", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["error"], "unavailable");
    assert!(
        text(&out.stderr).contains("unavailable"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stats_on_a_url_shows_the_servers_sizes_and_no_file_facts() {
    let Some(cluster) = pg::cluster("cli_stats_url") else {
        return;
    };
    let url = migrated(cluster, "cli_stats");
    let store = Store::open(&url).unwrap();
    for _ in 0..3 {
        let f = store.begin(BeginRequest::new(SERVER)).unwrap();
        store.consume(f.state().secret()).unwrap();
    }
    store.begin(BeginRequest::new(SERVER)).unwrap();
    drop(store);
    let vacuum = cli(&url, &["sweep", "--vacuum", "--json"]);
    assert_eq!(vacuum.status.code(), Some(0), "{}", text(&vacuum.stderr));
    assert_eq!(json(&vacuum)["vacuum"]["vacuumed"], true);

    let out = cli(&url, &["stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    for shown in [
        "the PostgreSQL database",
        "server",
        "table flows",
        "index flows_by_expiry",
        "row versions",
        "last vacuum",
        "consumed",
    ] {
        assert!(human.contains(shown), "{shown}: {human}");
    }
    for absent in ["wal size", "journal mode", "sqlite", "file size"] {
        assert!(!human.contains(absent), "{absent}: {human}");
    }

    let doc = json(&cli(&url, &["stats", "--json"]));
    for absent in [
        "wal_bytes",
        "journal_mode",
        "sqlite_version",
        "file_bytes",
        "path",
    ] {
        assert!(doc.get(absent).is_none(), "{absent}: {doc}");
    }
    assert_eq!(doc["engine"], "postgresql");
    assert_eq!(doc["total"], 4);
    assert_eq!(doc["counts"]["consumed"], 3);
    let relations = doc["relations"].as_array().unwrap();
    let names: Vec<&str> = relations
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in [
        "flows",
        "meta",
        "flows_pkey",
        "flows_by_expiry",
        "flows_state_key_key",
    ] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
    assert!(relations.iter().all(|r| r["bytes"].as_u64().is_some()));
    assert!(doc["dead_rows"].as_u64().is_some(), "{doc}");
    assert!(doc["live_rows"].as_u64().is_some(), "{doc}");
    assert!(
        doc["last_vacuum"].as_i64().is_some(),
        "sweep --vacuum ran: {doc}"
    );
}

/// `stats`, `list` and `sweep` on `url`: each refused with "run `oauth-state-store migrate`",
/// exit status 1, the database unchanged.
fn read_commands_refuse(cluster: &pg::Cluster, url: &str, found: i64) {
    let before = cluster.snapshot(url);
    for args in [
        &["stats"][..],
        &["list"],
        &["sweep"],
        &["sweep", "--dry-run"],
        &["sweep", "--vacuum"],
    ] {
        let out = cli(url, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("run `oauth-state-store migrate`"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&format!("version {found}")), "{args:?}: {err}");
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let doc = json(&cli(url, &json_args));
        assert_eq!(doc["error"], "migration_needed", "{args:?}: {doc}");
        assert_eq!(
            cluster.snapshot(url),
            before,
            "{args:?} changed the database"
        );
    }
}

#[test]
fn read_commands_on_an_empty_or_older_database_ask_for_migrate_and_change_nothing() {
    let Some(cluster) = pg::cluster("cli_migration_needed") else {
        return;
    };
    let empty = with_password(&cluster.fresh_database("cli_empty"));
    read_commands_refuse(cluster, &empty, 0);
    assert!(cluster.snapshot(&empty).is_empty());

    // A database with the store's tables but no record of the migrator's: another
    // program's, refused as not a store, unchanged.
    let unrecorded = migrated(cluster, "cli_unrecorded");
    let name = unrecorded
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    cluster
        .client(name)
        .batch_execute("DROP TABLE oauth_state_store_migrations")
        .unwrap();
    let before = cluster.snapshot(&unrecorded);
    for args in [
        &["stats"][..],
        &["list"],
        &["sweep"],
        &["check"],
        &["migrate"],
    ] {
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let out = cli(&unrecorded, &json_args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(json(&out)["error"], "not_a_store", "{args:?}");
        assert_eq!(cluster.snapshot(&unrecorded), before, "{args:?}");
    }

    // Library users who open with migrate(false) get the same typed refusal.
    let e = oauth_state_store::StoreOptions::default()
        .migrate(false)
        .open(&empty)
        .unwrap_err();
    assert!(
        matches!(
            e,
            oauth_state_store::Error::MigrationNeeded { found: 0, .. }
        ),
        "{e:?}"
    );

    // `migrate` is the one command that changes the schema; then the others work.
    let out = cli(&empty, &["migrate", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["created"], true);
    for args in [&["stats"][..], &["list"], &["sweep"]] {
        let out = cli(&empty, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn list_and_sweep_work_on_a_url_without_showing_a_secret() {
    let Some(cluster) = pg::cluster("cli_list_url") else {
        return;
    };
    let url = migrated(cluster, "cli_list");
    let store = Store::open(&url).unwrap();
    let kept = store.begin(BeginRequest::new(SERVER)).unwrap();
    let used = store.begin(BeginRequest::new(SERVER)).unwrap();
    let consumed = store.consume(used.state().secret()).unwrap();
    let out = cli(&url, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = text(&out.stdout);
    for secret in [
        kept.state().secret(),
        used.state().secret(),
        consumed.verifier.secret(),
    ] {
        assert!(!all.contains(secret), "list shows a secret");
    }
    assert_eq!(json(&out)["flows"].as_array().unwrap().len(), 2);
    let swept = json(&cli(&url, &["sweep", "--json"]));
    assert_eq!(swept["total"], 0, "nothing has expired: {swept}");
}
