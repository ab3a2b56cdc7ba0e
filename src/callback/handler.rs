//! The framework-neutral callback handler: a query string and a `Host` in, a status, headers
//! and page out — the loopback listener's own answer, for a web app's route.

use url::Url;

use super::pages::{self, Response};
use super::params::{self, Outcome, Params};
use crate::error::{Error, Result};
use crate::flow::row::CallbackResult;
use crate::flow::rules::Expectations;
use crate::flow::FlowInfo;
use crate::store::Store;

/// What to send the browser: the status, the headers (the listener's security headers among
/// them) and the HTML page. The framework adds `Content-Length` and its connection headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResponse {
    /// The HTTP status (200 recorded; 400 malformed; 404 unknown; 409 used; 410 expired; 421
    /// wrong `Host`; 503 busy, retry).
    pub status: u16,
    /// The headers, in order: `Content-Type`, `Cache-Control: no-store`, `Referrer-Policy`,
    /// `Content-Security-Policy`, `X-Content-Type-Options`, `X-Frame-Options`, then any
    /// `Retry-After`.
    pub headers: Vec<(&'static str, String)>,
    /// The page.
    pub body: String,
    /// Whether this callback was recorded on its flow (a code or an error).
    pub recorded: bool,
}

impl From<Response> for CallbackResponse {
    fn from(r: Response) -> Self {
        CallbackResponse {
            status: r.status,
            headers: pages::headers(&r),
            body: r.body,
            recorded: r.recorded,
        }
    }
}

/// A web app's callback route: the flows it serves name `redirect_uri` (scheme, host, port
/// and path must match, see [`Store::deliver`]), and a request must be addressed to its host.
///
/// ```
/// use oauth_state_store::{CallbackHandler, Store};
/// let store = Store::open_in_memory()?;
/// let handler = CallbackHandler::new("https://app.example/oauth/callback")?;
/// let page = handler.handle(&store, "state=unknown-state-value-0123456789abcdef&code=x",
///                           Some("app.example"));
/// assert_eq!(page.status, 404);
/// assert!(!page.recorded);
/// # Ok::<(), oauth_state_store::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CallbackHandler {
    redirect_uri: Url,
}

impl CallbackHandler {
    /// A handler for the route at `redirect_uri` (the flows' redirect URI, without a query).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`redirect_uri`) unless it is an absolute `http` or `https`
    /// URL with a host and without a query or fragment.
    pub fn new(redirect_uri: &str) -> Result<Self> {
        let url = Url::parse(redirect_uri)
            .map_err(|_| Error::invalid("redirect_uri", "is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::invalid(
                "redirect_uri",
                "must be http or https with a host",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid(
                "redirect_uri",
                "must not have a query or fragment",
            ));
        }
        Ok(CallbackHandler { redirect_uri: url })
    }

    /// Answers one `GET` of the callback route: `query` is the raw query string (without
    /// `?`), `host` the request's `Host` header. The callback goes through the same rule as
    /// the loopback listener's and [`Store::deliver`]'s; the page is the listener's page for
    /// the same outcome. Never panics; a malformed request changes nothing.
    pub fn handle(&self, store: &Store, query: &str, host: Option<&str>) -> CallbackResponse {
        let Some(host) = host else {
            return pages::plain(400, "The request has no Host header.").into();
        };
        if !self.host_matches(host) {
            return pages::plain(
                421,
                "This route only answers requests addressed to its host.",
            )
            .into();
        }
        let expect = Place::Url(&self.redirect_uri);
        answer(store, params::parse_query(query), expect).into()
    }

    /// The same, for parameters a framework already decoded (`(name, value)` pairs).
    pub fn handle_pairs<K, V>(
        &self,
        store: &Store,
        pairs: impl IntoIterator<Item = (K, V)>,
        host: Option<&str>,
    ) -> CallbackResponse
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let Some(host) = host else {
            return pages::plain(400, "The request has no Host header.").into();
        };
        if !self.host_matches(host) {
            return pages::plain(
                421,
                "This route only answers requests addressed to its host.",
            )
            .into();
        }
        answer(
            store,
            params::from_pairs(pairs),
            Place::Url(&self.redirect_uri),
        )
        .into()
    }

    /// `host` names the route's host and port (its default port may be left out).
    fn host_matches(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()),
            _ => (host, self.redirect_uri.port_or_known_default()),
        };
        let want = self.redirect_uri.host_str().unwrap_or_default();
        name.eq_ignore_ascii_case(want) && port == self.redirect_uri.port_or_known_default()
    }
}

/// Where a callback arrived.
#[derive(Clone, Copy)]
pub(crate) enum Place<'a> {
    /// A loopback listener's port and path.
    #[cfg_attr(not(feature = "listener"), allow(dead_code))]
    Loopback(u16, &'a str),
    /// A URL (a web app's route, a pasted address): scheme, host, port, path.
    Url(&'a Url),
}

/// The answer to a callback: recorded through `Store::record_callback`, or refused, as a page.
pub(crate) fn answer(
    store: &Store,
    parsed: std::result::Result<Params, params::Malformed>,
    at: Place<'_>,
) -> Response {
    let params = match parsed {
        Ok(p) => p,
        Err(m) => return m.page(),
    };
    let (recorded, page) = record(store, &params, at);
    match recorded {
        // A recorded callback's page says so (`Response::recorded`).
        Ok(_) => page,
        Err(e) => page_for_refusal(&e),
    }
}

/// Records `params` and returns the result with the page a success would show.
pub(crate) fn record(
    store: &Store,
    params: &Params,
    at: Place<'_>,
) -> (Result<FlowInfo>, Response) {
    let mut expect = Expectations {
        iss: params.iss.as_deref(),
        ..Expectations::default()
    };
    match at {
        Place::Loopback(port, path) => expect.arrived_at = Some((port, path)),
        Place::Url(url) => expect.delivered_to = Some(url),
    }
    let state = params.state.as_str();
    match &params.outcome {
        Outcome::Code(code) => (
            store.record_callback(state, CallbackResult::Code(code), &expect),
            pages::completed(),
        ),
        Outcome::Error(error) => {
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
        Outcome::Neither => (
            Err(params::Malformed::Neither.error()),
            params::Malformed::Neither.page(),
        ),
    }
}

/// The page for a callback the store refused.
pub(crate) fn page_for_refusal(e: &Error) -> Response {
    match e {
        Error::ServerMismatch {
            field: "redirect_uri",
        } => pages::bad_request(
            "Wrong callback address",
            "This login expects its callback at another address than this one; the callback \
             was not used.",
        ),
        Error::ServerMismatch { field: "iss" } => pages::bad_request(
            "Wrong authorization server",
            "The callback says it comes from another authorization server than the one this \
             login was started with (a possible mix-up attack); the callback was not used.",
        ),
        e => pages::for_error(e),
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
