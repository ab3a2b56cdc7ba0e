//! The PostgreSQL schema and its migrations. A new database gets `schema_postgres.sql` at
//! [`SCHEMA_VERSION`]; an older one gets `migrations_postgres/NNNN_name.sql`, applied in order.
//! Either way in one transaction under an advisory lock, each version recorded in
//! `oauth_state_store_migrations`. Until the first release is published there is one version,
//! 1, which changes in place, so the list of migrations is empty; the machinery is proven by a
//! test-only version 2 (`migrate_tests.rs`).
//!
//! Many hosts may start at once on a fresh database: each takes the same transaction-scoped
//! advisory lock before it reads the version, so the first makes the schema and the others,
//! once it commits, find it current. A database whose recorded version is newer than this code
//! is refused and left unchanged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use postgres::Client;

use crate::error::Error;
use crate::report::MigrationReport;

/// One migration: the version it brings the database to, its name, its SQL.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// What this code brings a database to: the latest version, the schema a new database gets
/// at once, and the migrations that lead an older one there.
pub(crate) struct Plan {
    /// The schema version this code writes and understands.
    pub(crate) version: i64,
    /// A new database's schema at [`Plan::version`], run in order.
    pub(crate) schema: &'static [&'static str],
    /// The migrations to versions 2 and up, in order, the last one to [`Plan::version`].
    pub(crate) migrations: &'static [Migration],
}

/// The PostgreSQL schema version this code writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// A new database's schema.
pub(crate) const SCHEMA: &str = include_str!("../../../schema_postgres.sql");

/// The plan of this code: version 1, no migration yet.
pub(crate) const CURRENT: Plan = Plan {
    version: SCHEMA_VERSION,
    schema: &[SCHEMA],
    migrations: &[],
};

/// The advisory lock key of the migrator ("oauthsss" in ASCII): one per database.
pub(crate) const MIGRATION_LOCK: i64 = 0x6f61_7574_6873_7373;

const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const TRACKING_EXISTS: &str = "SELECT to_regclass('oauth_state_store_migrations') IS NOT NULL";
/// The tables of the schema that exist, in a database the migrator has not made a store: a
/// table of that name there is another program's.
const TAKEN_NAMES: &str = "SELECT name FROM unnest(ARRAY['flows', 'meta', 'token_sets']) AS name \
     WHERE to_regclass(name) IS NOT NULL ORDER BY name";
const CREATE_TRACKING: &str = "CREATE TABLE oauth_state_store_migrations (\
     version    BIGINT PRIMARY KEY, \
     name       TEXT NOT NULL, \
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";
const SELECT_VERSION: &str =
    "SELECT coalesce(max(version), 0)::bigint FROM oauth_state_store_migrations";
const RECORD: &str = "INSERT INTO oauth_state_store_migrations (version, name) VALUES ($1, $2)";
const SELECT_STORE_ID: &str = "SELECT value FROM meta WHERE key = 'store_id'";
const INSERT_STORE_ID: &str =
    "INSERT INTO meta (key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING";

/// Migration failures before they are classified.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    /// The database records this version, newer than this code's.
    #[error("the database schema is version {0}, newer than this code's")]
    TooNew(i64),
    /// The database is older than this code's version (0: no store schema yet) and this open
    /// may not migrate it; nothing was changed.
    #[error("the database schema is version {0}, older than this code's")]
    Needed(i64),
    /// The database has a table of the store's names that the store did not make (no
    /// migrations recorded): another program's. Nothing was changed.
    #[error("the database has tables of the store's names that another program made")]
    Foreign(String),
    /// The driver's error (connection, permission, ...).
    #[error("PostgreSQL refused the migration")]
    Postgres(#[from] postgres::Error),
}

impl MigrateError {
    /// The crate's error: [`Error::DatabaseTooNew`], [`Error::MigrationNeeded`], or the
    /// driver's error classified.
    pub(crate) fn into_error(self, plan: &Plan, busy_timeout: std::time::Duration) -> Error {
        match self {
            MigrateError::TooNew(found) => Error::DatabaseTooNew {
                found,
                supported: plan.version,
            },
            MigrateError::Needed(found) => Error::MigrationNeeded {
                found,
                expected: plan.version,
            },
            MigrateError::Foreign(what) => Error::NotAStore {
                path: "the PostgreSQL database".into(),
                what,
            },
            MigrateError::Postgres(e) => super::error::classify(e, busy_timeout),
        }
    }
}

/// Reads the database's schema version without taking the lock: 0 before any migration.
///
/// # Errors
///
/// The driver's error.
pub(crate) fn schema_version(client: &mut Client) -> Result<i64, postgres::Error> {
    if !client.query_one(TRACKING_EXISTS, &[])?.get::<_, bool>(0) {
        return Ok(0);
    }
    Ok(client.query_one(SELECT_VERSION, &[])?.get(0))
}

/// Checks, changing nothing, that the database is at `plan.version` with a `store_id`: for an
/// open that may not migrate ([`StoreOptions::migrate`](crate::StoreOptions::migrate)
/// `(false)`, or read-only).
///
/// # Errors
///
/// [`MigrateError::TooNew`], [`MigrateError::Needed`] (also for a current version without a
/// `store_id`, which migrating repairs), else the driver's error.
pub(crate) fn require_current(
    client: &mut Client,
    plan: &Plan,
) -> Result<MigrationReport, MigrateError> {
    let version = schema_version(client)?;
    if version == 0 {
        refuse_foreign(client)?;
    }
    if version > plan.version {
        return Err(MigrateError::TooNew(version));
    }
    if version < plan.version || client.query_opt(SELECT_STORE_ID, &[])?.is_none() {
        return Err(MigrateError::Needed(version));
    }
    Ok(MigrationReport {
        from: version,
        to: version,
    })
}

/// Brings the schema up to `plan.version` and makes sure the database has a `store_id`, in
/// one transaction under [`MIGRATION_LOCK`]: a new database gets `plan.schema`, an older one
/// the migrations above its version.
///
/// # Errors
///
/// [`MigrateError::TooNew`] for a newer schema (nothing changed), else the driver's error (the
/// transaction is rolled back).
pub(crate) fn migrate(client: &mut Client, plan: &Plan) -> Result<MigrationReport, MigrateError> {
    let mut tx = client.transaction()?;
    tx.execute(LOCK, &[&MIGRATION_LOCK])?;
    if !tx.query_one(TRACKING_EXISTS, &[])?.get::<_, bool>(0) {
        // Not a store yet: a table of the store's names is another program's. Read under the
        // lock, before anything is created (the transaction rolls back on the error).
        refuse_foreign(&mut tx)?;
        tx.batch_execute(CREATE_TRACKING)?;
    }
    let from: i64 = tx.query_one(SELECT_VERSION, &[])?.get(0);
    if from > plan.version {
        return Err(MigrateError::TooNew(from));
    }
    if from == 0 {
        for sql in plan.schema {
            tx.batch_execute(sql)?;
        }
        tx.execute(RECORD, &[&plan.version, &"schema"])?;
    } else {
        for m in plan.migrations.iter().filter(|m| m.version > from) {
            tx.batch_execute(m.sql)?;
            tx.execute(RECORD, &[&m.version, &m.name])?;
        }
    }
    if tx.query_opt(SELECT_STORE_ID, &[])?.is_none() {
        let id: [u8; 16] = rand::random();
        tx.execute(INSERT_STORE_ID, &[&URL_SAFE_NO_PAD.encode(id)])?;
    }
    tx.commit()?;
    Ok(MigrationReport {
        from,
        to: plan.version,
    })
}

/// [`MigrateError::Foreign`] when a database without the migrator's records has a table of the
/// store's names.
pub(crate) fn refuse_foreign(
    client: &mut impl postgres::GenericClient,
) -> Result<(), MigrateError> {
    let taken: Vec<String> = client
        .query(TAKEN_NAMES, &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if taken.is_empty() {
        return Ok(());
    }
    let tables = match &taken[..] {
        [one] => format!("the table {one}"),
        many => format!("the tables {}", many.join(" and ")),
    };
    Err(MigrateError::Foreign(format!(
        "a database where {tables} belong to another program (no oauth-state-store schema \
         was ever made there)"
    )))
}

/// Reads the database's `store_id`.
///
/// # Errors
///
/// The driver's error (also when the schema has not been made yet).
pub(crate) fn store_id(client: &mut Client) -> Result<String, postgres::Error> {
    Ok(client.query_one(SELECT_STORE_ID, &[])?.get(0))
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
pub(crate) mod tests;
