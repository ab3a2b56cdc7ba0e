//! TLS to the database server, in Rust only: rustls with the ring provider, through the
//! driver's TLS hook (`tokio-postgres-rustls`). Nothing here needs a system library.
//!
//! The URL's `sslmode` and `sslrootcert` mean what they mean to libpq:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | not looked at |
//! | `prefer` (the default) | when the server offers it | not checked, unless `sslrootcert` names a file: then its chain to that file's roots |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | its chain to `sslrootcert`'s roots; the host name is not checked |
//! | `verify-full` | always | its chain and the host name; the system's roots unless `sslrootcert` names a file |
//!
//! `sslrootcert=system` is the system's roots, and then only `verify-full` is accepted (the
//! default when `sslmode` is not given), as libpq 16 does: a public CA signs certificates for
//! anyone's names, so checking the chain to it without the name proves nothing. For the same
//! reason `verify-ca` without `sslrootcert` is refused rather than checked against the system.
//! `allow`, client certificates and the other libpq TLS parameters are refused with
//! [`Error::InvalidInput`] naming them: a connection is never made weaker than the URL says.
//! Unlike libpq, `prefer` never falls back to plain text after a failed handshake, and nothing
//! is read from `~/.postgresql/` or `PGSSL*` variables: the URL says everything.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use postgres::config::SslMode as DriverSslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::SignatureScheme;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, StorageError};

/// The connector every connection of an engine is made with.
pub(crate) type Connector = MakeRustlsConnect;

/// The URL's `sslmode`, with libpq's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The PEM certificates of the file `sslrootcert` names.
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`, or `verify-full` without it), read
    /// when the engine opens.
    System,
}

/// What the connector checks of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Nothing: the connection is encrypted, not authenticated (libpq's `require`).
    Nothing,
    /// Its chain to the roots, not the host name (libpq's `verify-ca`).
    Chain(Roots),
    /// Its chain to the roots and the host name (libpq's `verify-full`).
    Full(Roots),
}

/// The TLS settings of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    pub(crate) verify: Verify,
}

impl Tls {
    /// The driver's own `sslmode`: whether it asks for TLS, and whether it must get it.
    pub(crate) fn driver_mode(&self) -> DriverSslMode {
        match self.mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }
}

/// libpq's TLS parameters the store does not support, each with why it is refused.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "sslcert",
        "sslcert (a client certificate) is not supported; the store's TLS takes sslmode and \
         sslrootcert",
    ),
    (
        "sslkey",
        "sslkey (a client certificate's key) is not supported; the store's TLS takes sslmode \
         and sslrootcert",
    ),
    (
        "sslpassword",
        "sslpassword (a client key's password) is not supported; the store's TLS takes sslmode \
         and sslrootcert",
    ),
    (
        "sslcertmode",
        "sslcertmode (client certificates) is not supported; the store's TLS takes sslmode and \
         sslrootcert",
    ),
    (
        "sslcrl",
        "sslcrl (certificate revocation lists) is not supported; the store's TLS takes sslmode \
         and sslrootcert",
    ),
    (
        "sslcrldir",
        "sslcrldir (certificate revocation lists) is not supported; the store's TLS takes \
         sslmode and sslrootcert",
    ),
    (
        "sslsni",
        "sslsni is not supported (the server name is always sent for a host name); the store's \
         TLS takes sslmode and sslrootcert",
    ),
    (
        "sslcompression",
        "sslcompression is not supported; the store's TLS takes sslmode and sslrootcert",
    ),
    (
        "ssl_min_protocol_version",
        "ssl_min_protocol_version is not supported (TLS 1.2 and 1.3 are allowed); the store's \
         TLS takes sslmode and sslrootcert",
    ),
    (
        "ssl_max_protocol_version",
        "ssl_max_protocol_version is not supported (TLS 1.2 and 1.3 are allowed); the store's \
         TLS takes sslmode and sslrootcert",
    ),
    (
        "requiressl",
        "requiressl is not supported; use sslmode=require",
    ),
];

/// Takes libpq's TLS parameters out of a `postgres://` URL's query: the URL the driver is
/// given (without them) and the settings they make.
///
/// The query is found as the driver finds it (after the credentials' `@`, from the first
/// `?`), and keys and values are percent-decoded as it decodes them.
///
/// # Errors
///
/// Why the parameters are refused, naming the parameter; never a value from the URL.
pub(crate) fn split(url: &str) -> Result<(String, Tls), &'static str> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(question) = url[after_credentials..].find('?') else {
        return Ok((url.to_owned(), settings(None, None)?));
    };
    let question = after_credentials + question;
    let (head, query) = (&url[..question], &url[question + 1..]);
    let mut mode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            kept.push(pair);
            continue;
        };
        let Ok(key) = percent_decode_str(key).decode_utf8() else {
            kept.push(pair);
            continue;
        };
        let value = percent_decode_str(value).decode_utf8();
        match key.as_ref() {
            "sslmode" => mode = Some(ssl_mode(value.as_deref().unwrap_or(""))?),
            "sslrootcert" => {
                let value =
                    value.map_err(|_| "sslrootcert is not valid UTF-8 once percent-decoded")?;
                rootcert = Some(value.into_owned());
            }
            other => match UNSUPPORTED.iter().find(|(name, _)| *name == other) {
                Some((_, why)) => return Err(why),
                None => kept.push(pair),
            },
        }
    }
    let tls = settings(mode, rootcert.as_deref())?;
    let mut rest = head.to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, tls))
}

fn ssl_mode(value: &str) -> Result<SslMode, &'static str> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "allow" => {
            return Err(
                "sslmode=allow is not supported (it tries without TLS first); use \
                 prefer, require, verify-ca or verify-full, or disable",
            )
        }
        _ => return Err("sslmode must be disable, prefer, require, verify-ca or verify-full"),
    })
}

/// The settings `sslmode` (if given) and `sslrootcert` (if given) make together.
fn settings(mode: Option<SslMode>, rootcert: Option<&str>) -> Result<Tls, &'static str> {
    let roots = match rootcert {
        None => None,
        Some("") => return Err("sslrootcert is empty; name a file of PEM certificates, or system"),
        Some("system") => Some(Roots::System),
        Some(path) => Some(Roots::File(PathBuf::from(path))),
    };
    let mode = match (mode, &roots) {
        (None, Some(Roots::System)) => SslMode::VerifyFull,
        (Some(mode), Some(Roots::System)) if mode != SslMode::VerifyFull => {
            return Err(
                "sslrootcert=system needs sslmode=verify-full: the system's roots vouch for \
                 anyone's names, so only a check of the host name proves the server",
            )
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    let verify = match (mode, roots) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Verify::Nothing,
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
            Verify::Chain(roots)
        }
        (SslMode::VerifyCa, None) => {
            return Err(
                "sslmode=verify-ca needs sslrootcert (the file of the CA that signs the \
                 server's certificate); against the system's roots use verify-full",
            )
        }
        (SslMode::VerifyFull, roots) => Verify::Full(roots.unwrap_or(Roots::System)),
    };
    Ok(Tls { mode, verify })
}

/// The ALPN name PostgreSQL 17 asks for with `sslnegotiation=direct` (older servers ignore it).
const ALPN: &[u8] = b"postgresql";

/// The connector for `tls`, with its roots loaded now.
///
/// # Errors
///
/// [`Error::Io`] when the `sslrootcert` file cannot be read, [`Error::InvalidInput`] when it
/// holds no usable certificate or the system has no trusted roots.
pub(crate) fn connector(tls: &Tls) -> Result<Connector, Error> {
    // rustls 0.23.48 deprecates ring's provider because it has no post-quantum key exchange.
    // The provider that has one (aws-lc-rs) builds a large C library whose build script looks
    // for a system OpenSSL or AWS-LC first: the kind of system dependency this engine avoids.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match &tls.verify {
        Verify::Nothing => Arc::new(ServerCheck {
            roots: None,
            algorithms,
        }),
        Verify::Chain(roots) => Arc::new(ServerCheck {
            roots: Some(load(roots)?),
            algorithms,
        }),
        Verify::Full(roots) => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(load(roots)?), provider.clone())
                .build()
                .map_err(|e| Error::Storage(StorageError::new(e)))?
        }
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Storage(StorageError::new(e)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots, read now.
fn load(roots: &Roots) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| {
                    Error::invalid(
                        "database URL",
                        "the sslrootcert file is not a file of PEM certificates",
                    )
                })?;
                store.add(cert).map_err(|_| {
                    Error::invalid(
                        "database URL",
                        "the sslrootcert file holds a certificate that cannot be a trusted root",
                    )
                })?;
            }
            if store.is_empty() {
                return Err(Error::invalid(
                    "database URL",
                    "the sslrootcert file holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
        Roots::System => {
            // Certificates the system store holds but rustls cannot use are skipped, as
            // every program that reads the store does.
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(Error::invalid(
                    "database URL",
                    "sslmode=verify-full checks the server against the system's trusted roots \
                     when sslrootcert names no file, and none were found (install the system's \
                     CA certificates, set SSL_CERT_FILE, or name the CA's file in sslrootcert)",
                ));
            }
        }
    }
    Ok(store)
}

/// The server-certificate check of `prefer`, `require` and `verify-ca`: the chain to `roots`
/// when there are roots, nothing when there are none (libpq's `require` without
/// `sslrootcert`: encrypted, not authenticated). The handshake's signatures are always checked
/// against the certificate presented, so the connection is encrypted to its key either way.
#[derive(Debug)]
struct ServerCheck {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The driver's text for a server that answered the TLS request with "no".
const NO_TLS: &str = "server does not support TLS";

/// Why a connection failed in TLS, when it did: a certificate refused, a handshake the server
/// or rustls broke off, or a server without TLS where `sslmode` requires it. `None` for any
/// other failure, including a socket lost in the middle of a handshake (that is the server
/// being unavailable, not TLS refusing it).
pub(crate) fn failure(e: &postgres::Error) -> Option<&'static str> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or(s, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(e) = inner.downcast_ref::<rustls::Error>() {
            return Some(reason(e));
        }
        if inner
            .downcast_ref::<rustls::pki_types::InvalidDnsNameError>()
            .is_some()
        {
            return Some("the URL's host is not a name TLS can check");
        }
        if inner.to_string() == NO_TLS {
            return Some("the server does not offer TLS, and sslmode requires it");
        }
        source = s.source();
    }
    None
}

fn reason(e: &rustls::Error) -> &'static str {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate does not name the URL's host (sslmode=verify-full)"
            }
            C::UnknownIssuer | C::BadSignature => {
                "the server's certificate is not signed by a trusted root (sslrootcert, or the \
                 system's roots)"
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "the server's certificate has expired or is not valid yet"
            }
            _ => "the server's certificate was refused",
        },
        rustls::Error::AlertReceived(_) => "the server broke off the TLS handshake",
        _ => "the TLS handshake failed",
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
