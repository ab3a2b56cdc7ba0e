//! Guides: the reference beyond one item's page. Each is also a file of the repository's
//! `docs/` directory, so it reads the same on GitHub.
//!
//! Their Rust snippets are doctests. A guide whose snippets need a cargo feature is always
//! documented but tested only with that feature (`cargo test --all-features` runs them all).

#[doc = include_str!("../docs/flows.md")]
pub mod flows {}

#[cfg_attr(
    any(not(doctest), feature = "listener"),
    doc = include_str!("../docs/listener.md")
)]
pub mod listener {}

#[doc = include_str!("../docs/web-app.md")]
pub mod web_app {}

// Its second snippet holds the listener too.
#[cfg_attr(
    any(not(doctest), all(feature = "rmcp", feature = "listener")),
    doc = include_str!("../docs/rmcp.md")
)]
pub mod rmcp {}

// Its rmcp snippet needs the feature.
#[cfg_attr(
    any(not(doctest), feature = "rmcp"),
    doc = include_str!("../docs/refresh.md")
)]
pub mod refresh {}

#[doc = include_str!("../docs/postgres.md")]
pub mod postgres {}

#[doc = include_str!("../docs/guarantees.md")]
pub mod guarantees {}

#[doc = include_str!("../docs/security.md")]
pub mod security {}

#[doc = include_str!("../docs/file-format.md")]
pub mod file_format {}
