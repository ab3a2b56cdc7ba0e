//! The one-row reads by state (`check`, `peek`, the listener's `recorded_code`) as one
//! autocommit statement: the clock read inside it, as [`super::steps`]' statements do, and the
//! row by its state key. One statement sees one snapshot, as the read-only transaction it
//! replaces did; the operation (`ops`) judges the row with the same [`rules`] on both engines.
//!
//! [`rules`]: crate::flow::rules

use std::time::Duration;

use postgres::types::ToSql;
use postgres::Row;

use super::connect::Conn;
use super::error::{classify, run_alone};
use super::flows::flow_row_at;
use crate::error::{Error, Result, StorageError};
use crate::flow::row::FlowRow;

/// `$1` state key, `$2` injected now. Always one row: the time, then the columns of
/// `flows::flow_row` (all NULL when no flow has that key).
pub(crate) const BY_STATE: &str = concat!(
    "WITH ",
    clock!(2),
    " SELECT t.now, ",
    flow_columns!(),
    " FROM t LEFT JOIN flows ON state_key = $1"
);

/// Runs the read-only statement `sql` on its own, outside any transaction: its rows.
pub(crate) fn read_statement(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
    busy_timeout: Duration,
) -> Result<Vec<Row>> {
    run_alone(conn, sql, params, busy_timeout, classify)
}

/// The one row of a statement that reads the clock, then LEFT JOINs what it looks up.
pub(crate) fn clock_row(rows: &[Row]) -> Result<&Row> {
    rows.first().ok_or_else(|| {
        Error::Storage(StorageError::message(
            "a statement that reads the clock returned no row".to_owned(),
        ))
    })
}

/// The clock and the row of `key` (none when no flow has it).
pub(crate) fn by_state(
    conn: &mut Conn,
    key: &[u8; 32],
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<(i64, Option<FlowRow>)> {
    let rows = read_statement(conn, BY_STATE, &[&&key[..], &now], busy_timeout)?;
    let row = clock_row(&rows)?;
    let found = match row.get::<_, Option<i64>>(1) {
        Some(_) => Some(flow_row_at(row, 1)?),
        None => None,
    };
    Ok((row.get(0), found))
}
