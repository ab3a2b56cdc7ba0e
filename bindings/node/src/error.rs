//! Core errors as JavaScript errors with a stable `code`.
//!
//! N-API gives a thrown error only a status name, so the reason is a small JSON object:
//! `{"code": "ALREADY_CONSUMED", "message": "...", ...details}`. The package's `index.js`
//! parses it into a `StoreError` with `code`, `message` and the details as properties. The
//! message is the core's `Display`, which never carries a state, verifier, code or token.

use napi_derive::napi;
use oauth_state_store::{Error, PortHolder};
use serde_json::{json, Map, Value};

/// Every code a rejection of the package can carry: the one list that `ErrorCode` (built from
/// [`error_codes`] when the package loads) and `index.d.ts` (written from it by `npm run
/// build`) come from. These strings are the JavaScript API: never rename one.
///
/// [`code_of`]'s codes come first, then the binding's own: `ABORTED` (an `AbortSignal`),
/// `ERROR` (a core variant newer than this mapping), `INTERNAL` (a call that stopped).
pub(crate) const CODES: [&str; 40] = [
    "UNKNOWN_STATE",
    "EXPIRED",
    "ALREADY_CONSUMED",
    "ALREADY_COMPLETED",
    "FLOW_ENDED",
    "SERVER_MISMATCH",
    "AUTHORIZATION_FAILED",
    "UNKNOWN_CHALLENGE",
    "CHALLENGE_ALREADY_BOUND",
    "DUPLICATE_CHALLENGE",
    "AMBIGUOUS_PENDING_VERIFIER",
    "NO_PENDING_VERIFIER",
    "DUPLICATE_STATE",
    "INVALID_INPUT",
    "MISSING_PARAMETER",
    "INSECURE_FILE",
    "DATABASE_MISSING",
    "DATABASE_TOO_NEW",
    "MIGRATION_NEEDED",
    "NOT_A_STORE",
    "PERMISSION_DENIED",
    "BUSY",
    "STORAGE_FULL",
    "READ_ONLY",
    "CORRUPT",
    "UNAVAILABLE",
    "TLS",
    "COMMIT_OUTCOME_UNKNOWN",
    "PORT_IN_USE",
    "PORT_NOT_YET_FREE",
    "CALLBACK_TIMEOUT",
    "LISTENER",
    "NO_TOKENS",
    "TOKENS_REVOKED",
    "NO_REFRESH_TOKEN",
    "REFRESH_WAIT_TIMEOUT",
    "STORAGE",
    "ABORTED",
    "ERROR",
    "INTERNAL",
];

/// The stable codes ([`CODES`]), in order: what the package's `ErrorCode` is made of.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    CODES.to_vec()
}

/// The stable code of a core error (one of [`CODES`]).
pub(crate) fn code_of(error: &Error) -> &'static str {
    match error {
        Error::UnknownState => "UNKNOWN_STATE",
        Error::Expired => "EXPIRED",
        Error::AlreadyConsumed => "ALREADY_CONSUMED",
        Error::AlreadyCompleted => "ALREADY_COMPLETED",
        Error::ServerMismatch { .. } => "SERVER_MISMATCH",
        Error::AuthorizationFailed { .. } => "AUTHORIZATION_FAILED",
        Error::UnknownChallenge => "UNKNOWN_CHALLENGE",
        Error::ChallengeAlreadyBound => "CHALLENGE_ALREADY_BOUND",
        Error::DuplicateChallenge => "DUPLICATE_CHALLENGE",
        Error::AmbiguousPendingVerifier { .. } => "AMBIGUOUS_PENDING_VERIFIER",
        Error::NoPendingVerifier => "NO_PENDING_VERIFIER",
        Error::DuplicateState => "DUPLICATE_STATE",
        Error::InvalidInput { .. } => "INVALID_INPUT",
        Error::MissingParameter { .. } => "MISSING_PARAMETER",
        Error::InsecureFile { .. } => "INSECURE_FILE",
        Error::DatabaseMissing { .. } => "DATABASE_MISSING",
        Error::DatabaseTooNew { .. } => "DATABASE_TOO_NEW",
        Error::Busy { .. } => "BUSY",
        Error::StorageFull { .. } => "STORAGE_FULL",
        Error::ReadOnly { .. } => "READ_ONLY",
        Error::Corrupt { .. } => "CORRUPT",
        Error::PortInUse { .. } => "PORT_IN_USE",
        Error::PortNotYetFree { .. } => "PORT_NOT_YET_FREE",
        Error::CallbackTimeout { .. } => "CALLBACK_TIMEOUT",
        Error::Listener { .. } => "LISTENER",
        Error::NoTokens => "NO_TOKENS",
        Error::TokensRevoked { .. } => "TOKENS_REVOKED",
        Error::NoRefreshToken => "NO_REFRESH_TOKEN",
        Error::RefreshWaitTimeout { .. } => "REFRESH_WAIT_TIMEOUT",
        Error::Storage(_) | Error::Pool(_) | Error::Io { .. } => "STORAGE",
        Error::FlowEnded { .. } => "FLOW_ENDED",
        Error::MigrationNeeded { .. } => "MIGRATION_NEEDED",
        Error::NotAStore { .. } => "NOT_A_STORE",
        Error::PermissionDenied { .. } => "PERMISSION_DENIED",
        Error::Unavailable { .. } => "UNAVAILABLE",
        Error::Tls { .. } => "TLS",
        Error::CommitOutcomeUnknown { .. } => "COMMIT_OUTCOME_UNKNOWN",
        // A variant newer than this mapping keeps a generic code rather than a wrong one.
        _ => "ERROR",
    }
}

/// The non-secret details a caller may branch on, beside the code.
fn details(error: &Error, out: &mut Map<String, Value>) {
    match error {
        Error::ServerMismatch { field } => {
            out.insert("field".into(), json!(field));
        }
        Error::AuthorizationFailed { error, description } => {
            out.insert("error".into(), json!(error));
            out.insert("errorDescription".into(), json!(description));
        }
        Error::AmbiguousPendingVerifier { count } => {
            out.insert("count".into(), json!(count));
        }
        Error::InvalidInput { field, .. } => {
            out.insert("field".into(), json!(field));
        }
        Error::MissingParameter { name } => {
            out.insert("parameter".into(), json!(name));
        }
        Error::PortInUse { port, holder } => {
            out.insert("port".into(), json!(port));
            let holder = match holder {
                PortHolder::SameStore => "same-store",
                PortHolder::OtherStore => "other-store",
                _ => "other",
            };
            out.insert("holder".into(), json!(holder));
        }
        Error::PortNotYetFree { port, free_in } => {
            out.insert("port".into(), json!(port));
            out.insert("freeInMs".into(), json!(free_in.as_millis() as u64));
        }
        Error::Listener { port, .. } => {
            out.insert("port".into(), json!(port));
        }
        Error::Busy { timeout, .. } => {
            out.insert("timeoutMs".into(), json!(timeout.as_millis() as u64));
        }
        Error::TokensRevoked {
            reason,
            after_lost_holder,
        } => {
            out.insert("reason".into(), json!(reason));
            out.insert("afterLostHolder".into(), json!(after_lost_holder));
        }
        Error::RefreshWaitTimeout { waited } => {
            out.insert("waitedMs".into(), json!(waited.as_millis() as u64));
        }
        _ => {}
    }
}

/// The message: the core's text, plus the cause for the opaque storage and socket errors
/// (SQLite's and the OS's texts name no value of a row).
fn message(error: &Error) -> String {
    let top = error.to_string();
    match error {
        Error::Storage(source) => format!("{top}: {source}"),
        Error::Pool(source) => format!("{top}: {source}"),
        Error::Io { source, .. } | Error::Listener { source, .. } => format!("{top}: {source}"),
        _ => top,
    }
}

/// The JavaScript error for a core error.
pub(crate) fn to_js(error: &Error) -> napi::Error {
    let mut payload = Map::new();
    payload.insert("code".into(), json!(code_of(error)));
    payload.insert("message".into(), json!(message(error)));
    details(error, &mut payload);
    napi::Error::from_reason(Value::Object(payload).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_json_with_the_stable_code() {
        let e = to_js(&Error::AmbiguousPendingVerifier { count: 2 });
        let v: Value = serde_json::from_str(&e.reason).unwrap();
        assert_eq!(v["code"], "AMBIGUOUS_PENDING_VERIFIER");
        assert_eq!(v["count"], 2);
        assert!(v["message"].as_str().unwrap().contains("ambiguous"));
    }

    #[test]
    fn port_in_use_names_the_port() {
        let e = to_js(&Error::PortInUse {
            port: 40123,
            holder: PortHolder::Other,
        });
        let v: Value = serde_json::from_str(&e.reason).unwrap();
        assert_eq!(v["code"], "PORT_IN_USE");
        assert_eq!(v["port"], 40123);
        assert!(v["message"].as_str().unwrap().contains("40123"));
    }

    /// The variant names of the core's `pub enum Error`, read from its source: a variant added
    /// there later is in this list too, which a match from outside the crate (where the enum is
    /// `#[non_exhaustive]`) cannot see.
    fn core_variants() -> Vec<String> {
        let source = include_str!("../../../src/error.rs");
        let start = source
            .find("pub enum Error {")
            .expect("the core declares Error");
        let body = &source[start..];
        let body = &body[..body.find("\n}").expect("the enum ends")];
        body.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("    ")?;
                let first = rest.chars().next()?;
                if !first.is_ascii_uppercase() {
                    return None;
                }
                Some(
                    rest.chars()
                        .take_while(char::is_ascii_alphanumeric)
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn every_core_variant_has_its_code() {
        let variants = core_variants();
        assert!(variants.len() >= 30, "read the variants: {variants:?}");
        let mapping = include_str!("error.rs");
        let body = &mapping[mapping.find("fn code_of").unwrap()..];
        let body = &body[..body.find("\n}").unwrap()];
        for v in &variants {
            assert!(
                body.contains(&format!("Error::{v} ")) || body.contains(&format!("Error::{v}(")),
                "the core's Error::{v} has no code in code_of (it would reach JavaScript as ERROR)"
            );
        }
        // Every code code_of gives is in the list, and the list has nothing else but the
        // binding's own codes.
        let given: Vec<&str> = body
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| s.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        for code in &given {
            assert!(CODES.contains(code), "{code} is not in CODES");
        }
        for code in CODES {
            assert!(
                given.contains(&code) || ["ABORTED", "INTERNAL"].contains(&code),
                "{code} is in CODES but nothing gives it"
            );
        }
    }
}
