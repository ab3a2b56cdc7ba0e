//! Administration of a store on a database server (PostgreSQL): what the server has in place
//! of a file's facts, and a check of the database that changes nothing. The command line's
//! `stats` and `check` on a `postgres://` URL are built on these.

use std::time::Duration;

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::report::{DatabaseCheck, ServerInfo};
use crate::store::Store;

/// Checks the store's database on a server (a `postgres://` or `postgresql://` URL) without
/// changing it: that the server can be reached, the schema version against this code's, and,
/// at the current version, that every table, column and index of `schema_postgres.sql` is in
/// the catalog (and every index is valid) and the store has its `store_id`. It opens one
/// connection whose transactions are read-only, migrates nothing and creates nothing. Waits
/// up to `busy_timeout` for a lock.
///
/// # Errors
/// [`Error::InvalidInput`] (not a PostgreSQL URL, or this build has no `postgres` feature; the
/// URL is never repeated), [`Error::Unavailable`] (the server cannot be reached), other
/// errors of the server (a refused login is [`Error::Storage`]).
pub fn check_database(url: &str, busy_timeout: Duration) -> Result<DatabaseCheck> {
    #[cfg(feature = "postgres")]
    {
        crate::backend::postgres::check::check(url, busy_timeout)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (url, busy_timeout);
        Err(crate::error::Error::invalid(
            "database",
            "is a PostgreSQL URL, but this build has no `postgres` feature",
        ))
    }
}

impl Store {
    /// On a database server, its facts about the store: the server's version, the sizes of
    /// the store's tables and indexes, live and dead rows, the last vacuums. `None` for a
    /// store in an SQLite file (see [`Store::file_info`]).
    ///
    /// ```
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path().join("flows.db"))?;
    /// assert!(store.server_info()?.is_none()); // a file: its facts are in `file_info`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`] (the server cannot be reached), other storage errors.
    pub fn server_info(&self) -> Result<Option<ServerInfo>> {
        self.engine().server_info()
    }
}
