//! What the listener answers: routing a request head, and the callback itself — validated
//! against the shared file, recorded on the row, answered with the page for its outcome.

use super::http::Head;
use super::options::ListenerOptions;
use super::probe::{self, PROBE_PATH};
use crate::callback;
use crate::callback::pages::{self, Response};
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
        return pages::plain(200, &probe::probe_body(store.store_id()));
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

fn callback(store: &Store, port: u16, options: &ListenerOptions, query: &str) -> Response {
    let at = callback::Place::Loopback(port, &options.path);
    callback::answer(store, callback::parse_query(query), at)
}
