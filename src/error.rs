//! The one error type of the crate.
//!
//! Every failure a caller acts on differently is its own variant. Display texts are written
//! for the person reading them at 2 a.m.: what happened and what to do about it. No variant
//! ever carries a state, a verifier, an authorization code or a token, so printing an error
//! cannot leak one.

mod reasons;
mod storage;

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "listener")]
pub(crate) use reasons::whole_seconds;
pub use reasons::EndReason;
#[cfg(feature = "listener")]
pub use reasons::PortHolder;
pub use storage::StorageError;

/// `Result` with this crate's [`enum@Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No flow in the store has this state. The callback was never started here, was swept
    /// after it expired, or is forged.
    #[error(
        "no pending authorization has this state: the login was never started with this store, \
         was removed after it expired, or the callback is forged; start the login again"
    )]
    UnknownState,

    /// The flow exists but its time to live has passed. The row has been removed.
    #[error(
        "the authorization attempt expired before its callback arrived; start the login again"
    )]
    Expired,

    /// The flow was already consumed: this is a duplicate or replayed callback, not a forged one.
    #[error(
        "this authorization callback was already used (a duplicate or replayed callback); \
         the first one completed the login, nothing more to do"
    )]
    AlreadyConsumed,

    /// The flow was ended without a login (see [`EndReason`]); its verifier is gone, so this
    /// callback cannot complete it. Not a replay of a completed login: start the login again.
    #[error(
        "this authorization attempt was ended without a login ({reason}); nothing was \
         completed, start the login again"
    )]
    FlowEnded {
        /// Why the flow was ended.
        reason: EndReason,
    },

    /// The flow already received its callback (a code or an error) and waits to be consumed.
    #[error(
        "this authorization attempt already received its callback; a second callback for it \
         is ignored"
    )]
    AlreadyCompleted,

    /// The flow was started for another server (or client) than the caller expected. When this
    /// comes from a consume, the flow has been ended and its verifier wiped.
    #[error(
        "the authorization attempt belongs to a different {field} than the one this caller \
         expected (possible authorization-server mix-up); this callback was refused, start the \
         login again"
    )]
    ServerMismatch {
        /// What did not match: `"server_id"` or `"client_id"`; for a callback, `"redirect_uri"`
        /// (it arrived where the flow does not expect it) or `"iss"` (from another issuer).
        field: &'static str,
    },

    /// The authorization server redirected back with an error (`?error=...`).
    #[error("the authorization server refused the login: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationFailed {
        /// The RFC 6749 error code, such as `access_denied`.
        error: String,
        /// The optional human-readable `error_description`.
        description: Option<String>,
    },

    /// No saved code verifier has this code challenge.
    #[error(
        "no saved code verifier matches the code_challenge of this authorization URL: save the \
         verifier with this store before building the URL, or start the login again"
    )]
    UnknownChallenge,

    /// The code challenge was already bound to a different state.
    #[error(
        "this code verifier is already bound to another authorization attempt; generate a new \
         verifier for each attempt"
    )]
    ChallengeAlreadyBound,

    /// The same code verifier (same challenge) was saved twice.
    #[error("this code verifier was already saved; generate a new verifier for each attempt")]
    DuplicateChallenge,

    /// Several live bound verifiers exist for the server and client, so none can be chosen.
    #[error(
        "{count} authorization attempts are in progress for this server and client, so the \
         verifier to use is ambiguous; finish the flow by its state (consume) instead"
    )]
    AmbiguousPendingVerifier {
        /// How many live bound flows were found.
        count: u64,
    },

    /// No live bound verifier exists for the server and client.
    #[error("no authorization attempt is in progress for this server and client; start the login")]
    NoPendingVerifier,

    /// Another flow already uses this state.
    #[error("another authorization attempt already uses this state; generate a fresh state")]
    DuplicateState,

    /// An argument was rejected before any query ran. Nothing was changed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which argument: `state`, `code_verifier`, `ttl`, ...
        field: &'static str,
        /// Why it was rejected. Never contains the rejected value.
        reason: &'static str,
    },

    /// The authorization URL lacks a query parameter the operation needs.
    #[error("the authorization URL has no `{name}` query parameter; build it with this parameter")]
    MissingParameter {
        /// The missing parameter's name.
        name: &'static str,
    },

    /// The database file or its directory is not safe to use on a shared host.
    #[error("refusing to use {}: {reason}", path.display())]
    InsecureFile {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The database file does not exist and the store was told not to create it.
    #[error("database file {} does not exist (check the path, or run `oauth-state-store migrate` to create it)", path.display())]
    DatabaseMissing {
        /// The path that was looked at.
        path: PathBuf,
    },

    /// The file was written by a newer version of this crate.
    #[error(
        "the database schema is version {found}, newer than the {supported} this program knows; \
         upgrade oauth-state-store (files are never downgraded)"
    )]
    DatabaseTooNew {
        /// The file's `user_version`.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },

    /// The file is a store at an older schema version, and this open was not allowed to
    /// migrate it ([`StoreOptions::migrate`](crate::StoreOptions::migrate)). Nothing was
    /// changed.
    #[error(
        "the database needs a migration (its schema is version {found}, this program uses \
         {expected}); nothing was changed: run `oauth-state-store migrate` first"
    )]
    MigrationNeeded {
        /// The file's schema version (0: an empty file, not yet a store).
        found: i64,
        /// The version this code uses.
        expected: i64,
    },

    /// The file is not a store: its header lacks the store's `PRAGMA application_id` (another
    /// program's SQLite database, a text file), or, on PostgreSQL, the database has another
    /// program's `flows` or `meta` table. It is never migrated or written, and nothing is
    /// created beside it. Nothing was changed.
    #[error(
        "refusing to use {}: it is not an oauth-state-store database but {what}; nothing was \
         changed: check the path, or give the store a file of its own",
        path.display()
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What the file seems to be, such as `"an SQLite database with the tables users,
        /// sessions"`. Names from the file's schema only, never a row's value.
        what: String,
    },

    /// This process may not read the file or a directory on its way (another user's file,
    /// or a private directory). Distinct from [`Error::DatabaseMissing`]: the file may exist.
    #[error("permission denied on {}: {reason}", path.display())]
    PermissionDenied {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// Who owns what, and what to do about it.
        reason: String,
    },

    /// Another connection held a lock past the busy timeout.
    #[error(
        "the database stayed locked by another connection for longer than the busy timeout \
         ({timeout:?}); retry when the other program is done, or raise the busy timeout \
         (`StoreOptions::busy_timeout`; on the command line, `--busy-timeout`)"
    )]
    Busy {
        /// The busy timeout in force.
        timeout: Duration,
        /// The storage engine's own error.
        #[source]
        source: StorageError,
    },

    /// The disk (or the database's page limit) is full. Nothing was written.
    #[error(
        "the database could not grow: the disk or its size limit is full; free space and retry"
    )]
    StorageFull {
        /// The storage engine's own error.
        #[source]
        source: StorageError,
    },

    /// The database or its directory cannot be written.
    #[error(
        "the database is read-only for this process; check the permissions of the file, its \
         -wal/-shm files and its directory"
    )]
    ReadOnly {
        /// The storage engine's own error.
        #[source]
        source: StorageError,
    },

    /// The database is damaged: the file is not a database, or a row contradicts itself or its
    /// index. Nothing was handed out from the damaged part.
    #[error(
        "the database is corrupt ({what}); run `oauth-state-store check`, then move the file \
         aside (pending logins are lost and must be restarted)"
    )]
    Corrupt {
        /// What was found damaged. Never holds a value from the database.
        what: &'static str,
        /// The storage engine's own error, when it was the engine that found the damage.
        #[source]
        source: Option<StorageError>,
    },

    #[cfg(feature = "listener")]
    /// The loopback callback port is held by something that cannot take this store's
    /// callbacks. Returned at once, never after a silent wait.
    #[error(
        "the callback port 127.0.0.1:{port} is already in use by {holder}, so the browser's \
         redirect would not reach this program; choose another callback port (the listener's \
         port option, or your tool's callback-port setting) or a redirect URI on a free port, \
         or stop the program that holds it"
    )]
    PortInUse {
        /// The port asked for.
        port: u16,
        /// What answered on it.
        holder: PortHolder,
    },

    #[cfg(feature = "listener")]
    /// Nothing listens on the callback port, but connections that a program which listened
    /// there without `SO_REUSEADDR` closed before it exited still linger (TIME_WAIT), and the
    /// system lets nobody bind the port until they end. Only
    /// [`CallbackListener::bind`](crate::CallbackListener::bind), which must bind at once,
    /// returns it: [`LoopbackCallback::attach`](crate::LoopbackCallback::attach) succeeds and
    /// takes the port when it is free (see
    /// [`LoopbackCallback::port_delay`](crate::LoopbackCallback::port_delay)).
    #[error(
        "the callback port 127.0.0.1:{port} is not free yet: nothing listens on it, but the \
         system keeps connections a program left there for about {} s more; bind it then, \
         attach a LoopbackCallback (which takes the port as soon as it is free), or choose \
         another callback port",
        whole_seconds(.free_in)
    )]
    PortNotYetFree {
        /// The port asked for.
        port: u16,
        /// About how long until the system frees it (the last lingering connection ends).
        free_in: Duration,
    },

    #[cfg(feature = "listener")]
    /// No callback arrived for the flow while waiting. The flow stays pending until it expires.
    #[error(
        "no browser callback arrived for this login within {waited:?}; finish the login in the \
         browser and wait again, or start the login again"
    )]
    CallbackTimeout {
        /// How long the caller waited.
        waited: Duration,
    },

    #[cfg(feature = "listener")]
    /// The loopback callback listener could not use its socket.
    #[error("the callback listener on 127.0.0.1:{port} could not {action}")]
    Listener {
        /// The port involved.
        port: u16,
        /// What it was doing, such as `"bind the port"`.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// No token set is stored for this server and client: never saved, or forgotten.
    #[error("no tokens are stored for this server and client; sign in")]
    NoTokens,

    /// The authorization server refused the stored refresh token of the current generation
    /// (`invalid_grant`, ...), and the stored tokens were cleared: sign in again.
    #[error(
        "the authorization server refused the stored refresh token ({reason}) and the stored \
         tokens were cleared; sign in again{}",
        if *after_lost_holder {
            " (the process that refreshed these tokens before stopped after sending its \
             request, so the server had most likely replaced the refresh token already)"
        } else {
            ""
        }
    )]
    TokensRevoked {
        /// The OAuth error the server answered, such as `invalid_grant`.
        reason: String,
        /// This refresh took over the lease of a process that stopped (or stalled past its
        /// lease) while refreshing: its request may have reached the server.
        after_lost_holder: bool,
    },

    /// The stored token set has no refresh token, so it cannot be refreshed.
    #[error(
        "the stored tokens have no refresh token; sign in again when the access token expires"
    )]
    NoRefreshToken,

    /// Another process held the refresh of these tokens for longer than the caller would wait
    /// ([`RefreshOptions::wait`](crate::RefreshOptions::wait)).
    #[error(
        "another process has been refreshing these tokens for {waited:?}; try again \
         (`oauth-state-store tokens list` shows which process)"
    )]
    RefreshWaitTimeout {
        /// How long the caller waited.
        waited: Duration,
    },

    /// Any other failure of the storage engine.
    #[error("the database failed")]
    Storage(#[source] StorageError),

    /// The database server could not be reached or the connection to it was lost before the
    /// operation committed: nothing was changed. Distinct from [`Error::Busy`]: retry once the
    /// server is back.
    #[error(
        "the database server is unavailable (unreachable, restarting, or the connection was \
         lost); nothing was changed, retry when it is back"
    )]
    Unavailable {
        /// The driver's own error.
        #[source]
        source: StorageError,
    },

    /// The connection to the database server could not be made as the URL's `sslmode` asks:
    /// the server offers no TLS, its certificate is not signed by a trusted root or does not
    /// name the URL's host, or the TLS handshake was broken off. Nothing was sent beyond the
    /// handshake and nothing was changed. Unlike [`Error::Unavailable`], retrying does not
    /// help until the server's certificate or the URL's `sslmode`/`sslrootcert` change (a
    /// certificate that suddenly fails may also mean someone is in between).
    #[error(
        "the TLS connection to the database server was refused: {reason}; check the server's \
         certificate and the URL's sslmode and sslrootcert"
    )]
    Tls {
        /// What failed, in words. Never holds a value from the URL.
        reason: &'static str,
        /// The driver's own error (the TLS library's, inside).
        #[source]
        source: StorageError,
    },

    /// The connection was lost while the transaction was committing: the change may or may not
    /// have been made. Retrying a consume is safe: it yields the flow or
    /// [`Error::AlreadyConsumed`], never a second success.
    #[error(
        "the connection to the database was lost while committing, so whether the change was \
         made is unknown; retry the operation (a retried consume reports AlreadyConsumed if the \
         first one went through)"
    )]
    CommitOutcomeUnknown {
        /// The driver's own error.
        #[source]
        source: StorageError,
    },

    /// The connection pool could not hand out a connection in time.
    #[error("no database connection became available in time")]
    Pool(#[source] StorageError),

    /// A file-system operation failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        Error::InvalidInput { field, reason }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// [`Error::Corrupt`] for damage the store found itself (a row that contradicts itself or
    /// its index); `what` never holds a value from the row.
    pub(crate) fn corrupt(what: &'static str) -> Self {
        Error::Corrupt { what, source: None }
    }

    /// A guarded update that changed no row although the row was read in the same
    /// transaction: the engine let another writer in. The transaction is rolled back.
    pub(crate) fn row_changed(what: &'static str) -> Self {
        Error::Storage(StorageError::message(format!(
            "the flows row changed during the transaction that read it ({what} changed no row); \
             nothing was changed, retry"
        )))
    }

    /// This error and its causes, `": "`-separated, on one line.
    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    pub(crate) fn cause_chain(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            line.push_str(": ");
            line.push_str(&s.to_string());
            source = s.source();
        }
        line
    }
}
