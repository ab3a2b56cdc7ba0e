//! A throwaway PostgreSQL cluster for the tests: `initdb` in a temp dir, the server on
//! 127.0.0.1 at a free port with its socket in that dir, one fresh database a test.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server runs
//! as the `postgres` user through `runuser`, with the temp dir chowned to it. Where the
//! binaries are missing, [`cluster`] prints `SKIPPED: ...` and returns `None`, unless
//! `OSS_REQUIRE_POSTGRES=1` is set: then it panics, so that CI cannot skip silently.
//!
//! One cluster a test binary, started on first use ([`cluster`]). A watchdog process stops it
//! and removes its directory once the test binary has exited, whichever way it exits (a
//! `static` is never dropped); a [`Cluster`] that a test owns ([`Cluster::start`]) is also
//! stopped on drop, panics included. Child processes of a test are handed a database URL
//! and never start a cluster of their own.
//!
//! The crate's unit tests, the PostgreSQL bench and the command line's tests include this file by
//! path.
#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The variable that turns a missing PostgreSQL into a failure instead of a skip.
pub const REQUIRE_VAR: &str = "OSS_REQUIRE_POSTGRES";

/// The variable naming the directory of `initdb` and `pg_ctl` (else the Debian paths).
pub const BIN_VAR: &str = "OSS_PG_BIN";

/// The superuser the cluster is made with; the tests connect as it, over loopback, with
/// `trust` authentication (a throwaway cluster nobody else can reach).
pub const SUPERUSER: &str = "postgres";

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    durability: Durability,
    /// Whether the server also accepts TLS (`ssl = on`, `server.crt` and `server.key` in the
    /// data directory).
    tls: bool,
}

/// How much of a commit the test server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// No fsync, asynchronous commit: the fastest; a crash of the server may lose the last
    /// acknowledged commits.
    Throwaway,
    /// Synchronous commit without fsync: an acknowledged commit survives a crash of the server
    /// (its WAL is written to the OS before the commit returns), not one of the machine.
    CrashSafe,
    /// The server's defaults (fsync, synchronous commit): for benchmarks.
    Durable,
}

static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The cluster shared by this test binary, started on first use; `None` (after printing
/// `SKIPPED: <test>: <why>`) where PostgreSQL is not installed and not required.
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    let shared = SHARED.get_or_init(|| match find_binaries() {
        Ok(bin) => Some(
            Cluster::start_with(bin, Durability::Throwaway, None)
                .expect("start the test PostgreSQL"),
        ),
        Err(why) => {
            assert!(
                !required(),
                "{REQUIRE_VAR}=1 but PostgreSQL cannot run here: {why}"
            );
            eprintln!("PostgreSQL unavailable: {why}");
            None
        }
    });
    if shared.is_none() {
        println!("SKIPPED: {test}: PostgreSQL is not installed (set {BIN_VAR}, or install postgresql-15)");
    }
    shared.as_ref()
}

/// Whether `OSS_REQUIRE_POSTGRES=1`.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, or why there is none.
pub fn find_binaries() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os(BIN_VAR) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
                .unwrap_or_default();
            // Newest major version first.
            found.sort_by_key(|p| {
                std::cmp::Reverse(
                    p.parent()
                        .and_then(|v| v.file_name())
                        .and_then(|v| v.to_str())
                        .and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(0),
                )
            });
            found
        }
    };
    let bin = candidates
        .into_iter()
        .find(|d| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| d.join(b).is_file())
        })
        .ok_or_else(|| "no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin".to_owned())?;
    if rustix::process::geteuid().is_root() && !Path::new("/usr/sbin/runuser").exists() {
        return Err("running as root and /usr/sbin/runuser is missing".to_owned());
    }
    Ok(bin)
}

impl Cluster {
    /// Starts a cluster of this test's own, stopped when it is dropped. Panics if PostgreSQL
    /// is missing (call [`cluster`] first to skip).
    pub fn start() -> Cluster {
        let bin = find_binaries().expect("PostgreSQL binaries");
        Cluster::start_with(bin, Durability::Throwaway, None).expect("start a test PostgreSQL")
    }

    /// Like [`Cluster::start`], with synchronous commit (still no fsync): every acknowledged
    /// commit survives a crash of the server (`stop_server("immediate")`), for fault tests.
    pub fn start_crash_safe() -> Cluster {
        let bin = find_binaries().expect("PostgreSQL binaries");
        Cluster::start_with(bin, Durability::CrashSafe, None).expect("start a test PostgreSQL")
    }

    /// Like [`Cluster::start`], with the server's default durability (`fsync` and
    /// `synchronous_commit` on) instead of the tests' shortcuts: for benchmarks.
    pub fn start_durable() -> Cluster {
        let bin = find_binaries().expect("PostgreSQL binaries");
        Cluster::start_with(bin, Durability::Durable, None).expect("start a test PostgreSQL")
    }

    /// Like [`Cluster::start`], with TLS on: the server presents `cert_pem` (its certificate,
    /// then any intermediates) with the key `key_pem`. Plain connections are still accepted,
    /// so [`Cluster::url`] and [`Cluster::client`] work as on any cluster.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Cluster {
        let bin = find_binaries().expect("PostgreSQL binaries");
        Cluster::start_with(bin, Durability::Throwaway, Some((cert_pem, key_pem)))
            .expect("start a test PostgreSQL with TLS")
    }

    fn start_with(
        bin: PathBuf,
        durability: Durability,
        tls: Option<(&str, &str)>,
    ) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("oauth-state-store-pg")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let run_as = rustix::process::geteuid()
            .is_root()
            .then(|| SUPERUSER.to_owned());
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            run_as,
            durability,
            tls: tls.is_some(),
        };
        if let Some(user) = &cluster.run_as {
            let status = Command::new("chown")
                .args([&format!("{user}:"), cluster.dir.to_str().unwrap()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("chown {user} {} failed", cluster.dir.display()));
            }
        }
        cluster.watchdog()?;
        cluster.run(
            "initdb",
            &[
                "-D",
                cluster.data().to_str().unwrap(),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        // The test settings live in a file of their own, included once by postgresql.conf.
        let conf = cluster.data().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|e| format!("read {}: {e}", conf.display()))?;
        text.push_str("\ninclude 'oauth_state_store_test.conf'\n");
        std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
        if let Some((cert, key)) = tls {
            cluster.write_server_file("server.crt", cert, 0o644)?;
            // The server refuses a key others may read.
            cluster.write_server_file("server.key", key, 0o600)?;
        }
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Writes `name` into the data directory with `mode`, owned by the server's user.
    fn write_server_file(&self, name: &str, text: &str, mode: u32) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.data().join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        if let Some(user) = &self.run_as {
            let status = Command::new("chown")
                .args([&format!("{user}:"), path.to_str().unwrap()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("chown {user} {} failed", path.display()));
            }
        }
        Ok(())
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log (each line prefixed `<time> [<pid>] db=<database> app=<application> `).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Picks a free port, writes it into the configuration, starts the server and waits until
    /// it accepts connections. Retries with another port if one was taken in between.
    pub fn start_server(&mut self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..5 {
            if self.port == 0 || last.contains("port") || last.contains("address") {
                self.port = free_port()?;
            }
            self.write_config()?;
            let log = self.dir.join("server.log");
            match self.run(
                "pg_ctl",
                &[
                    "-D",
                    self.data().to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                    self.port = 0;
                }
            }
        }
        Err(format!("the test server did not start: {last}"))
    }

    /// Stops the server (`immediate`: like a crash, no checkpoint) and waits for it to exit.
    pub fn stop_server(&self, mode: &str) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        );
    }

    /// The settings for a throwaway server: loopback TCP, the socket in the temp dir, enough
    /// connections for 16 processes with pools of their own, (unless durable) no fsync,
    /// (unless crash-safe) asynchronous commit, and TLS when the cluster has a certificate.
    fn write_config(&self) -> Result<(), String> {
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 300\nshared_buffers = 64MB\nlog_min_messages = warning\n\
             log_line_prefix = '%m [%p] db=%d app=%a '\n",
            self.port,
            self.dir.display()
        );
        match self.durability {
            Durability::Throwaway => {
                conf.push_str("fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")
            }
            Durability::CrashSafe => conf.push_str("fsync = off\nfull_page_writes = off\n"),
            Durability::Durable => {}
        }
        if self.tls {
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        std::fs::write(self.data().join("oauth_state_store_test.conf"), conf)
            .map_err(|e| format!("write oauth_state_store_test.conf: {e}"))
    }

    /// Runs one of the cluster's programs as the cluster's user, failing on a non-zero exit.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("/usr/sbin/runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A process that waits for this test process to end, then stops the server and removes
    /// the directory: cleanup that needs no destructor (statics) and survives a panic or abort.
    fn watchdog(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let stop = match &self.run_as {
            Some(user) => format!(
                "/usr/sbin/runuser -u {user} -- {} -D {} -m immediate -w stop",
                pg_ctl.display(),
                data.display()
            ),
            None => format!(
                "{} -D {} -m immediate -w stop",
                pg_ctl.display(),
                data.display()
            ),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             if [ -f {data}/postmaster.pid ]; then {stop} >/dev/null 2>&1; fi; rm -rf {dir}",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("watchdog: {e}"))
    }

    /// A URL for `database` on this cluster, without TLS (loopback).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@127.0.0.1:{}/{database}?sslmode=disable&connect_timeout=10",
            self.port
        )
    }

    /// A plain client on `database`.
    pub fn client(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(database), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test PostgreSQL: {e}"))
    }

    /// Creates a fresh empty database for one test and returns its URL.
    pub fn fresh_database(&self, test: &str) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let name: String = format!("t{}_{n}_{test}", std::process::id())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        let mut admin = self.client("postgres");
        // The name is made of [a-z0-9_] above, so quoting it is enough.
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create the test database");
        self.url(&name)
    }

    /// What a command that only reads must leave as it was, in a stable order: every
    /// relation of the database's schema with its kind and columns, every recorded
    /// migration, and the `meta` rows.
    pub fn snapshot(&self, url: &str) -> Vec<String> {
        const RELATIONS: &str = "SELECT c.relname::text || ' ' || c.relkind::text || ' ' \
             || coalesce((SELECT string_agg(attname::text, ',' ORDER BY attnum) \
             FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped), '') \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace ORDER BY 1";
        const RECORDED: &str = "SELECT 'migration ' || version || ' ' || name \
             FROM oauth_state_store_migrations ORDER BY version";
        const META: &str = "SELECT 'meta ' || key || '=' || value FROM meta ORDER BY key";
        let mut c = postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test PostgreSQL: {e}"));
        let mut lines = Vec::new();
        for (query, table) in [
            (RELATIONS, None),
            (RECORDED, Some("oauth_state_store_migrations")),
            (META, Some("meta")),
        ] {
            if let Some(t) = table {
                let exists: bool = c
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])
                    .unwrap()
                    .get(0);
                if !exists {
                    continue;
                }
            }
            for row in c.query(query, &[]).unwrap() {
                lines.push(row.get::<_, String>(0));
            }
        }
        lines
    }

    /// Waits until the server accepts connections again (after a restart), up to `limit`.
    pub fn wait_ready(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_server("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}
