//! Validation of the non-secret inputs, before any query runs.
//!
//! Each check names the field and says why, never echoing the value.

use crate::error::{Error, Result};

/// Longest server or client id accepted.
pub(crate) const MAX_ID_LEN: usize = 512;
/// Longest URL (redirect URI, issuer, resource, endpoint) accepted.
pub(crate) const MAX_URL_LEN: usize = 2048;
/// Longest scope string accepted.
pub(crate) const MAX_SCOPE_LEN: usize = 4096;
/// Longest RFC 6749 `error` code a callback may carry.
pub(crate) const MAX_ERROR_LEN: usize = 256;
/// Longest `error_description` a callback may carry.
pub(crate) const MAX_ERROR_DESCRIPTION_LEN: usize = 1024;
/// Longest time to live accepted: one day.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// A server or client id: 1–512 bytes of UTF-8 without control characters.
pub(crate) fn id(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Error::invalid(field, "is longer than 512 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// A server id and an optional client id.
pub(crate) fn server_and_client(server_id: &str, client_id: Option<&str>) -> Result<()> {
    id("server_id", server_id)?;
    client_id.map_or(Ok(()), |c| id("client_id", c))
}

/// Whether `host` is a loopback name or address, where plain `http` is acceptable.
pub(crate) fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// An absolute URL without fragment, at most 2048 bytes. `https_only` also requires `https`,
/// or `http` on a loopback host.
pub(crate) fn url(field: &'static str, value: &str, https_only: bool) -> Result<url::Url> {
    if value.len() > MAX_URL_LEN {
        return Err(Error::invalid(field, "is longer than 2048 bytes"));
    }
    let parsed = url::Url::parse(value).map_err(|e| Error::invalid(field, parse_reason(e)))?;
    if parsed.fragment().is_some() {
        return Err(Error::invalid(field, "must not have a #fragment"));
    }
    if parsed.cannot_be_a_base() {
        return Err(Error::invalid(field, "is not a hierarchical URL"));
    }
    if https_only
        && parsed.scheme() != "https"
        && !(parsed.scheme() == "http" && is_loopback_host(&parsed))
    {
        return Err(Error::invalid(field, https_reason(field)));
    }
    Ok(parsed)
}

/// Why a plain-http URL off loopback is refused. An issuer gets the rule it breaks: RFC 8414
/// (section 2) makes an authorization server's issuer an https URL, so a server that announces
/// a plain-http one off loopback cannot log in through this store; loopback is allowed for a
/// server under test on the same machine.
fn https_reason(field: &str) -> &'static str {
    if field == "issuer" {
        "must be an https URL: RFC 8414 makes an authorization server's issuer an https URL, \
         and a plain-http issuer could be answered by anyone on the network path; plain http \
         is accepted only on a loopback host (127.0.0.1, [::1], localhost), for a server \
         under test on this machine"
    } else {
        "must use https (plain http only on a loopback host)"
    }
}

/// Why `url::Url::parse` refused a value, in words that point at the part to fix.
pub(crate) fn parse_reason(e: url::ParseError) -> &'static str {
    use url::ParseError as P;
    match e {
        P::RelativeUrlWithoutBase | P::RelativeUrlWithCannotBeABaseBase => {
            "is not an absolute URL (it needs a scheme such as https://)"
        }
        P::InvalidPort => "has an invalid port (it must be a number from 1 to 65535)",
        P::EmptyHost => "has an empty host",
        P::InvalidIpv4Address => "has an invalid IPv4 address",
        P::InvalidIpv6Address => "has an invalid IPv6 address",
        P::InvalidDomainCharacter => "has a character that a host name cannot contain",
        P::IdnaError => "has a host name that is not a valid international domain name",
        P::SetHostOnCannotBeABaseUrl => "is not a hierarchical URL",
        P::Overflow => "is too long",
        _ => "is not a valid URL",
    }
}

/// A redirect URI as RFC 8252 (section 7) and the MCP authorization spec allow it: `https`,
/// plain `http` only on a loopback host (`127.0.0.1`, `[::1]`, `localhost`), or a private-use
/// scheme named after a reverse domain (`com.example.app:/callback`), with a port, if any, from
/// 1 to 65535. Checked like any other URL first (length, fragment, hierarchical).
pub(crate) fn redirect_uri(value: &str) -> Result<url::Url> {
    const FIELD: &str = "redirect_uri";
    let parsed = url(FIELD, value, false)?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&parsed) => {}
        "http" => {
            return Err(Error::invalid(
                FIELD,
                "uses plain http on a host that is not loopback (use https, or http://127.0.0.1)",
            ))
        }
        scheme if scheme.contains('.') => {}
        _ => {
            return Err(Error::invalid(
                FIELD,
                "must use https, http on a loopback host, or a reverse-domain private scheme",
            ))
        }
    }
    if parsed.port() == Some(0) {
        return Err(Error::invalid(
            FIELD,
            "has port 0 (it must be a number from 1 to 65535)",
        ));
    }
    Ok(parsed)
}

/// Space-separated RFC 6749 scope tokens.
pub(crate) fn scope(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_SCOPE_LEN {
        return Err(Error::invalid("scope", "must be 1 to 4096 characters long"));
    }
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    };
    if !value.split(' ').all(token_ok) {
        return Err(Error::invalid(
            "scope",
            "must be scope tokens separated by single spaces (RFC 6749 section 3.3)",
        ));
    }
    Ok(())
}

/// A time to live: positive and at most one day.
pub(crate) fn ttl(ttl: std::time::Duration) -> Result<i64> {
    if ttl < std::time::Duration::from_millis(1) {
        return Err(Error::invalid("ttl", "must be at least one millisecond"));
    }
    if ttl > MAX_TTL {
        return Err(Error::invalid("ttl", "must be at most one day"));
    }
    // At most 86_400_000 ms, so the conversion cannot fail.
    i64::try_from(ttl.as_millis()).map_err(|_| Error::invalid("ttl", "is too large"))
}

/// Longest busy timeout accepted: SQLite takes it as a C `int` of milliseconds.
pub(crate) const MAX_BUSY_TIMEOUT_MS: u128 = i32::MAX as u128;

/// A busy timeout: zero (do not wait) up to [`MAX_BUSY_TIMEOUT_MS`].
pub(crate) fn busy_timeout(timeout: std::time::Duration) -> Result<()> {
    if timeout.as_millis() > MAX_BUSY_TIMEOUT_MS {
        return Err(Error::invalid(
            "busy_timeout",
            "must be at most 24 days (2^31 - 1 milliseconds)",
        ));
    }
    Ok(())
}

/// `now + ttl`, refusing a clock so far in the future that the sum overflows.
pub(crate) fn expiry(now: i64, ttl_ms: i64) -> Result<i64> {
    now.checked_add(ttl_ms)
        .ok_or(Error::invalid("ttl", "overflows the clock's range"))
}

/// An RFC 6749 `error` code: 1–256 characters of %x20-21 / %x23-5B / %x5D-7E.
pub(crate) fn error_code(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max {
        return Err(Error::invalid(field, "has the wrong length"));
    }
    if !value.bytes().all(|b| {
        (0x20..=0x21).contains(&b) || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
    }) {
        return Err(Error::invalid(
            field,
            "contains a character RFC 6749 does not allow here",
        ));
    }
    Ok(())
}

/// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a
/// file: [`Store::open`](crate::Store::open) picks the engine by it.
pub(crate) fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        use std::time::Duration;
        assert!(ttl(Duration::ZERO).is_err());
        assert!(ttl(Duration::from_micros(999)).is_err());
        assert!(ttl(Duration::MAX).is_err());
        assert!(ttl(MAX_TTL + Duration::from_millis(1)).is_err());
        assert_eq!(ttl(MAX_TTL).unwrap(), 86_400_000);
        assert_eq!(ttl(Duration::from_secs(600)).unwrap(), 600_000);
        assert!(busy_timeout(Duration::ZERO).is_ok());
        assert!(busy_timeout(Duration::MAX).is_err());
        assert!(expiry(i64::MAX - 5, 600_000).is_err());
    }

    #[test]
    fn ids_and_urls() {
        assert!(id("server_id", "").is_err());
        assert!(id("server_id", "a\0b").is_err());
        assert!(id("server_id", &"x".repeat(513)).is_err());
        assert!(id("server_id", "https://mcp.example.com/%_'").is_ok());
        let plain = url("issuer", "http://evil.example", true)
            .unwrap_err()
            .to_string();
        assert!(
            plain.contains("RFC 8414") && plain.contains("loopback"),
            "{plain}"
        );
        assert!(url("issuer", "http://127.0.0.1:8080", true).is_ok());
        assert!(url("issuer", "https://as.example#frag", true).is_err());
        assert!(url("redirect_uri", "not a url", false).is_err());
        let reason = |r: Result<url::Url>| match r {
            Err(Error::InvalidInput { field, reason }) => (field, reason),
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        let (field, why) = reason(url("redirect_uri", "http://localhost:99999/cb", false));
        assert_eq!(field, "redirect_uri");
        assert!(why.contains("port"), "{why}");
        assert!(reason(url("issuer", "/relative", true))
            .1
            .contains("scheme"));
    }

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for ok in [
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost:3000/cb",
            "https://app.example.com/oauth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(redirect_uri(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("http://example.com/callback", "loopback"),
            ("http://10.0.0.1/cb", "loopback"),
            ("ftp://127.0.0.1/cb", "https"),
            ("myapp:/cb", "https"),
            ("http://localhost:99999/cb", "port"),
            ("http://127.0.0.1:0/cb", "port 0"),
            ("https://app.example.com/cb#x", "fragment"),
            ("callback", "scheme"),
        ] {
            match redirect_uri(bad) {
                Err(Error::InvalidInput { field, reason }) => {
                    assert_eq!(field, "redirect_uri");
                    assert!(reason.contains(needle), "{bad}: {reason}");
                }
                other => panic!("{bad}: expected InvalidInput, got {other:?}"),
            }
        }
        assert!(scope("read  write").is_err());
        assert!(scope("read write mcp:tools").is_ok());
        assert!(error_code("error", "access_denied", 256).is_ok());
        assert!(error_code("error", "bad\"quote", 256).is_err());
    }
}
