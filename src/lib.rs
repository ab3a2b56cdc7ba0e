#![doc = include_str!("../README.md")]

mod admin;
mod clock;
mod error;
mod flow;
#[cfg(feature = "listener")]
mod listener;
#[path = "store/maintenance.rs"]
mod maintenance;
#[path = "backend/sqlite/migrate.rs"]
mod migrate;
#[path = "store/flows.rs"]
mod ops;
mod options;
#[path = "backend/sqlite/permissions.rs"]
mod permissions;
mod pkce;
#[cfg(test)]
#[path = "backend/sqlite/plans.rs"]
mod plans;
#[cfg(feature = "rmcp")]
mod rmcp;
#[path = "flow/rules.rs"]
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
