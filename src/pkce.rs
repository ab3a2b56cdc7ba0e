//! States, code verifiers, challenges and authorization codes: generation and validation.
//!
//! Secrets are newtypes with private fields, read with `secret()`, printed as `[redacted]` by
//! `Debug`, and without `Clone`, so that a copy is always a deliberate act.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Length of a generated state or verifier: 32 random bytes in unpadded base64url.
pub(crate) const GENERATED_LEN: usize = 43;
/// Longest state accepted (printable ASCII).
pub(crate) const MAX_STATE_LEN: usize = 512;
/// Shortest code verifier RFC 7636 allows.
pub(crate) const MIN_VERIFIER_LEN: usize = 43;
/// Longest code verifier RFC 7636 allows.
pub(crate) const MAX_VERIFIER_LEN: usize = 128;
/// Longest authorization code accepted.
pub(crate) const MAX_CODE_LEN: usize = 4096;

/// A secret newtype: a private `String`, no `Clone`, and a `Debug` that prints
/// `Name([redacted])`.
macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(String);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}
pub(crate) use secret_type;

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

secret_type!(
    /// The OAuth `state` parameter. A secret: it is never stored, only its SHA-256.
    State
);

impl State {
    /// A fresh state: 32 random bytes from the operating system's CSPRNG, base64url (43 chars).
    pub fn generate() -> Self {
        State(random_token())
    }

    /// Wraps a state received from elsewhere (a callback URL, an SDK).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`) unless it is 1–512 printable ASCII characters.
    pub fn new(state: impl Into<String>) -> Result<Self> {
        let state = state.into();
        validate_state(&state)?;
        Ok(State(state))
    }

    /// The state itself, to put in an authorization URL.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the state: the key under which the flow is stored.
    pub(crate) fn key(&self) -> [u8; 32] {
        state_key(&self.0)
    }
}

secret_type!(
    /// The PKCE `code_verifier`. A secret, wiped from the database when its flow is consumed.
    CodeVerifier
);

impl CodeVerifier {
    /// A fresh verifier: 32 random bytes, base64url (43 chars).
    pub fn generate() -> Self {
        CodeVerifier(random_token())
    }

    /// Wraps a verifier made elsewhere (an SDK).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`code_verifier`) unless it is 43–128 RFC 7636 unreserved
    /// characters (`A-Z a-z 0-9 - . _ ~`).
    pub fn new(verifier: impl Into<String>) -> Result<Self> {
        let verifier = verifier.into();
        validate_verifier(&verifier)?;
        Ok(CodeVerifier(verifier))
    }

    /// A verifier read back from the database (validated when it was stored).
    pub(crate) fn from_stored(verifier: String) -> Self {
        CodeVerifier(verifier)
    }

    /// The verifier itself, for the token request.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The S256 challenge of this verifier.
    pub fn challenge(&self) -> CodeChallenge {
        CodeChallenge(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
    }
}

/// The S256 `code_challenge`: public (it travels in the authorization URL).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Wraps a challenge read from elsewhere.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`code_challenge`) unless it is 43 base64url characters.
    pub fn new(challenge: impl Into<String>) -> Result<Self> {
        let challenge = challenge.into();
        validate_challenge(&challenge)?;
        Ok(CodeChallenge(challenge))
    }

    /// The challenge text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodeChallenge").field(&self.0).finish()
    }
}

impl fmt::Display for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

secret_type!(
    /// The authorization `code` delivered to the callback. A secret.
    AuthorizationCode
);

impl AuthorizationCode {
    /// Wraps a code received on the callback.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`code`) unless it is 1–4096 visible ASCII characters.
    pub fn new(code: impl Into<String>) -> Result<Self> {
        let code = code.into();
        validate_code(&code)?;
        Ok(AuthorizationCode(code))
    }

    /// A code read back from the database (validated when it was stored).
    pub(crate) fn from_stored(code: String) -> Self {
        AuthorizationCode(code)
    }

    /// The code itself, for the token request.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of a state, as stored in `flows.state_key`.
pub(crate) fn state_key(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

/// Printable ASCII, 1–512 characters.
pub(crate) fn validate_state(state: &str) -> Result<()> {
    if state.is_empty() {
        return Err(Error::invalid("state", "is empty"));
    }
    if state.len() > MAX_STATE_LEN {
        return Err(Error::invalid("state", "is longer than 512 characters"));
    }
    if !state.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            "state",
            "contains a character that is not printable ASCII",
        ));
    }
    Ok(())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

pub(crate) fn validate_verifier(v: &str) -> Result<()> {
    if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&v.len()) {
        return Err(Error::invalid(
            "code_verifier",
            "must be 43 to 128 characters long (RFC 7636)",
        ));
    }
    if !v.bytes().all(is_unreserved) {
        return Err(Error::invalid(
            "code_verifier",
            "may only contain A-Z a-z 0-9 - . _ ~ (RFC 7636)",
        ));
    }
    Ok(())
}

pub(crate) fn validate_challenge(c: &str) -> Result<()> {
    if c.len() != GENERATED_LEN || !c.bytes().all(is_base64url) {
        return Err(Error::invalid(
            "code_challenge",
            "must be 43 base64url characters (an S256 challenge)",
        ));
    }
    Ok(())
}

pub(crate) fn validate_code(code: &str) -> Result<()> {
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(Error::invalid("code", "must be 1 to 4096 characters long"));
    }
    if !code.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            "code",
            "contains a character that is not printable ASCII",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            v.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_values_have_the_right_shape_and_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let s = State::generate();
            let v = CodeVerifier::generate();
            for t in [s.secret(), v.secret()] {
                assert_eq!(t.len(), GENERATED_LEN);
                assert!(t.bytes().all(is_base64url), "not base64url");
                assert!(seen.insert(t.to_owned()), "a generated value repeated");
            }
            validate_verifier(v.secret()).unwrap();
            validate_state(s.secret()).unwrap();
            validate_challenge(v.challenge().as_str()).unwrap();
        }
    }

    #[test]
    fn validation_rejects_bad_values_naming_the_field() {
        let long_state = "a".repeat(513);
        for bad in ["", "a\0b", "é", "tab\there", long_state.as_str()] {
            match validate_state(bad) {
                Err(Error::InvalidInput { field: "state", .. }) => {}
                other => panic!("state {bad:?} gave {other:?}"),
            }
        }
        let long_verifier = "a".repeat(129);
        for bad in [
            "short",
            long_verifier.as_str(),
            "' OR 1=1; --aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "%_%_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(matches!(
                validate_verifier(bad),
                Err(Error::InvalidInput {
                    field: "code_verifier",
                    ..
                })
            ));
        }
        for bad in [
            "",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
        ] {
            assert!(matches!(
                validate_challenge(bad),
                Err(Error::InvalidInput {
                    field: "code_challenge",
                    ..
                })
            ));
        }
        assert!(validate_code("").is_err());
        assert!(validate_code("ok\n").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = State::new("my-very-secret-state").unwrap();
        let v = CodeVerifier::generate();
        let c = AuthorizationCode::new("the-code").unwrap();
        assert_eq!(format!("{s:?}"), "State([redacted])");
        assert_eq!(format!("{v:?}"), "CodeVerifier([redacted])");
        assert_eq!(format!("{c:?}"), "AuthorizationCode([redacted])");
    }
}
