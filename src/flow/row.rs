//! The rows that cross the row interface ([`FlowTx`](super::tx::FlowTx)): a row as an
//! operation reads it, a row to insert, what a bind or a callback writes, and the lines of the
//! many-row reads. Every `Debug` leaves the secrets out.

use std::fmt;

use super::promotion::Length;
use super::{FlowInfo, Status};

/// A flows row as an operation reads it inside its transaction. Its `Debug` leaves the
/// secrets out (see [`redacted`]).
pub(crate) struct FlowRow {
    /// The engine's row id (what the guarded updates name).
    pub id: i64,
    pub status: Status,
    pub expires_at: i64,
    pub created_at: i64,
    pub server_id: String,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub issuer: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    /// A secret; `None` once wiped.
    pub verifier: Option<String>,
    /// A secret; `None` once wiped.
    pub auth_code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub state_key: Option<Vec<u8>>,
    pub code_challenge: String,
    pub require_issuer: bool,
    pub client_created_at: Option<i64>,
    /// An SDK's discovery state (column `discovery`); `None` once consumed.
    pub discovery: Option<String>,
}

impl FlowRow {
    /// The row's non-secret description.
    pub(crate) fn info(&self) -> FlowInfo {
        FlowInfo {
            server_id: self.server_id.clone(),
            client_id: self.client_id.clone(),
            status: self.status,
            redirect_uri: self.redirect_uri.clone(),
            issuer: self.issuer.clone(),
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// A row to insert. Its `Debug` leaves the verifier and the state key out.
pub(crate) struct NewFlow<'a> {
    /// `None` for an unbound verifier.
    pub state_key: Option<&'a [u8; 32]>,
    pub code_challenge: &'a str,
    pub verifier: &'a str,
    pub server_id: &'a str,
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub status: Status,
    pub require_issuer: bool,
    pub client_created_at: Option<i64>,
    /// The store generated the verifier (32 random bytes): its challenge cannot repeat and is
    /// never looked up, so an engine may leave it out of its challenge index (SQLite's
    /// `flows.generated_verifier`). `false` for an unbound row and a caller's verifier.
    pub generated_verifier: bool,
}

/// What `bind` writes on an unbound row: its state key, and the URL's fields where given
/// (`None` keeps the stored value). Its `Debug` prints the discovery state's length only.
pub(crate) struct Binding<'a> {
    pub state_key: &'a [u8; 32],
    pub redirect_uri: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// The authorization server's issuer (RFC 9207), when the caller knows it at promote.
    pub issuer: Option<&'a str>,
    /// The callback must carry `iss` equal to the issuer (an unbound row never requires it).
    pub require_issuer: bool,
    /// An SDK's discovery state, when the caller gives it at promote.
    pub discovery: Option<&'a str>,
}

/// What a callback delivered, as recorded on a pending row. Its `Debug` leaves the code out.
#[derive(Clone, Copy)]
pub(crate) enum CallbackResult<'a> {
    /// `?code=...`: the row becomes `completed` and keeps the code.
    Code(&'a str),
    /// `?error=...`: the row becomes `failed`; its verifier is wiped.
    Error {
        error: &'a str,
        description: Option<&'a str>,
    },
}

impl CallbackResult<'_> {
    /// The status the row gets.
    pub(crate) fn status(&self) -> Status {
        match self {
            CallbackResult::Code(_) => Status::Completed,
            CallbackResult::Error { .. } => Status::Failed,
        }
    }
}

/// A live bound flow as the SDK's finish without the state reads it: its verifier with the
/// challenge it must hash to, the state it is bound to, whether the store generated the
/// verifier, and its discovery state. Its `Debug` leaves the verifier and the state key out.
pub(crate) struct PendingFlow {
    pub verifier: String,
    pub challenge: String,
    pub state_key: Option<Vec<u8>>,
    pub generated: bool,
    pub discovery: Option<String>,
}

/// What the choice of `pending_verifier` read: up to
/// [`TO_TELL_ONE_FROM_MANY`](super::rules::TO_TELL_ONE_FROM_MANY) live bound flows of a server
/// and client, and how many there are in all.
pub(crate) struct PendingFlows {
    pub found: Vec<PendingFlow>,
    pub count: u64,
}

/// What the `Debug` of a row type prints in place of a secret that is there (`None` stays
/// `None`, so a wiped verifier is still told apart from a present one).
fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

impl fmt::Debug for FlowRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRow")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .field("verifier", &redacted(&self.verifier))
            .field("auth_code", &redacted(&self.auth_code))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("state_key", &redacted(&self.state_key))
            .field("code_challenge", &self.code_challenge)
            .field("require_issuer", &self.require_issuer)
            .field("client_created_at", &self.client_created_at)
            .field("discovery", &self.discovery.as_deref().map(Length))
            .finish()
    }
}

impl fmt::Debug for Binding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("state_key", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("require_issuer", &self.require_issuer)
            .field("discovery", &self.discovery.map(Length))
            .finish()
    }
}

impl fmt::Debug for NewFlow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFlow")
            .field("state_key", &redacted(&self.state_key))
            .field("code_challenge", &self.code_challenge)
            .field("verifier", &"[redacted]")
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CallbackResult<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackResult::Code(_) => f.write_str("Code([redacted])"),
            CallbackResult::Error { error, description } => f
                .debug_struct("Error")
                .field("error", error)
                .field("description", description)
                .finish(),
        }
    }
}

impl fmt::Debug for PendingFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingFlow")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .field("state_key", &redacted(&self.state_key))
            .field("generated", &self.generated)
            .field("discovery", &self.discovery.as_deref().map(Length))
            .finish()
    }
}

/// One status's line of the statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusStats {
    pub status: Status,
    pub count: u64,
    pub min_expiry: Option<i64>,
    pub max_expiry: Option<i64>,
    pub expired: u64,
}

/// One row as `list` returns it: no secret.
#[derive(Debug)]
pub(crate) struct ListedRow {
    pub state_key: Option<Vec<u8>>,
    pub server_id: String,
    pub client_id: Option<String>,
    pub status: Status,
    pub created_at: i64,
    pub expires_at: i64,
    /// The `error` column: on a tombstone, why the flow ended (see
    /// [`rules::end_reason`](crate::flow::rules::end_reason)).
    pub error: Option<String>,
}

/// One chunk of a walk in id order: the statuses of the rows it deleted, and the last id it
/// walked (`None` when it reached the end of the table: the walk is over).
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub deleted: Vec<Status>,
    pub last: Option<i64>,
}

impl Chunk {
    /// The chunk of a walk that looked at `walked` rows (of at most `walk`), up to the id
    /// `end`, and deleted `deleted` (at most `limit`; the highest id `last_deleted`). A chunk
    /// that hit its delete limit resumes after its last deleted row; one that walked its whole
    /// window resumes after `end`; a shorter window reached the end of the table.
    pub(crate) fn after_walk(
        deleted: Vec<Status>,
        limit: u32,
        last_deleted: Option<i64>,
        walked: i64,
        walk: u32,
        end: i64,
    ) -> Chunk {
        let last = if deleted.len() >= limit as usize {
            last_deleted
        } else {
            (walked >= i64::from(walk)).then_some(end)
        };
        Chunk { deleted, last }
    }
}

/// "Live at a time", as [`rules::live_at`](crate::flow::rules::live_at) defines it, in the
/// bounds a many-row statement compares columns with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    /// Live rows expire strictly after this.
    pub expires_after: i64,
    /// Live rows were created at or before this.
    pub created_by: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_types_never_print_a_secret() {
        let row = FlowRow {
            id: 1,
            status: Status::Completed,
            expires_at: 2,
            created_at: 1,
            server_id: "srv".into(),
            client_id: None,
            redirect_uri: None,
            issuer: None,
            resource: None,
            scope: None,
            verifier: Some("VERIFIER-SECRET".into()),
            auth_code: Some("CODE-SECRET".into()),
            error: None,
            error_description: None,
            state_key: Some(b"STATEKEY-SECRET".to_vec()),
            code_challenge: "challenge".into(),
            require_issuer: false,
            client_created_at: None,
            discovery: Some("DISCOVERY-TEXT".into()),
        };
        let key = [7u8; 32];
        let new = NewFlow {
            state_key: Some(&key),
            code_challenge: "challenge",
            verifier: "VERIFIER-SECRET",
            server_id: "srv",
            client_id: None,
            redirect_uri: None,
            issuer: None,
            resource: None,
            scope: None,
            status: Status::Pending,
            require_issuer: false,
            client_created_at: None,
            generated_verifier: true,
        };
        let stored = PendingFlow {
            verifier: "VERIFIER-SECRET".into(),
            challenge: "challenge".into(),
            state_key: Some(b"STATEKEY-SECRET".to_vec()),
            generated: false,
            discovery: Some("DISCOVERY-TEXT".into()),
        };
        let binding = Binding {
            state_key: &key,
            redirect_uri: None,
            resource: None,
            scope: None,
            issuer: None,
            require_issuer: false,
            discovery: Some("DISCOVERY-TEXT"),
        };
        let printed = format!(
            "{row:?} {new:?} {stored:?} {binding:?} {:?}",
            CallbackResult::Code("CODE-SECRET")
        );
        for secret in [
            "VERIFIER-SECRET",
            "CODE-SECRET",
            "83, 84, 65",
            "7, 7, 7",
            "DISCOVERY-TEXT",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("[redacted]"));
        // The discovery state is no secret, but shows its length only.
        assert_eq!(printed.matches("[14 bytes]").count(), 3, "{printed}");
    }
}
