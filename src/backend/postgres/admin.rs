//! What the server knows about the store, for `stats` on a URL: its version, the sizes of the
//! store's tables and indexes, and the `flows` table's live and dead rows and vacuums (the
//! statistics collector's estimates: no table is scanned).

use postgres::Client;

use super::migrate::{self, SCHEMA_VERSION};
use super::Postgres;
use crate::error::Result;
use crate::report::{RelationKind, RelationSize, ServerInfo};

/// The store's tables, in the order they are shown.
pub(crate) const TABLES: [&str; 3] = ["flows", "meta", "token_sets"];

const SERVER_VERSION: &str = "SELECT current_setting('server_version')";

/// A table's size (rows, TOAST, free-space and visibility maps); 0 rows when it is missing.
const TABLE_SIZE: &str = "SELECT pg_table_size(t) FROM to_regclass($1) AS t WHERE t IS NOT NULL";

/// Each index of a table with its size, by name.
const INDEX_SIZES: &str = "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) \
     FROM pg_index i WHERE i.indrelid = to_regclass($1) ORDER BY 1";

/// The statistics collector's counts and vacuum times for `flows`.
const FLOWS_ACTIVITY: &str = "SELECT n_live_tup, n_dead_tup, \
     floor(extract(epoch FROM last_vacuum) * 1000)::bigint, \
     floor(extract(epoch FROM last_autovacuum) * 1000)::bigint \
     FROM pg_stat_all_tables WHERE relid = to_regclass('flows')";

impl Postgres {
    /// The server's facts about the store.
    pub(crate) fn server_info(&self) -> Result<ServerInfo> {
        super::off_runtime(|| {
            let mut conn = self.conn()?;
            self.server_info_on(&mut conn)
                .map_err(|e| super::error::classify(e, self.busy_timeout))
        })
    }

    fn server_info_on(&self, c: &mut Client) -> std::result::Result<ServerInfo, postgres::Error> {
        let server_version: String = c.query_one(SERVER_VERSION, &[])?.get(0);
        let schema_version = migrate::schema_version(c)?;
        let mut relations = Vec::new();
        for table in TABLES {
            if let Some(row) = c.query_opt(TABLE_SIZE, &[&table])? {
                relations.push(RelationSize {
                    name: table.to_owned(),
                    kind: RelationKind::Table,
                    table: table.to_owned(),
                    bytes: row.get::<_, i64>(0).max(0) as u64,
                });
            }
            for row in c.query(INDEX_SIZES, &[&table])? {
                relations.push(RelationSize {
                    name: row.get(0),
                    kind: RelationKind::Index,
                    table: table.to_owned(),
                    bytes: row.get::<_, i64>(1).max(0) as u64,
                });
            }
        }
        let activity = c.query_opt(FLOWS_ACTIVITY, &[])?;
        let count = |i: usize| {
            activity
                .as_ref()
                .and_then(|r| r.get::<_, Option<i64>>(i))
                .map_or(0, |n| n.max(0) as u64)
        };
        let time = |i: usize| activity.as_ref().and_then(|r| r.get::<_, Option<i64>>(i));
        Ok(ServerInfo {
            engine: "postgresql",
            server_version,
            schema_version,
            supported_schema_version: SCHEMA_VERSION,
            store_id: self.store_id.clone(),
            relations,
            live_rows: count(0),
            dead_rows: count(1),
            last_vacuum: time(2),
            last_autovacuum: time(3),
        })
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
