//! The PostgreSQL engine (feature `postgres`): the same flows for callbacks that land on other
//! hosts, on a database that every host reaches by a `postgres://` URL.
//!
//! - [`connect`]: the URL, its defaults and the TLS connector (`sslmode=require`).
//! - [`migrate`]: `migrations_postgres/`, applied in one transaction under an advisory lock,
//!   tracked in the database; a schema newer than the code is refused.
//!
//! The store's engine enum opens this engine for a URL; until that seam exists the module is
//! reached from its tests only.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod connect;
pub(crate) mod migrate;

#[cfg(test)]
#[path = "../../../tests/common/pg.rs"]
pub(crate) mod test_cluster;
