//! Connecting: which strings are PostgreSQL URLs, the settings the store adds to them, and the
//! pool's connections with their prepared statements ([`Conn`]). TLS (the URL's `sslmode` and
//! `sslrootcert`, as libpq reads them) is [`super::tls`]'s.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, Config, Statement};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

use super::tls::{self, Connector, Tls};

/// How long opening a connection may take when the URL does not say (`connect_timeout`).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` the server shows for the store's connections unless the URL names one.
pub(crate) const APPLICATION_NAME: &str = "oauth-state-store";

use crate::validate::is_postgres_url as is_url;

/// Why a URL was refused. Never carries the URL, which may hold a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// Not a `postgres://` or `postgresql://` URL.
    NotAUrl,
    /// The driver could not read it (an unknown option, a bad port, ...).
    Unreadable,
    /// It names no host to connect to.
    NoHost,
    /// Its TLS parameters are refused: the reason names the parameter.
    Tls(&'static str),
}

impl UrlError {
    /// What is wrong, for an `InvalidInput` reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            UrlError::NotAUrl => "must start with postgres:// or postgresql://",
            UrlError::Unreadable => {
                "is not a valid PostgreSQL URL (check the host, port and query options)"
            }
            UrlError::NoHost => "names no host",
            UrlError::Tls(reason) => reason,
        }
    }
}

/// A URL read: the driver's settings and the TLS settings the driver does not know. (The
/// driver's `Debug` leaves the password out.)
#[derive(Debug)]
pub(crate) struct Settings {
    /// The driver's settings; its `sslmode` says whether TLS is asked for and required.
    pub(crate) driver: Config,
    /// What the connector checks of the server's certificate.
    pub(crate) tls: Tls,
}

/// Reads `url` into the driver's settings and the TLS settings, adding a connect timeout and
/// an application name where the URL has none.
///
/// # Errors
///
/// A [`UrlError`] saying what is wrong; the URL itself is never part of it.
pub(crate) fn config(url: &str) -> Result<Settings, UrlError> {
    if !is_url(url) {
        return Err(UrlError::NotAUrl);
    }
    let (rest, tls) = tls::split(url).map_err(UrlError::Tls)?;
    let mut config = Config::from_str(&rest).map_err(|_| UrlError::Unreadable)?;
    if config.get_hosts().is_empty() {
        return Err(UrlError::NoHost);
    }
    config.ssl_mode(tls.driver_mode());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    Ok(Settings {
        driver: config,
        tls,
    })
}

/// One pooled connection: the driver's client and the statements prepared on it.
///
/// A statement is prepared (one Parse/Describe round trip) the first time this connection runs
/// it, then each run is one round trip: the driver's `query(&str)` would prepare, run and
/// close it every time. The cache lives and dies with the connection, so a connection the pool
/// replaces (lost, broken) starts with none. Keys are the engine's `const` statements
/// (`&'static str`), a fixed set, so the cache needs no bound.
pub(crate) struct Conn {
    client: Client,
    /// The connection failed while idle in the pool: the pool drops it when it comes back.
    broken: bool,
    /// A short list (one entry a statement the engine has): searched in order.
    statements: Vec<(&'static str, Statement)>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            broken: false,
            statements: Vec::new(),
        }
    }

    /// A statement on this connection lost the connection (the server ended the session):
    /// the pool drops it when it comes back instead of handing it out again.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether the server ended this connection while it sat idle (a FATAL, a reset, the end
    /// of the stream): the driver reads what already arrived, without a round trip and
    /// without waiting for the network. A statement sent on such a connection would fail
    /// with an unknown outcome although it never reached a server.
    pub(crate) fn ended_while_idle(&mut self) -> bool {
        {
            let mut pending = self.client.notifications();
            let mut pending = pending.iter();
            for _ in 0..16 {
                match pending.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        self.broken = true;
                        break;
                    }
                }
            }
        }
        self.broken |= self.client.is_closed();
        self.broken
    }

    /// `sql` prepared on this connection: prepared on first use, the same statement after.
    ///
    /// # Errors
    ///
    /// The driver's error when the server refuses the statement or the connection is lost;
    /// nothing is cached then.
    pub(crate) fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some((_, statement)) = self.statements.iter().find(|(s, _)| *s == sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.push((sql, statement.clone()));
        Ok(statement)
    }

    /// A connection of the tests' own, as the pool would make it.
    #[cfg(test)]
    pub(crate) fn for_tests(client: Client) -> Conn {
        Conn::new(client)
    }

    /// How many statements this connection has prepared (for the tests).
    #[cfg(test)]
    pub(crate) fn prepared_count(&self) -> usize {
        self.statements.len()
    }
}

impl Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The pool's connection manager: `r2d2_postgres`'s, with each connection a [`Conn`].
pub(crate) struct Manager {
    inner: PostgresConnectionManager<Connector>,
    tls_failure: TlsFailure,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings may hold a password: none of them is printed.
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// Connections to `config` through `tls`.
    pub(crate) fn new(config: Config, tls: Connector) -> Manager {
        Manager {
            inner: PostgresConnectionManager::new(config, tls),
            tls_failure: TlsFailure::default(),
        }
    }

    /// Where the pool's error handler keeps the last connection failure that was TLS's.
    pub(crate) fn tls_failure(&self) -> TlsFailure {
        self.tls_failure.clone()
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let conn = self.inner.connect().map(Conn::new)?;
        self.tls_failure.keep(None);
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken || self.inner.has_broken(&mut conn.client)
    }
}

/// The pool's last connection failure when it was TLS's (a certificate refused, a server
/// without TLS that `sslmode` requires), since the last connection made.
///
/// r2d2 retries a failed connection until its timeout and then reports only the failure's
/// text; this keeps the driver's error itself, so that the caller gets [`Error::Tls`]
/// (retrying will not help) rather than [`Error::Unavailable`] (retry later).
///
/// [`Error::Tls`]: crate::Error::Tls
/// [`Error::Unavailable`]: crate::Error::Unavailable
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsFailure(Arc<Mutex<Option<postgres::Error>>>);

impl TlsFailure {
    fn keep(&self, e: Option<postgres::Error>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = e;
    }

    /// The last failure, if it was TLS's; taken, so that it is reported once.
    pub(crate) fn take(&self) -> Option<postgres::Error> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl r2d2::HandleError<postgres::Error> for TlsFailure {
    fn handle_error(&self, e: postgres::Error) {
        if tls::failure(&e).is_some() {
            self.keep(Some(e));
        } else {
            self.keep(None);
            // What r2d2 does with a failure when no handler is given.
            r2d2::LoggingErrorHandler.handle_error(e);
        }
    }
}

/// Opens one connection with `settings` (the engine's pool connects through r2d2; this is for
/// the tests that need one plain connection).
///
/// # Errors
///
/// The connector's error when the `sslrootcert` file cannot be used; the driver's when the
/// server cannot be reached, refuses the login or the TLS handshake fails.
#[cfg(test)]
pub(crate) fn connect(settings: &Settings) -> Result<postgres::Client, ConnectError> {
    let tls = tls::connector(&settings.tls).map_err(ConnectError::Tls)?;
    settings.driver.connect(tls).map_err(ConnectError::Postgres)
}

/// Why a connection could not be opened.
#[cfg(test)]
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The TLS connector could not be built.
    #[error("the TLS connector could not be set up")]
    Tls(#[source] crate::error::Error),
    /// The server could not be reached or refused.
    #[error("could not connect to PostgreSQL")]
    Postgres(#[source] postgres::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        for url in [
            "postgres://h/db",
            "postgresql://u@h:5432/db?sslmode=require",
            "POSTGRESQL://h/db",
        ] {
            assert!(is_url(url), "{url}");
        }
        for path in [
            "flows.db",
            "/var/lib/postgres/flows.db",
            "postgres:",
            "",
            "post",
        ] {
            assert!(!is_url(path), "{path}");
        }
    }

    #[test]
    fn the_store_adds_a_timeout_and_its_name_unless_the_url_says() {
        let c = config("postgresql://u@127.0.0.1:5432/db").unwrap().driver;
        assert_eq!(c.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(c.get_application_name(), Some(APPLICATION_NAME));
        let c = config("postgres://u@h/db?connect_timeout=3&application_name=app")
            .unwrap()
            .driver;
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(c.get_application_name(), Some("app"));
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        assert_eq!(config("flows.db").unwrap_err(), UrlError::NotAUrl);
        assert_eq!(
            config("postgres://u:hunter2@h:notaport/db").unwrap_err(),
            UrlError::Unreadable
        );
        let Err(UrlError::Tls(why)) = config("postgres://u:hunter2@h/db?sslmode=sometimes") else {
            panic!("an unknown sslmode was accepted");
        };
        assert!(why.starts_with("sslmode must be"), "{why}");
        for e in [
            UrlError::NotAUrl,
            UrlError::Unreadable,
            UrlError::NoHost,
            UrlError::Tls(why),
        ] {
            assert!(!e.reason().contains("hunter2"));
        }
    }

    #[test]
    fn loopback_without_tls_connects_and_require_refuses_a_server_without_it() {
        let Some(pg) = crate::backend::postgres::test_cluster::cluster("connect_sslmode") else {
            return;
        };
        let url = pg.url("postgres");
        let mut c = connect(&config(&url).unwrap()).expect("sslmode=disable on loopback");
        let name: String = c
            .query_one("SELECT current_setting('application_name')", &[])
            .unwrap()
            .get(0);
        assert_eq!(name, APPLICATION_NAME);
        let ssl: bool = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(!ssl);
        // The test server has no certificate: `require` must refuse it, not fall back.
        let secret = "pw-not-in-errors";
        let required = format!(
            "postgresql://postgres:{secret}@127.0.0.1:{}/postgres?sslmode=require",
            pg.port()
        );
        let Err(ConnectError::Postgres(e)) = connect(&config(&required).unwrap()) else {
            panic!("sslmode=require connected to a server without TLS");
        };
        let e = crate::backend::postgres::error::classify(e, Duration::from_secs(1));
        let crate::Error::Tls { reason, .. } = &e else {
            panic!("not a TLS error: {e:?}");
        };
        assert_eq!(
            *reason,
            "the server does not offer TLS, and sslmode requires it"
        );
        let mut texts = vec![e.to_string(), format!("{e:?}")];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            texts.push(s.to_string());
            source = s.source();
        }
        for t in texts {
            assert!(!t.contains(secret), "an error shows the password: {t}");
        }
    }

    /// The statements a connection has prepared, as the server lists them for its session
    /// (asked by a simple query, which prepares nothing).
    fn server_statements(conn: &mut Conn) -> Vec<String> {
        simple_column(
            conn,
            "SELECT statement FROM pg_prepared_statements ORDER BY 1",
        )
    }

    fn simple_column(conn: &mut Conn, sql: &str) -> Vec<String> {
        conn.simple_query(sql)
            .unwrap()
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    fn backend_pid(conn: &mut Conn) -> i32 {
        simple_column(conn, "SELECT pg_backend_pid()")[0]
            .parse()
            .unwrap()
    }

    #[test]
    fn statements_are_prepared_once_a_connection_and_again_on_a_replacement() {
        use crate::backend::postgres::flows::SELECT_BY_STATE_FOR_UPDATE;
        use crate::error::Error;
        use crate::flow::tx::Outcome;
        use crate::options::StoreOptions;

        let Some(pg) = crate::backend::postgres::test_cluster::cluster("prepared_statements")
        else {
            return;
        };
        let url = pg.fresh_database("prepared_statements");
        let engine = super::super::open(&url, &StoreOptions::default().pool_size(1)).unwrap();
        let look = || {
            engine.write(|tx| {
                assert!(tx.by_state(&[9; 32])?.is_none());
                Ok(Outcome::Done(()))
            })
        };
        for _ in 0..3 {
            look().unwrap();
        }
        let mut conn = engine.conn().unwrap();
        assert_eq!(conn.prepared_count(), 1);
        // One statement, kept: three runs neither prepared it three times nor closed it.
        assert_eq!(
            server_statements(&mut conn),
            [SELECT_BY_STATE_FOR_UPDATE.to_owned()]
        );
        let pid = backend_pid(&mut conn);
        drop(conn);

        // The connection is lost: a typed error, then the pool replaces it, and the
        // replacement prepares its own statement.
        let mut admin = pg.client("postgres");
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed);
        let gone = std::time::Instant::now() + Duration::from_secs(10);
        while admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
        {
            assert!(std::time::Instant::now() < gone, "the backend did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        let lost = look().unwrap_err();
        assert!(matches!(lost, Error::Unavailable { .. }), "{lost:?}");
        look().unwrap();
        let mut conn = engine.conn().unwrap();
        assert_ne!(backend_pid(&mut conn), pid);
        assert_eq!(conn.prepared_count(), 1);
        assert_eq!(server_statements(&mut conn).len(), 1);
    }
}
