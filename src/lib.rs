//! One shared store for pending OAuth logins (state + PKCE verifier): any process on the host,
//! or any host on PostgreSQL, completes a callback exactly once.
//!
//! OAuth clients (MCP clients first: coding agents, IDE plugins, CLIs, agent servers) keep the
//! pending half of an authorization-code + PKCE login in process memory, and lose it when the
//! browser's callback lands on another process ("Invalid or expired state parameter - potential
//! CSRF attack"), when a retry overwrites a verifier, or when the process exits. Here each login
//! is a row of one SQLite file (or a PostgreSQL database), keyed by SHA-256 of its state; every
//! process that opens the store can validate a callback, exactly once, in one transaction.
//!
//! # Start here
//!
//! - [`Store`]: open a store ([`Store::open`], [`Store::open_default`]), begin a login
//!   ([`Store::begin`], [`Flow::authorization_url`]) and consume its callback
//!   ([`Store::consume`]), exactly once across processes. The MCP SDKs' path is
//!   [`Store::save_code_verifier`] then [`Store::promote`].
//! - [`LoopbackCallback`] (feature `listener`): the `http://127.0.0.1:<port>/callback`
//!   listener that any process on the store can hold. This is the fix for "potential CSRF
//!   attack" when two instances of a tool run: whichever process the browser reaches records
//!   the callback, and the process that began the login gets it from
//!   [`LoopbackCallback::wait`].
//! - [`CallbackHandler`]: the same rule and pages behind a web app's own callback route.
//! - [`RmcpStateStore`] (feature `rmcp`): the Rust MCP SDK's `StateStore` over a [`Store`];
//!   [`RmcpCredentialStore`] is its `CredentialStore`, with single-flight token refresh.
//!
//! Every operation returns [`Result`]; [`Error`] tells a replay ([`Error::AlreadyConsumed`])
//! from a forged or unknown state ([`Error::UnknownState`]) and from a storage failure
//! ([`Error::Busy`], [`Error::Storage`], ...), and says which variants a caller acts on.
//!
//! # Guides
//!
//! The reference beyond one item's page, in [`guide`] (also `docs/*.md` in the repository):
//! [flows, operations and options](guide::flows), [the loopback listener](guide::listener),
//! [a web app's callback](guide::web_app), [rmcp](guide::rmcp), [refresh across
//! processes](guide::refresh), [PostgreSQL](guide::postgres), [the guarantees and the tests
//! behind them](guide::guarantees), [security](guide::security), [the file
//! format](guide::file_format).
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `listener` | yes | [`LoopbackCallback`], [`CallbackListener`] (one dependency, `httparse`) |
//! | `rmcp` | no | [`RmcpStateStore`], [`RmcpCredentialStore`] for `rmcp` 3.9 or newer |
//! | `postgres` | no | `postgres://` URLs in [`Store::open`]: the same flows across hosts (TLS through rustls; no system library) |
//!
//! The store itself ([`Store`], [`CallbackHandler`], the tokens) needs no feature. The
//! `oauth-state-store` command is the `oauth-state-store-cli` crate.
//!
#![cfg_attr(
    feature = "listener",
    doc = "[`LoopbackCallback`]: crate::LoopbackCallback"
)]
#![cfg_attr(
    feature = "listener",
    doc = "[`LoopbackCallback::wait`]: crate::LoopbackCallback::wait"
)]
#![cfg_attr(
    feature = "listener",
    doc = "[`CallbackListener`]: crate::CallbackListener"
)]
#![cfg_attr(
    not(feature = "listener"),
    doc = concat!("[`LoopbackCallback`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html")
)]
#![cfg_attr(
    not(feature = "listener"),
    doc = concat!("[`LoopbackCallback::wait`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html#method.wait")
)]
#![cfg_attr(
    not(feature = "listener"),
    doc = concat!("[`CallbackListener`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.CallbackListener.html")
)]
#![cfg_attr(feature = "rmcp", doc = "[`RmcpStateStore`]: crate::RmcpStateStore")]
#![cfg_attr(
    feature = "rmcp",
    doc = "[`RmcpCredentialStore`]: crate::RmcpCredentialStore"
)]
#![cfg_attr(
    not(feature = "rmcp"),
    doc = concat!("[`RmcpStateStore`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.RmcpStateStore.html")
)]
#![cfg_attr(
    not(feature = "rmcp"),
    doc = concat!("[`RmcpCredentialStore`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.RmcpCredentialStore.html")
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
pub mod guide;
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

// The README's Rust snippet (the quick start) runs as a doctest; it needs no feature.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
