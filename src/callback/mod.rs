//! Callbacks, wherever they arrive: the loopback listener, [`Store::deliver`] (a pasted
//! callback URL, the command line's `deliver`) and [`CallbackHandler`] (a web app's route)
//! all record through one rule and show the same pages. No socket code: a web app needs no
//! cargo feature for the handler.
//!
//! [`Store::deliver`]: crate::Store::deliver

mod deliver;
mod handler;
pub(crate) mod pages;
mod params;

#[cfg_attr(not(feature = "listener"), allow(unused_imports))]
pub(crate) use handler::{answer, Place};
pub use handler::{CallbackHandler, CallbackResponse};
#[cfg_attr(not(feature = "listener"), allow(unused_imports))]
pub(crate) use params::parse_query;
