//! The small self-contained pages the browser sees, one for each outcome.
//!
//! No external resources; every value that came from the request is HTML-escaped; the
//! headers forbid caching, referrers, framing and everything but the page's own style.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// A response, ready to be written.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub extra: Vec<(&'static str, String)>,
    pub body: String,
    /// This answers a callback that was recorded on its flow: once it is written, the
    /// process's waits are woken.
    pub recorded: bool,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fafafa}h1{font-size:1.4rem}\
code{background:#eee;padding:0 .2rem;word-break:break-all}.note{color:#555;font-size:.9rem}";

/// `Content-Security-Policy` allowing nothing but the page's own inline style, by its hash.
pub(crate) fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        let mut csp = String::from("default-src 'none'; style-src 'sha256-");
        csp.push_str(&hash);
        csp.push_str("'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        csp
    })
}

/// The headers every answer carries, then the response's own (`Retry-After`, `Allow`): no
/// caching, no referrer, no framing, no sniffing, nothing but the page's own style.
pub(crate) fn headers(r: &Response) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("Content-Type", r.content_type.to_owned()),
        ("Cache-Control", "no-store".to_owned()),
        ("Referrer-Policy", "no-referrer".to_owned()),
        (
            "Content-Security-Policy",
            content_security_policy().to_owned(),
        ),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
    ];
    out.extend(r.extra.iter().cloned());
    out
}

/// Escapes the five HTML-significant characters.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page. `title` and `paragraphs` are trusted constant text or already escaped.
fn page(status: u16, title: &str, paragraphs: &[&str]) -> Response {
    let mut body = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>",
    );
    body.push_str(title);
    body.push_str("</title><style>");
    body.push_str(STYLE);
    body.push_str("</style></head><body><h1>");
    body.push_str(title);
    body.push_str("</h1>\n");
    for p in paragraphs {
        body.push_str("<p>");
        body.push_str(p);
        body.push_str("</p>\n");
    }
    body.push_str("</body></html>\n");
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        extra: Vec::new(),
        body,
        recorded: false,
    }
}

/// The code was recorded: the login continues in the application.
pub(crate) fn completed() -> Response {
    let mut r = page(
        200,
        "Login complete",
        &[
            "The application received the authorization. You can close this tab.",
            "<span class=\"note\">The application that started the login finishes it now.</span>",
        ],
    );
    r.recorded = true;
    r
}

/// The authorization server refused the login; its error is shown, escaped.
pub(crate) fn refused(
    error: &str,
    description: Option<&str>,
    description_dropped: bool,
) -> Response {
    let mut code = String::from("The authorization server refused the login: <code>");
    code.push_str(&escape(error));
    code.push_str("</code>");
    let desc = description.map(|d| {
        let mut s = String::from("It said: <q>");
        s.push_str(&escape(d));
        s.push_str("</q>");
        s
    });
    let mut paragraphs = vec![code.as_str()];
    if let Some(d) = &desc {
        paragraphs.push(d);
    }
    if description_dropped {
        paragraphs.push(
            "Its error description contained characters OAuth does not allow and is not shown.",
        );
    }
    paragraphs.push(
        "The application has been told. You can close this tab and start the login again there.",
    );
    let mut r = page(200, "Login refused", &paragraphs);
    r.recorded = true;
    r
}

/// The answer for a store error, each with its own status.
pub(crate) fn for_error(e: &Error) -> Response {
    match e {
        Error::UnknownState => page(
            404,
            "Unknown login",
            &[
                "This callback names a login that this computer does not know: it was never \
                 started with this application's store, or it expired and was cleaned up.",
                "If you did not just start a login, close this tab: someone may have sent you \
                 this link to sign you in to their account (a potential CSRF attack). Nothing \
                 was recorded.",
            ],
        ),
        Error::Expired => page(
            410,
            "Login expired",
            &[
                "This login took too long and has expired. Start the login again in the \
               application.",
            ],
        ),
        Error::AlreadyConsumed => page(
            409,
            "Callback already used",
            &[
                "This callback was already used: the login it belongs to has finished. \
                 Nothing more to do; you can close this tab.",
                "<span class=\"note\">You may have reloaded the page or opened the link \
                 twice.</span>",
            ],
        ),
        Error::FlowEnded { .. } => page(
            409,
            "Login ended",
            &[
                "This login was ended before this callback arrived, without signing you in. \
                 Start the login again in the application.",
            ],
        ),
        Error::AlreadyCompleted => page(
            409,
            "Callback already received",
            &[
                "This login already received its callback; this repeated one was ignored. You can \
               close this tab.",
            ],
        ),
        Error::InvalidInput { field, reason } => {
            let mut s = String::from("The callback's <code>");
            s.push_str(&escape(field));
            s.push_str("</code> ");
            s.push_str(&escape(reason));
            s.push('.');
            bad_request("Malformed callback", &s)
        }
        Error::Busy { .. } => {
            let mut r = page(
                503,
                "Try again",
                &[
                    "The application's login store is busy. Reload this page in a moment; the \
                   login is not lost.",
                ],
            );
            r.extra.push(("Retry-After", "1".to_owned()));
            r
        }
        other => {
            let mut s = String::from("The application could not record this callback: ");
            s.push_str(&escape(&other.to_string()));
            page(
                500,
                "Login could not be recorded",
                &[&s, "Reload this page to retry, or start the login again."],
            )
        }
    }
}

/// `400` with a reason (trusted text or escaped).
pub(crate) fn bad_request(title: &str, reason: &str) -> Response {
    page(400, title, &[reason, "Nothing was recorded."])
}

/// A plain-text status answer for requests that are not callbacks.
pub(crate) fn plain(status: u16, text: &str) -> Response {
    let mut body = String::from(text);
    body.push('\n');
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        extra: Vec::new(),
        body,
        recorded: false,
    }
}

/// `503` when every connection slot is busy answering. It names the listener the way the
/// probe's answer does, so that a probe that lands here still learns who holds the port.
#[cfg_attr(not(feature = "listener"), allow(dead_code))]
pub(crate) fn busy(probe_body: &str) -> Response {
    let mut text = String::from(probe_body);
    text.push_str("\nToo many connections at once; retry.");
    let mut r = plain(503, &text);
    r.extra.push(("Retry-After", "1".to_owned()));
    r
}

/// The reason phrase of the statuses used here.
#[cfg_attr(not(feature = "listener"), allow(dead_code))]
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn csrf_words_only_on_unknown_state() {
        let unknown = for_error(&Error::UnknownState);
        assert_eq!(unknown.status, 404);
        assert!(unknown.body.contains("potential CSRF attack"));
        for e in [
            Error::Expired,
            Error::AlreadyConsumed,
            Error::AlreadyCompleted,
        ] {
            let r = for_error(&e);
            assert!(!r.body.contains("CSRF"), "{e:?}");
        }
        assert_eq!(for_error(&Error::Expired).status, 410);
        assert_eq!(for_error(&Error::AlreadyConsumed).status, 409);
    }

    #[test]
    fn csp_names_the_style_hash() {
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!csp.contains("unsafe"));
    }
}
