//! The conformance suite on the PostgreSQL engine: every fixture is a schema of its own in
//! one database of the test binary's throwaway cluster (tests/common/pg.rs).

pub use fixture::Fixture;

mod fixture {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    use oauth_state_store::{ManualClock, Store, StoreOptions};

    use crate::pg;

    static DATABASE: OnceLock<String> = OnceLock::new();
    static NEXT_SCHEMA: AtomicU32 = AtomicU32::new(0);

    /// A URL naming a fresh, empty schema (the store migrates it at open). On a thread of its
    /// own: the synchronous driver must not block a tokio runtime's thread (the rmcp tests).
    fn fresh_url() -> String {
        std::thread::spawn(fresh_url_here)
            .join()
            .expect("make a schema")
    }

    fn fresh_url_here() -> String {
        let Some(cluster) = pg::cluster("conformance on PostgreSQL") else {
            // The whole binary is PostgreSQL's: nothing else to run here.
            std::process::exit(0);
        };
        let db = DATABASE.get_or_init(|| cluster.fresh_database("conformance"));
        let schema = format!(
            "s{}_{}",
            std::process::id(),
            NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(db, postgres::NoTls).expect("connect");
        // The name is made of [a-z0-9_] above.
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create schema");
        format!("{db}&options=-c%20search_path%3D{schema}")
    }

    /// A database of this engine for one test, with a manual clock.
    pub struct Fixture {
        url: String,
        /// The clock of [`Fixture::options`].
        pub clock: ManualClock,
    }

    impl Fixture {
        pub fn new() -> Self {
            Fixture {
                url: fresh_url(),
                clock: ManualClock::new(1_700_000_000_000),
            }
        }

        /// Options with this fixture's clock.
        pub fn options(&self) -> StoreOptions {
            StoreOptions::default().clock(self.clock.clone())
        }

        /// A store on this fixture's database with its clock.
        pub fn store(&self) -> Store {
            self.open(self.options())
        }

        /// A store on this fixture's database with `options`.
        pub fn open(&self, options: StoreOptions) -> Store {
            options.open(&self.url).expect("open store")
        }

        /// What a child process opens with [`Fixture::open_target`].
        pub fn target(&self) -> String {
            self.url.clone()
        }

        /// A store on the database `target` names (in a child process).
        pub fn open_target(target: &str, options: StoreOptions) -> Store {
            options.open(target).expect("open store")
        }

        /// A throwaway store of this engine (many per test).
        pub fn scratch(options: StoreOptions) -> Store {
            options.open(fresh_url()).expect("open store")
        }

        /// The `discovery` column of every row, in row order, read past the store.
        pub fn discovery_column(&self) -> Vec<Option<String>> {
            let url = self.url.clone();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                c.query("SELECT discovery FROM flows ORDER BY id", &[])
                    .expect("query")
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            })
            .join()
            .expect("read the column")
        }
    }
}

#[path = "discovery.rs"]
mod discovery;
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
