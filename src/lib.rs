// The README is the crate's documentation. Its examples are whole programs for a reader's
// crate (the listener one with the default features, the rmcp one with `rmcp`), so they run
// as doctests when both features are on (`cargo test --all-features`, as CI runs it).
#![cfg_attr(not(doctest), doc = include_str!("../README.md"))]
#![cfg_attr(
    all(doctest, feature = "listener", feature = "rmcp"),
    doc = include_str!("../README.md")
)]
// docs.rs (`--cfg docsrs`, all features) marks each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every `pub` item is reachable from the root (the tests keep `pub` in their own modules).
#![warn(unreachable_pub)]

// First: rustdoc lists `Store`'s impl blocks module by module, in the order the modules are
// declared, and the `Store` page starts with `open` (src/store/open.rs), then the flow
// operations, then administration.
mod store;

mod admin;
mod backend;
mod callback;
mod clock;
mod error;
mod flow;
#[cfg(feature = "listener")]
mod listener;
mod options;
mod pkce;
mod report;
#[cfg(feature = "rmcp")]
mod rmcp;
mod tokens;
mod validate;

#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub use crate::rmcp::{RmcpCredentialStore, RmcpStateStore};
pub use admin::{check_database, FlowFilter, FlowSummary};
pub use backend::sqlite::check::{check_file, check_file_with_timeout};
pub use backend::sqlite::migrate::SCHEMA_VERSION;
pub use callback::{CallbackHandler, CallbackResponse};
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "listener")]
#[cfg_attr(docsrs, doc(cfg(feature = "listener")))]
pub use error::PortHolder;
pub use error::{EndReason, Error, Result, StorageError};
pub use flow::{
    BeginRequest, ConsumedFlow, Flow, FlowInfo, InvalidateScope, Promotion, Stats, Status,
    StatusCounts, SweepReport, MAX_DISCOVERY_LEN,
};
#[cfg(feature = "listener")]
#[cfg_attr(docsrs, doc(cfg(feature = "listener")))]
pub use listener::{
    CallbackListener, ListenerOptions, LoopbackCallback, PortDelay, RecordedCode, PROBE_PATH,
};
pub use options::{Durability, FileChecks, LockWait, StoreOptions};
pub use pkce::{AuthorizationCode, CodeChallenge, CodeVerifier, State};
pub use report::{
    CheckReport, CompactReport, DatabaseCheck, FileInfo, MigrationReport, Problem, ProblemKind,
    RelationKind, RelationSize, ServerInfo,
};
pub use store::open::default_database_path;
pub use store::Store;
pub use tokens::{
    AccessToken, Begun, Exchange, Finished, Generation, LeaseInfo, RefreshLease, RefreshOptions,
    RefreshToken, Refreshed, Rejected, Saved, Seen, TokenResponse, TokenSet, TokenSetInfo,
    TokenState, TryBegun, Wait,
};
pub use validate::MAX_TTL;
