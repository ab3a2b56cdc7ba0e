//! TLS to PostgreSQL as the URL's `sslmode` and `sslrootcert` ask, against a server of the
//! test's own with TLS on and a certificate for `127.0.0.1` and `localhost` signed by a CA made
//! at test time (no committed key).
//!
//! Each store names itself with an `application_name` of its own, so the server's
//! `pg_stat_ssl` tells whether that store's connection is encrypted. Hosts other than
//! `127.0.0.1` are given with `hostaddr=127.0.0.1`: the name is what TLS checks, the address
//! is where the connection goes, and nothing leaves loopback.

#[path = "common/ca.rs"]
mod ca;
#[path = "common/pg.rs"]
mod pg;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oauth_state_store::{BeginRequest, Error, Store, StoreOptions};

/// In every URL, and in no error.
const PASSWORD: &str = "pw-never-in-errors";

/// The database the stores use on the TLS server.
const DATABASE: &str = "tls";

/// The child test that opens a store with the environment its parent sets.
const CHILD: &str = "child_opens_with_the_system_roots";
const URL_VAR: &str = "OSS_TEST_TLS_URL";

/// The TLS server and the CA files the tests name in `sslrootcert`.
struct Fixture {
    cluster: pg::Cluster,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server presents.
    other_ca: PathBuf,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

/// The shared TLS server, started on first use; `None` (after `SKIPPED`) where PostgreSQL is
/// missing and not required.
fn fixture(test: &str) -> Option<&'static Fixture> {
    let fixture = FIXTURE.get_or_init(|| {
        if let Err(why) = pg::find_binaries() {
            assert!(!pg::required(), "{}=1 but {why}", pg::REQUIRE_VAR);
            return None;
        }
        let ca = ca::TestCa::new("oauth-state-store test CA");
        let (cert, key) = ca.server(&["localhost", "127.0.0.1"]);
        let cluster = pg::Cluster::start_tls(&cert, &key);
        // Beside the data directory: removed with the cluster.
        let dir = cluster.data().parent().unwrap().to_path_buf();
        let other = ca::TestCa::new("another test CA");
        let fixture = Fixture {
            ca: ca.write(&dir, "ca.pem"),
            other_ca: other.write(&dir, "other-ca.pem"),
            cluster,
        };
        fixture
            .cluster
            .client("postgres")
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .expect("create the test database");
        Some(fixture)
    });
    if fixture.is_none() {
        println!("SKIPPED: {test}: PostgreSQL is not installed");
    }
    fixture.as_ref()
}

impl Fixture {
    /// A URL to the TLS server by `host` (reached at 127.0.0.1), with `query` and the
    /// application name `app`.
    fn url(&self, host: &str, app: &str, query: &str) -> String {
        let port = self.cluster.port();
        let hostaddr = if host == "127.0.0.1" {
            ""
        } else {
            "&hostaddr=127.0.0.1"
        };
        format!(
            "postgresql://postgres:{PASSWORD}@{host}:{port}/{DATABASE}?application_name={app}\
             &connect_timeout=10{hostaddr}&{query}"
        )
    }

    /// `sslrootcert=` the CA that signed the server's certificate.
    fn ca(&self) -> String {
        format!("sslrootcert={}", self.ca.display())
    }

    fn other_ca(&self) -> String {
        format!("sslrootcert={}", self.other_ca.display())
    }
}

fn open(url: &str) -> oauth_state_store::Result<Store> {
    StoreOptions::default()
        .busy_timeout(Duration::from_secs(2))
        .open(url)
}

/// Whether each connection of application `app` on `cluster` is encrypted, as the server says
/// (asked over a plain connection of the test's own).
fn encrypted(cluster: &pg::Cluster, app: &str) -> Vec<bool> {
    let mut admin = cluster.client("postgres");
    admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.application_name = $1",
            &[&app],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Opens a store at `url`, runs a login through it, and returns whether its connections
/// were encrypted.
fn open_and_run(cluster: &pg::Cluster, url: &str, app: &str) -> Vec<bool> {
    let store = open(url).unwrap_or_else(|e| panic!("{app}: {e}: {:?}", source_texts(&e)));
    let flow = store
        .begin(BeginRequest::new("https://mcp.example.com"))
        .expect("begin over the connection");
    store
        .consume(flow.state().secret())
        .expect("consume over the connection");
    let seen = encrypted(cluster, app);
    assert!(!seen.is_empty(), "{app}: the server lists no connection");
    drop(store);
    seen
}

/// The error's text and every source's, for the checks that no secret is in them.
fn source_texts(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut source = e.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        source = s.source();
    }
    texts
}

/// Opening `url` fails with [`Error::Tls`] whose reason starts with `reason`, soon (within
/// the busy timeout and the pool's last retry), with no password in any text of it.
fn refused(url: &str, reason: &str) {
    let started = Instant::now();
    let e = match open(url) {
        Ok(_) => panic!("connected: {url}"),
        Err(e) => e,
    };
    let Error::Tls { reason: why, .. } = &e else {
        panic!("not a TLS error: {e:?}");
    };
    assert!(why.starts_with(reason), "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for t in source_texts(&e) {
        assert!(!t.contains(PASSWORD), "an error shows the password: {t}");
    }
}

#[test]
fn require_encrypts_without_checking_the_certificate() {
    let Some(f) = fixture("require_encrypts") else {
        return;
    };
    // libpq's require: encrypted, certificate not checked (no sslrootcert).
    let url = f.url("127.0.0.1", "t_require", "sslmode=require");
    assert_eq!(open_and_run(&f.cluster, &url, "t_require"), [true]);
    // The name is not checked either.
    let url = f.url("db.invalid", "t_require_name", "sslmode=require");
    assert_eq!(open_and_run(&f.cluster, &url, "t_require_name"), [true]);
}

#[test]
fn prefer_uses_tls_when_the_server_offers_it() {
    let Some(f) = fixture("prefer_tls") else {
        return;
    };
    let url = f.url("127.0.0.1", "t_prefer", "sslmode=prefer");
    assert_eq!(open_and_run(&f.cluster, &url, "t_prefer"), [true]);
    // prefer is the default.
    let url = f.url("127.0.0.1", "t_default", "keepalives=1");
    assert_eq!(open_and_run(&f.cluster, &url, "t_default"), [true]);
    // disable is plain, even where TLS is offered.
    let url = f.url("127.0.0.1", "t_disable", "sslmode=disable");
    assert_eq!(open_and_run(&f.cluster, &url, "t_disable"), [false]);
}

#[test]
fn verify_full_with_the_servers_ca_connects_by_address_and_by_name() {
    let Some(f) = fixture("verify_full") else {
        return;
    };
    let query = format!("sslmode=verify-full&{}", f.ca());
    // The certificate's IP address name.
    let url = f.url("127.0.0.1", "t_full_ip", &query);
    assert_eq!(open_and_run(&f.cluster, &url, "t_full_ip"), [true]);
    // Its DNS name.
    let url = f.url("localhost", "t_full_dns", &query);
    assert_eq!(open_and_run(&f.cluster, &url, "t_full_dns"), [true]);
    // verify-ca checks the chain only: another name still connects.
    let query = format!("sslmode=verify-ca&{}", f.ca());
    let url = f.url("db.invalid", "t_ca_name", &query);
    assert_eq!(open_and_run(&f.cluster, &url, "t_ca_name"), [true]);
}

#[test]
fn a_certificate_from_another_ca_is_refused_clearly() {
    let Some(f) = fixture("another_ca") else {
        return;
    };
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        // With a CA file, require and prefer check the chain too, as libpq does; prefer does
        // not fall back to plain text.
        let query = format!("sslmode={mode}&{}", f.other_ca());
        let url = f.url("127.0.0.1", "t_other_ca", &query);
        refused(
            &url,
            "the server's certificate is not signed by a trusted root",
        );
    }
    assert!(encrypted(&f.cluster, "t_other_ca").is_empty());
}

#[test]
fn verify_full_refuses_a_name_the_certificate_does_not_have() {
    let Some(f) = fixture("name_mismatch") else {
        return;
    };
    let query = format!("sslmode=verify-full&{}", f.ca());
    for host in ["db.invalid", "127.0.0.2"] {
        let url = f.url(host, "t_mismatch", &query);
        refused(
            &url,
            "the server's certificate does not name the URL's host",
        );
    }
}

#[test]
fn the_cli_check_reports_a_refused_certificate_as_tls() {
    let Some(f) = fixture("check_tls") else {
        return;
    };
    let query = format!("sslmode=verify-full&{}", f.other_ca());
    let url = f.url("127.0.0.1", "t_check", &query);
    let e = oauth_state_store::check_database(&url, Duration::from_secs(2)).unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    for t in source_texts(&e) {
        assert!(!t.contains(PASSWORD), "an error shows the password: {t}");
    }
    let query = format!("sslmode=verify-full&{}", f.ca());
    let url = f.url("127.0.0.1", "t_check_ok", &query);
    oauth_state_store::check_database(&url, Duration::from_secs(2)).expect("check over TLS");
}

#[test]
fn a_server_without_tls_is_refused_by_require_and_used_in_clear_by_prefer() {
    let Some(plain) = pg::cluster("no_tls") else {
        return;
    };
    let url = |app: &str, mode: &str| {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/postgres?application_name={app}\
             &sslmode={mode}",
            plain.port()
        )
    };
    refused(
        &url("t_plain_require", "require"),
        "the server does not offer TLS, and sslmode requires it",
    );
    refused(
        &url("t_plain_full", "verify-full"),
        "the server does not offer TLS, and sslmode requires it",
    );
    assert_eq!(
        open_and_run(plain, &url("t_plain_prefer", "prefer"), "t_plain_prefer"),
        [false]
    );
}

/// Runs [`CHILD`] with `SSL_CERT_FILE` (and `SSL_CERT_DIR`) as the system's trust store.
fn open_with_system_roots(url: &str, cert_file: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([CHILD, "--exact", "--ignored", "--nocapture", "-q"])
        .env(URL_VAR, url)
        .env("SSL_CERT_FILE", cert_file)
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .expect("run the child");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result: {stdout}"))
        .to_owned()
}

#[test]
fn verify_full_without_a_ca_file_uses_the_systems_trust_store() {
    let Some(f) = fixture("system_roots") else {
        return;
    };
    // The system's store is read when the store opens; here it holds the server's CA.
    let ca = f.ca.to_str().unwrap();
    let url = f.url("127.0.0.1", "t_system", "sslmode=verify-full");
    assert_eq!(open_with_system_roots(&url, ca), "ok");
    let url = f.url("127.0.0.1", "t_system_kw", "sslrootcert=system");
    assert_eq!(open_with_system_roots(&url, ca), "ok");
    // A store without the server's CA refuses it.
    let other = f.other_ca.to_str().unwrap();
    let url = f.url("127.0.0.1", "t_system_other", "sslmode=verify-full");
    let result = open_with_system_roots(&url, other);
    assert!(
        result.starts_with("tls the server's certificate is not signed"),
        "{result}"
    );
    // No store at all: a clear error before any connection.
    let url = f.url("127.0.0.1", "t_system_none", "sslmode=verify-full");
    let result = open_with_system_roots(&url, "/nonexistent/ca.pem");
    assert!(
        result.starts_with("invalid_input sslmode=verify-full checks the server against the system's trusted roots"),
        "{result}"
    );
}

/// Opens a store at `$OSS_TEST_TLS_URL` and prints `RESULT ok`, or `RESULT <kind> <reason>`.
#[test]
#[ignore = "child process of verify_full_without_a_ca_file_uses_the_systems_trust_store"]
fn child_opens_with_the_system_roots() {
    let Ok(url) = std::env::var(URL_VAR) else {
        return;
    };
    let result = match open(&url) {
        Ok(_) => "ok".to_owned(),
        Err(Error::Tls { reason, .. }) => format!("tls {reason}"),
        Err(Error::InvalidInput { reason, .. }) => format!("invalid_input {reason}"),
        Err(e) => format!("other {e}"),
    };
    println!("RESULT {result}");
}
