//! `sslmode` and `sslrootcert` as the URL gives them: what each combination means, what is
//! refused, and the URL the driver is handed. The connections themselves are tested against a
//! server with a CA of its own in `tests/postgres_tls.rs`.

use super::*;

fn tls_of(url: &str) -> Tls {
    split(url).unwrap_or_else(|e| panic!("{url}: {e}")).1
}

fn file(path: &str) -> Roots {
    Roots::File(PathBuf::from(path))
}

#[test]
fn each_sslmode_means_what_it_means_to_libpq() {
    let cases = [
        ("", SslMode::Prefer, Verify::Nothing),
        ("?sslmode=disable", SslMode::Disable, Verify::Nothing),
        ("?sslmode=prefer", SslMode::Prefer, Verify::Nothing),
        ("?sslmode=require", SslMode::Require, Verify::Nothing),
        (
            "?sslmode=verify-full",
            SslMode::VerifyFull,
            Verify::Full(Roots::System),
        ),
        // With a CA file, prefer and require check the chain, as libpq does.
        (
            "?sslmode=prefer&sslrootcert=/ca.pem",
            SslMode::Prefer,
            Verify::Chain(file("/ca.pem")),
        ),
        (
            "?sslmode=require&sslrootcert=/ca.pem",
            SslMode::Require,
            Verify::Chain(file("/ca.pem")),
        ),
        (
            "?sslrootcert=/ca.pem",
            SslMode::Prefer,
            Verify::Chain(file("/ca.pem")),
        ),
        (
            "?sslmode=verify-ca&sslrootcert=/ca.pem",
            SslMode::VerifyCa,
            Verify::Chain(file("/ca.pem")),
        ),
        (
            "?sslrootcert=ca.pem&sslmode=verify-full",
            SslMode::VerifyFull,
            Verify::Full(file("ca.pem")),
        ),
        // A CA file is not looked at when TLS is off.
        (
            "?sslmode=disable&sslrootcert=/ca.pem",
            SslMode::Disable,
            Verify::Nothing,
        ),
        // libpq 16: the system's roots, and so verify-full unless said otherwise.
        (
            "?sslrootcert=system",
            SslMode::VerifyFull,
            Verify::Full(Roots::System),
        ),
        (
            "?sslrootcert=system&sslmode=verify-full",
            SslMode::VerifyFull,
            Verify::Full(Roots::System),
        ),
        // The last one wins, as in the driver.
        (
            "?sslmode=disable&sslmode=require",
            SslMode::Require,
            Verify::Nothing,
        ),
        // Percent-encoded keys and values are decoded as the driver decodes its own.
        (
            "?ssl%6Dode=verify%2Dfull&sslrootcert=%2Fetc%2Fmy%20ca.pem",
            SslMode::VerifyFull,
            Verify::Full(file("/etc/my ca.pem")),
        ),
    ];
    for (query, mode, verify) in cases {
        let url = format!("postgresql://u:pw@db.example:5432/app{query}");
        assert_eq!(tls_of(&url), Tls { mode, verify }, "{url}");
    }
}

#[test]
fn the_driver_gets_its_own_mode_and_never_a_weaker_one() {
    for (mode, driver) in [
        ("disable", DriverSslMode::Disable),
        ("prefer", DriverSslMode::Prefer),
        ("require", DriverSslMode::Require),
        ("verify-full", DriverSslMode::Require),
    ] {
        let url = format!("postgres://h/db?sslmode={mode}");
        assert_eq!(tls_of(&url).driver_mode(), driver, "{mode}");
    }
    let url = "postgres://h/db?sslmode=verify-ca&sslrootcert=/ca.pem";
    assert_eq!(tls_of(url).driver_mode(), DriverSslMode::Require);
}

#[test]
fn the_driver_gets_the_url_without_the_tls_parameters() {
    for (url, rest) in [
        ("postgres://h/db", "postgres://h/db"),
        ("postgres://h/db?sslmode=require", "postgres://h/db"),
        (
            "postgres://u:p@h:1/db?connect_timeout=3&sslmode=verify-full&sslrootcert=/c.pem&application_name=a",
            "postgres://u:p@h:1/db?connect_timeout=3&application_name=a",
        ),
        // A `?` in the password is not the query, as for the driver.
        (
            "postgres://u:p?w@h/db?sslmode=disable&options=-c%20x%3Dy",
            "postgres://u:p?w@h/db?options=-c%20x%3Dy",
        ),
        // Parameters the driver will refuse are left for it to refuse.
        ("postgres://h/db?bogus&sslmode=require", "postgres://h/db?bogus"),
    ] {
        assert_eq!(split(url).unwrap().0, rest, "{url}");
    }
}

#[test]
fn modes_and_parameters_not_supported_are_refused_by_name() {
    let refused = [
        ("sslmode=allow", "sslmode=allow is not supported"),
        ("sslmode=verify_full", "sslmode must be"),
        ("sslmode=VERIFY-FULL", "sslmode must be"),
        ("sslmode=", "sslmode must be"),
        ("sslmode=verify-ca", "sslmode=verify-ca needs sslrootcert"),
        ("sslrootcert=", "sslrootcert is empty"),
        (
            "sslrootcert=system&sslmode=require",
            "sslrootcert=system needs sslmode=verify-full",
        ),
        (
            "sslrootcert=system&sslmode=verify-ca",
            "sslrootcert=system needs sslmode=verify-full",
        ),
        (
            "sslrootcert=system&sslmode=disable",
            "sslrootcert=system needs sslmode=verify-full",
        ),
        ("sslcert=/c.pem", "sslcert (a client certificate)"),
        ("sslkey=/k.pem", "sslkey"),
        ("sslpassword=hunter2", "sslpassword"),
        ("sslcrl=/crl.pem", "sslcrl"),
        ("sslsni=0", "sslsni"),
        (
            "ssl_min_protocol_version=TLSv1.3",
            "ssl_min_protocol_version",
        ),
        ("requiressl=1", "requiressl"),
        ("sslrootcert=%FF", "sslrootcert is not valid UTF-8"),
        ("sslmode=%FF", "sslmode must be"),
    ];
    for (query, expected) in refused {
        let url = format!("postgres://u:hunter2@h/db?{query}");
        let why = split(&url).map(|_| ()).unwrap_err();
        assert!(why.starts_with(expected), "{query}: {why}");
        assert!(!why.contains("hunter2"), "{query}: {why}");
    }
}

#[test]
fn the_connector_builds_without_roots_and_with_the_systems() {
    for mode in ["disable", "prefer", "require"] {
        let url = format!("postgres://h/db?sslmode={mode}");
        connector(&tls_of(&url)).expect(mode);
    }
    // The system's roots, where the system has them (Debian's ca-certificates).
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        connector(&tls_of("postgres://h/db?sslmode=verify-full")).expect("system roots");
    } else {
        println!("SKIPPED: the system's roots: /etc/ssl/certs/ca-certificates.crt is missing");
    }
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let url = format!(
        "postgres://h/db?sslmode=verify-full&sslrootcert={}",
        missing.display()
    );
    match connector(&tls_of(&url)) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    for (text, expected) in [
        ("not a certificate\n", "holds no PEM certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "is not a file of PEM certificates",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "holds a certificate that cannot be a trusted root",
        ),
    ] {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        let url = format!(
            "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
            path.display()
        );
        match connector(&tls_of(&url)) {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "database URL");
                assert!(reason.contains(expected), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {:?}", other.map(|_| ())),
        }
    }
}
