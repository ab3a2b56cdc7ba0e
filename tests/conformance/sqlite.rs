//! The conformance suite on the SQLite engine.

pub use fixture::Fixture;

mod fixture {
    use oauth_state_store::{ManualClock, Store, StoreOptions};

    /// A database of this engine for one test, with a manual clock.
    pub struct Fixture {
        inner: crate::common::Fixture,
        /// The clock of [`Fixture::options`].
        pub clock: ManualClock,
    }

    impl Fixture {
        pub fn new() -> Self {
            let inner = crate::common::Fixture::new();
            let clock = inner.clock.clone();
            Fixture { inner, clock }
        }

        /// Options with this fixture's clock.
        pub fn options(&self) -> StoreOptions {
            self.inner.options()
        }

        /// A store on this fixture's database with its clock.
        pub fn store(&self) -> Store {
            self.inner.store()
        }

        /// A store on this fixture's database with `options`.
        pub fn open(&self, options: StoreOptions) -> Store {
            options.open(&self.inner.path).expect("open store")
        }

        /// What a child process opens with [`Fixture::open_target`].
        pub fn target(&self) -> String {
            self.inner.path.to_str().expect("utf-8 path").to_owned()
        }

        /// A store on the database `target` names (in a child process).
        pub fn open_target(target: &str, options: StoreOptions) -> Store {
            options.open(target).expect("open store")
        }

        /// A throwaway store of this engine (many per test).
        pub fn scratch(options: StoreOptions) -> Store {
            options.open_in_memory().expect("open store")
        }

        /// The `discovery` column of every row, in row order, read past the store.
        pub fn discovery_column(&self) -> Vec<Option<String>> {
            let c = rusqlite::Connection::open(&self.inner.path).expect("open file");
            let mut stmt = c
                .prepare("SELECT discovery FROM flows ORDER BY id")
                .expect("prepare");
            stmt.query_map([], |r| r.get(0))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        }
    }
}

#[path = "discovery.rs"]
mod discovery;
#[path = "ended.rs"]
mod ended;
#[path = "flows.rs"]
mod flows;
#[path = "history.rs"]
mod history;
#[path = "model.rs"]
mod model;
#[path = "refresh.rs"]
mod refresh;
#[cfg(feature = "rmcp")]
#[path = "rmcp.rs"]
mod rmcp;
#[path = "tokens.rs"]
mod tokens;
