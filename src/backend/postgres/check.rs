//! [`check`]: is the store's PostgreSQL database reachable, at this code's schema version, and
//! does its catalog hold every table, column and index that `schema_postgres.sql` declares?
//! One connection whose transactions are read-only; nothing is created, migrated or repaired.
//!
//! What to look for is read from `schema_postgres.sql` itself (a test keeps that file equal to
//! what the migrations produce, and another keeps [`expected`] equal to a migrated catalog),
//! so a new migration needs no second list here.

use std::time::Duration;

use postgres::Client;

use super::error::classify;
use super::migrate::{self, SCHEMA_VERSION};
use super::{connect, off_runtime, tls};
use crate::error::{Error, Result};
use crate::report::{DatabaseCheck, Problem, ProblemKind};

/// The schema the migrations produce, the source of what is looked for.
const SCHEMA: &str = include_str!("../../../schema_postgres.sql");

const SERVER_VERSION: &str = "SELECT current_setting('server_version')";
const TABLE_EXISTS: &str = "SELECT to_regclass($1) IS NOT NULL";
const COLUMNS: &str = "SELECT attname::text FROM pg_attribute \
     WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped";
/// The index of that name, on which table, and whether the server may use it.
const INDEX: &str = "SELECT i.indrelid::regclass::text, i.indisvalid FROM pg_index i \
     WHERE i.indexrelid = to_regclass($1)";
const STORE_ID: &str = "SELECT count(*) FROM meta WHERE key = 'store_id'";

/// What `schema_postgres.sql` declares: each table with its columns, each index with its
/// table (constraint indexes included: `<table>_pkey` and the named UNIQUE constraints).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) tables: Vec<(String, Vec<String>)>,
    pub(crate) indexes: Vec<(String, String)>,
}

/// Reads [`Expected`] from the SQL of `schema_postgres.sql`.
pub(crate) fn expected() -> Expected {
    parse(SCHEMA)
}

fn parse(sql: &str) -> Expected {
    let text: String = sql
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Expected::default();
    for statement in text.split(';') {
        let mut w = Words {
            words: statement.split_whitespace().collect(),
            at: 0,
        };
        const IF_NOT_EXISTS: [&str; 3] = ["IF", "NOT", "EXISTS"];
        if w.eat("CREATE") {
            if w.eat("TABLE") {
                w.eat_all(&IF_NOT_EXISTS);
                let Some(table) = w.name() else { continue };
                let columns = table_body(statement)
                    .map(|body| elements(body, &table, &mut out.indexes))
                    .unwrap_or_default();
                out.tables.push((table, columns));
            } else {
                w.eat("UNIQUE");
                if !w.eat("INDEX") {
                    continue;
                }
                w.eat("CONCURRENTLY");
                w.eat_all(&IF_NOT_EXISTS);
                let Some(index) = w.name() else { continue };
                w.eat("ON");
                w.eat("ONLY");
                if let Some(table) = w.name() {
                    out.indexes.push((index, table));
                }
            }
        } else if w.eat_all(&["ALTER", "TABLE"]) {
            w.eat_all(&["IF", "EXISTS"]);
            w.eat("ONLY");
            let Some(table) = w.name() else { continue };
            if !w.eat("ADD") {
                continue;
            }
            if w.eat("CONSTRAINT") {
                let upper = statement.to_ascii_uppercase();
                if let Some(name) = w.name() {
                    if upper.contains("UNIQUE") || upper.contains("PRIMARY KEY") {
                        out.indexes.push((name, table));
                    }
                }
                continue;
            }
            w.eat("COLUMN");
            w.eat_all(&IF_NOT_EXISTS);
            if let (Some(column), Some(entry)) =
                (w.name(), out.tables.iter_mut().find(|(t, _)| *t == table))
            {
                entry.1.push(column);
            }
        }
    }
    out
}

/// A statement's words, read one after another; keywords match whatever their case.
struct Words<'a> {
    words: Vec<&'a str>,
    at: usize,
}

impl Words<'_> {
    /// Takes the next word if it is `keyword`.
    fn eat(&mut self, keyword: &str) -> bool {
        let found = self
            .words
            .get(self.at)
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword));
        self.at += usize::from(found);
        found
    }

    /// Takes the next words if they are `keywords`, else none of them.
    fn eat_all(&mut self, keywords: &[&str]) -> bool {
        let from = self.at;
        if keywords.iter().all(|k| self.eat(k)) {
            return true;
        }
        self.at = from;
        false
    }

    /// Takes the next word as a name (up to any parenthesis that follows it unspaced).
    fn name(&mut self) -> Option<String> {
        let word = self.words.get(self.at)?;
        self.at += 1;
        let name = word.split('(').next().unwrap_or_default();
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// The text between a `CREATE TABLE`'s opening parenthesis and the one that closes it.
fn table_body(statement: &str) -> Option<&str> {
    let open = statement.find('(')?;
    let mut depth = 0usize;
    for (i, c) in statement[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&statement[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The column names of a table body; the indexes its constraints make go to `indexes`.
fn elements(body: &str, table: &str, indexes: &mut Vec<(String, String)>) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    let mut columns = Vec::new();
    for part in parts {
        let words: Vec<&str> = part.split_whitespace().collect();
        let upper = part.to_ascii_uppercase();
        let has = |what: &str| upper.contains(what);
        // The first word up to any parenthesis (`CHECK(...)`), as a keyword.
        let first = words
            .first()
            .map(|w| w.split('(').next().unwrap_or_default().to_ascii_uppercase());
        match (first.as_deref(), words.get(1)) {
            (None, _) => {}
            (Some("CONSTRAINT"), Some(name)) if has("UNIQUE") || has("PRIMARY KEY") => {
                indexes.push(((*name).to_owned(), table.to_owned()));
            }
            (Some("PRIMARY"), _) => indexes.push((format!("{table}_pkey"), table.to_owned())),
            (Some("CONSTRAINT" | "CHECK" | "UNIQUE" | "FOREIGN" | "EXCLUDE" | ""), _) => {}
            (Some(_), _) => {
                if has("PRIMARY KEY") {
                    indexes.push((format!("{table}_pkey"), table.to_owned()));
                }
                columns.push(words[0].to_owned());
            }
        }
    }
    columns
}

/// Checks the database at `url`, changing nothing.
pub(crate) fn check(url: &str, busy_timeout: Duration) -> Result<DatabaseCheck> {
    off_runtime(|| check_here(url, busy_timeout))
}

fn check_here(url: &str, busy_timeout: Duration) -> Result<DatabaseCheck> {
    let mut settings =
        connect::config(url).map_err(|e| Error::invalid("database URL", e.reason()))?;
    let config = &mut settings.driver;
    let options = format!(
        "{} -c default_transaction_read_only=on -c lock_timeout={}",
        config.get_options().unwrap_or_default(),
        busy_timeout.as_millis().max(1),
    );
    config.options(options.trim_start());
    let tls = tls::connector(&settings.tls)?;
    let mut client = config.connect(tls).map_err(|e| classify(e, busy_timeout))?;
    if migrate::schema_version(&mut client).map_err(|e| classify(e, busy_timeout))? == 0 {
        // Another program's tables of the store's names: not a store, as at open.
        migrate::refuse_foreign(&mut client)
            .map_err(|e| e.into_error(&migrate::CURRENT, busy_timeout))?;
    }
    inspect(&mut client).map_err(|e| classify(e, busy_timeout))
}

fn problem(message: String, fix: &str) -> Problem {
    Problem::new(ProblemKind::Schema, message, fix)
}

/// The checks themselves, on one connection.
fn inspect(c: &mut Client) -> std::result::Result<DatabaseCheck, postgres::Error> {
    let server_version: String = c.query_one(SERVER_VERSION, &[])?.get(0);
    let schema_version = migrate::schema_version(c)?;
    let mut report = DatabaseCheck {
        engine: "postgresql",
        problems: Vec::new(),
        server_version,
        schema_version,
        supported_schema_version: SCHEMA_VERSION,
        checked: Vec::new(),
    };
    if schema_version == 0 {
        report.problems.push(problem(
            format!(
                "the PostgreSQL database has no store schema (schema version 0; this program \
                 writes {SCHEMA_VERSION})"
            ),
            "run `oauth-state-store migrate`",
        ));
        return Ok(report);
    }
    if schema_version < SCHEMA_VERSION {
        report.problems.push(problem(
            format!(
                "the PostgreSQL database has schema version {schema_version}, older than the \
                 {SCHEMA_VERSION} this program writes"
            ),
            "run `oauth-state-store migrate`",
        ));
        return Ok(report);
    }
    if schema_version > SCHEMA_VERSION {
        report.problems.push(problem(
            format!(
                "the PostgreSQL database has schema version {schema_version}, newer than the \
                 {SCHEMA_VERSION} this program knows"
            ),
            "upgrade oauth-state-store (databases are never downgraded)",
        ));
        return Ok(report);
    }
    const RESTORE: &str =
        "restore it from schema_postgres.sql, or restore the database from a backup";
    let want = expected();
    for (table, columns) in &want.tables {
        report.checked.push(format!("table {table}"));
        if !c.query_one(TABLE_EXISTS, &[table])?.get::<_, bool>(0) {
            report
                .problems
                .push(problem(format!("table {table} is missing"), RESTORE));
            continue;
        }
        let present: Vec<String> = c
            .query(COLUMNS, &[table])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for column in columns {
            report.checked.push(format!("column {table}.{column}"));
            if !present.contains(column) {
                report.problems.push(problem(
                    format!("column {table}.{column} is missing"),
                    RESTORE,
                ));
            }
        }
    }
    for (index, table) in &want.indexes {
        report.checked.push(format!("index {index}"));
        match c.query_opt(INDEX, &[index])? {
            None => report.problems.push(problem(
                format!("index {index} on {table} is missing"),
                RESTORE,
            )),
            Some(row) => {
                let (on, valid): (String, bool) = (row.get(0), row.get(1));
                if on != *table {
                    report.problems.push(problem(
                        format!("index {index} is on {on}, not on {table}"),
                        RESTORE,
                    ));
                } else if !valid {
                    report.problems.push(problem(
                        format!("index {index} on {table} is invalid (a failed build)"),
                        "rebuild it: REINDEX INDEX, as the database's owner",
                    ));
                }
            }
        }
    }
    let has_meta = want.tables.iter().any(|(t, _)| t == "meta")
        && c.query_one(TABLE_EXISTS, &[&"meta"])?.get::<_, bool>(0);
    if has_meta && c.query_one(STORE_ID, &[])?.get::<_, i64>(0) != 1 {
        report.problems.push(problem(
            "the store has no store_id in meta".to_owned(),
            "run `oauth-state-store migrate` (it makes one)",
        ));
    }
    Ok(report)
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
