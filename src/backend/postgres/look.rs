//! The one-row reads by state (`check`, `peek`, the listener's `recorded_code`) as one
//! autocommit statement: the clock read inside it, as [`super::steps`]' statements do, and the
//! row by its state key. One statement sees one snapshot, as the read-only transaction it
//! replaces did; the operation (`ops`) judges the row with the same [`rules`] on both engines.
//!
//! [`rules`]: crate::flow::rules

use std::time::Duration;

use super::connect::Conn;
use super::error::{classify, is_connection_lost};
use super::flows::flow_row_at;
use crate::error::Result;
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

/// The clock and the row of `key` (none when no flow has it).
pub(crate) fn by_state(
    conn: &mut Conn,
    key: &[u8; 32],
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<(i64, Option<FlowRow>)> {
    let statement = conn
        .prepared(BY_STATE)
        .map_err(|e| classify(e, busy_timeout))?;
    let row = conn
        .query_one(&statement, &[&&key[..], &now])
        .map_err(|e| {
            if is_connection_lost(&e) {
                conn.mark_broken();
            }
            classify(e, busy_timeout)
        })?;
    let found = match row.get::<_, Option<i64>>(1) {
        Some(_) => Some(flow_row_at(&row, 1)?),
        None => None,
    };
    Ok((row.get(0), found))
}
