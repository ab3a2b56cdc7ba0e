//! What the SDK path records on a flow when it binds it, besides what the authorization URL
//! says: [`Promotion`] (the issuer, whether the callback must carry it, the discovery state),
//! and the discovery state as a consumed flow hands it back.

use std::fmt;

use crate::error::{Error, Result};
use crate::validate;

/// The longest discovery state a flow keeps, in bytes (64 KiB; column `discovery`).
pub const MAX_DISCOVERY_LEN: usize = 64 * 1024;

/// What [`Store::promote_with`](crate::Store::promote_with) records on the flow it binds,
/// besides the fields of the authorization URL. Every field is optional; the default records
/// nothing more than [`Store::promote`](crate::Store::promote) does.
///
/// ```
/// use oauth_state_store::Promotion;
/// let promotion = Promotion::new()
///     .issuer("https://auth.example.com")
///     .discovery(r#"{"authorizationServerUrl":"https://auth.example.com"}"#);
/// ```
///
/// Its `Debug` prints the discovery state's length, not its text.
#[derive(Clone, Default)]
pub struct Promotion {
    pub(crate) issuer: Option<String>,
    pub(crate) require_issuer: bool,
    pub(crate) discovery: Option<String>,
}

impl Promotion {
    /// Records nothing beyond the authorization URL's fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The authorization server's issuer (RFC 9207), as an SDK knows it from discovery: a
    /// callback whose `iss` names another issuer is then refused, and
    /// [`FlowInfo::issuer`](crate::FlowInfo::issuer) hands it to the callback leg. An `https`
    /// URL, or `http` on loopback.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Records that the callback must carry `iss` equal to the issuer (RFC 9207), as
    /// [`BeginRequest::require_issuer`](crate::BeginRequest::require_issuer) does on the
    /// native path: for an authorization server whose metadata advertises
    /// `authorization_response_iss_parameter_supported`. A listener (or
    /// [`Store::deliver`](crate::Store::deliver)) then refuses a callback without `iss`, and
    /// the listener's `wait_for_code` hands the checked issuer on. Needs
    /// [`Promotion::issuer`].
    pub fn require_issuer(mut self, require: bool) -> Self {
        self.require_issuer = require;
        self
    }

    /// The SDK's discovery state of this flow (the MCP TypeScript SDK's `saveDiscoveryState`:
    /// the authorization server's metadata, serialized), opaque to the store: kept on the
    /// flow, handed back once by the consume that takes it
    /// ([`ConsumedFlow::discovery`](crate::ConsumedFlow::discovery)), and wiped in its
    /// tombstone. At most [`MAX_DISCOVERY_LEN`] bytes, without NUL characters.
    pub fn discovery(mut self, discovery: impl Into<String>) -> Self {
        self.discovery = Some(discovery.into());
        self
    }

    /// Checks every field; nothing has been stored yet.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.issuer {
            Some(i) => {
                validate::url("issuer", i, true)?;
            }
            None if self.require_issuer => {
                return Err(Error::invalid(
                    "issuer",
                    "is missing: a flow that requires the callback's iss needs the issuer",
                ));
            }
            None => {}
        }
        if let Some(d) = &self.discovery {
            discovery(d)?;
        }
        Ok(())
    }
}

/// A discovery state: at most [`MAX_DISCOVERY_LEN`] bytes, no NUL (which a PostgreSQL text
/// cannot hold).
fn discovery(value: &str) -> Result<()> {
    if value.len() > MAX_DISCOVERY_LEN {
        return Err(Error::invalid("discovery", "is longer than 64 KiB"));
    }
    if value.contains('\0') {
        return Err(Error::invalid("discovery", "contains a NUL character"));
    }
    Ok(())
}

impl fmt::Debug for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promotion")
            .field("issuer", &self.issuer)
            .field("require_issuer", &self.require_issuer)
            .field("discovery", &self.discovery.as_deref().map(Length))
            .finish()
    }
}

/// A discovery state read back from a flow. Its `Debug` prints its length only.
pub(crate) struct Discovery(pub(crate) String);

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Length(&self.0).fmt(f)
    }
}

/// How a discovery state prints in a `Debug`: `[N bytes]`.
pub(crate) struct Length<'a>(pub(crate) &'a str);

impl fmt::Debug for Length<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} bytes]", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_checked_in_bytes_and_nul_is_refused() {
        let at_limit = "é".repeat(MAX_DISCOVERY_LEN / 2);
        assert!(Promotion::new().discovery(at_limit).validate().is_ok());
        let over = "é".repeat(MAX_DISCOVERY_LEN / 2) + "x";
        assert!(matches!(
            Promotion::new().discovery(over).validate(),
            Err(Error::InvalidInput {
                field: "discovery",
                ..
            })
        ));
        assert!(matches!(
            Promotion::new().discovery("a\0b").validate(),
            Err(Error::InvalidInput {
                field: "discovery",
                ..
            })
        ));
        assert!(matches!(
            Promotion::new().issuer("ftp://x").validate(),
            Err(Error::InvalidInput {
                field: "issuer",
                ..
            })
        ));
        assert!(matches!(
            Promotion::new().require_issuer(true).validate(),
            Err(Error::InvalidInput {
                field: "issuer",
                ..
            })
        ));
        assert!(Promotion::new()
            .issuer("https://as.example.com")
            .require_issuer(true)
            .validate()
            .is_ok());
    }

    #[test]
    fn debug_shows_the_length_only() {
        let p = Promotion::new().discovery("secret-looking-metadata");
        let text = format!("{p:?}");
        assert!(text.contains("[23 bytes]"), "{text}");
        assert!(!text.contains("secret-looking"), "{text}");
        let d = format!("{:?}", Discovery("abc".into()));
        assert_eq!(d, "[3 bytes]");
    }
}
