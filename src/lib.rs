#![doc = include_str!("../README.md")]

mod admin;
// The PostgreSQL engine; declared here until the storage seam's src/backend/ takes it in.
#[cfg(feature = "postgres")]
#[path = "backend/postgres/mod.rs"]
mod backend_postgres;
mod clock;
mod error;
mod flow;
#[cfg(feature = "listener")]
mod listener;
mod maintenance;
mod migrate;
mod ops;
mod options;
mod permissions;
mod pkce;
#[cfg(test)]
mod plans;
#[cfg(feature = "rmcp")]
mod rmcp;
mod rules;
mod store;
mod validate;

#[cfg(feature = "rmcp")]
pub use crate::rmcp::RmcpStateStore;
pub use admin::{
    check_file, default_database_path, CheckReport, CompactReport, FileInfo, FlowFilter,
    FlowSummary, Problem, ProblemKind,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::PortHolder;
pub use error::{Error, Result};
pub use flow::{
    BeginRequest, ConsumedFlow, Flow, FlowInfo, InvalidateScope, Stats, Status, StatusCounts,
    SweepReport,
};
#[cfg(feature = "listener")]
pub use listener::{CallbackListener, ListenerOptions, LoopbackCallback, PROBE_PATH};
pub use migrate::{MigrationReport, SCHEMA_VERSION};
pub use options::{Durability, StoreOptions};
pub use permissions::FileChecks;
pub use pkce::{AuthorizationCode, CodeChallenge, CodeVerifier, State};
pub use store::Store;
pub use validate::MAX_TTL;
