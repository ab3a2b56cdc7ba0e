//! What the listener answers: routing a request head, and the callback itself — validated
//! against the shared file, recorded on the row, answered with the page for its outcome.

use super::http::Head;
use super::pages::{self, Response};
use super::port::{self, PROBE_PATH};
use super::wait;
use super::ListenerOptions;
use crate::backend::CallbackResult;
use crate::error::Error;
use crate::flow::rules::Expectations;
use crate::store::Store;

/// Everything but a well-formed callback is answered without touching the store.
pub(super) fn route(store: &Store, port: u16, options: &ListenerOptions, head: &Head) -> Response {
    let (path, query) = match head.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (head.target.as_str(), ""),
    };
    let is_probe = path == PROBE_PATH;
    if path != options.path && !is_probe {
        return pages::plain(404, "Not found.");
    }
    if head.method != "GET" {
        let mut r = pages::plain(405, "Only GET is served here.");
        r.extra.push(("Allow", "GET".to_owned()));
        return r;
    }
    let Some(host) = head.host.as_deref() else {
        return pages::plain(400, "The request has no Host header.");
    };
    if !host_is_ours(host, port) {
        return pages::plain(
            421,
            "This listener only answers requests addressed to 127.0.0.1 or localhost.",
        );
    }
    if head.has_body {
        return pages::plain(400, "A callback has no request body.");
    }
    if is_probe {
        return pages::plain(200, &port::probe_body(store.store_id()));
    }
    callback(store, port, options, query)
}

/// `127.0.0.1:<port>` or `localhost:<port>` (any case).
fn host_is_ours(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")) && p == port.to_string()
}

/// The callback's parameters; each may appear at most once.
#[derive(Default)]
struct Params {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

fn parse_params(query: &str) -> std::result::Result<Params, &'static str> {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let (slot, name) = match k.as_ref() {
            "state" => (&mut p.state, "state"),
            "code" => (&mut p.code, "code"),
            "error" => (&mut p.error, "error"),
            "error_description" => (&mut p.error_description, "error_description"),
            "iss" => (&mut p.iss, "iss"),
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(name);
        }
    }
    Ok(p)
}

fn callback(store: &Store, port: u16, options: &ListenerOptions, query: &str) -> Response {
    let params = match parse_params(query) {
        Ok(p) => p,
        Err(name) => {
            let mut s = String::from("The parameter <code>");
            s.push_str(name);
            s.push_str("</code> appears more than once.");
            return pages::bad_request("Malformed callback", &s);
        }
    };
    let Some(state) = params.state.as_deref() else {
        return pages::bad_request(
            "Malformed callback",
            "The callback has no <code>state</code> parameter, so it cannot be matched to a \
             login.",
        );
    };
    let result = match (params.code.as_deref(), params.error.as_deref()) {
        (Some(_), Some(_)) => {
            return pages::bad_request(
                "Malformed callback",
                "The callback carries both a <code>code</code> and an <code>error</code>.",
            )
        }
        (None, None) => {
            return pages::bad_request(
                "Malformed callback",
                "The callback carries neither a <code>code</code> nor an <code>error</code>.",
            )
        }
        (code, error) => (code, error),
    };
    let expect = Expectations {
        arrived_at: Some((port, &options.path)),
        iss: params.iss.as_deref(),
    };
    let (recorded, page) = match result {
        (Some(code), _) => (
            store.record_callback(state, CallbackResult::Code(code), &expect),
            pages::completed(),
        ),
        (None, error) => {
            // Exactly one of the two is present (checked above).
            let error = error.unwrap_or_default();
            let desc = params.error_description.as_deref();
            let desc_ok = desc.is_some_and(store_accepts_description);
            let kept = if desc_ok { desc } else { None };
            let result = CallbackResult::Error {
                error,
                description: kept,
            };
            (
                store.record_callback(state, result, &expect),
                pages::refused(error, kept, desc.is_some() && !desc_ok),
            )
        }
    };
    match recorded {
        Ok(_) => {
            wait::notify_recorded();
            page
        }
        Err(Error::ServerMismatch {
            field: "redirect_uri",
        }) => pages::bad_request(
            "Wrong callback address",
            "This login expects its callback at another address than this one; the callback \
             was not used.",
        ),
        Err(Error::ServerMismatch { field: "iss" }) => pages::bad_request(
            "Wrong authorization server",
            "The callback says it comes from another authorization server than the one this \
             login was started with (a possible mix-up attack); the callback was not used.",
        ),
        Err(e) => pages::for_error(&e),
    }
}

/// Whether `reject` would take this description (RFC 6749 characters, at most 1024).
fn store_accepts_description(d: &str) -> bool {
    crate::validate::error_code(
        "error_description",
        d,
        crate::validate::MAX_ERROR_DESCRIPTION_LEN,
    )
    .is_ok()
}
