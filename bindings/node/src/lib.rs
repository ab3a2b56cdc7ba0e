//! The Node.js binding of `oauth-state-store`: the same Rust core, exported through N-API.
//!
//! This crate is a thin mapping. Every rule (validation, expiry, exactly-once consume, the
//! callback listener) lives in the core; here each call converts its arguments, runs the core
//! call on the blocking thread pool of napi's Tokio runtime (never on the JavaScript thread),
//! and converts the answer. Errors reach JavaScript as an `Error` whose JSON payload carries a
//! stable `code` (see [`error`]); the package's `index.js` turns it into the public
//! `StoreError`.
//!
//! It is a separate crate because the core forbids `unsafe` and N-API glue needs it.

mod callback;
mod error;
mod options;
mod run;
mod store;
mod tokens;
mod values;

pub use callback::{LoopbackCallback, WaitCancel, WaitOutcome};
pub use error::error_codes;
pub use options::{AttachOptions, OpenOptions};
pub use store::{generate_state, Store};
pub use tokens::{
    FinishedData, RefreshLease, RefreshOptionsInput, RejectedData, SavedOutcome, TokenInput,
    TokenSetData, TokenSetInfoData, TryBegunData,
};
pub use values::{BeginOptions, ConsumedFlow, Flow, FlowInfo, Stats, StatusCounts, SweepReport};
