//! A callback's parameters, from a query string or from pairs a web framework already
//! parsed: `state` with `code` or `error` (and `error_description`, `iss`), each at most once.

use super::pages::{self, Response};
use crate::error::Error;

/// The most bytes a callback query (or a delivered callback URL) may have: the listener's
/// default request size.
pub(crate) const MAX_CALLBACK_BYTES: usize = 8 * 1024;

/// The parameters of a well-formed callback.
#[derive(Default)]
pub(crate) struct Params {
    pub state: String,
    pub outcome: Outcome,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

/// What the authorization server sent: a code or an error.
#[derive(Default)]
pub(crate) enum Outcome {
    /// The authorization code.
    Code(String),
    /// The error code (`access_denied`, ...).
    Error(String),
    /// Only while parsing.
    #[default]
    Neither,
}

/// Why a callback is malformed. Never carries a value from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// A parameter appears more than once.
    Repeated(&'static str),
    /// No `state`.
    NoState,
    /// Both `code` and `error`.
    Both,
    /// Neither `code` nor `error`.
    Neither,
    /// Over [`MAX_CALLBACK_BYTES`].
    TooLong,
}

impl Malformed {
    /// The page the listener (and the handler) answers with.
    pub(crate) fn page(self) -> Response {
        let reason = match self {
            Malformed::Repeated(name) => {
                let mut s = String::from("The parameter <code>");
                s.push_str(name);
                s.push_str("</code> appears more than once.");
                s
            }
            Malformed::NoState => "The callback has no <code>state</code> parameter, so it \
                                   cannot be matched to a login."
                .to_owned(),
            Malformed::Both => {
                "The callback carries both a <code>code</code> and an <code>error</code>."
                    .to_owned()
            }
            Malformed::Neither => {
                "The callback carries neither a <code>code</code> nor an <code>error</code>."
                    .to_owned()
            }
            Malformed::TooLong => "The callback is too long.".to_owned(),
        };
        pages::bad_request("Malformed callback", &reason)
    }

    /// The typed error [`Store::deliver`](crate::Store::deliver) reports.
    pub(crate) fn error(self) -> Error {
        match self {
            Malformed::Repeated(name) => Error::invalid(name, "appears more than once"),
            Malformed::NoState => Error::invalid("state", "is missing"),
            Malformed::Both => Error::invalid("callback", "carries both a code and an error"),
            Malformed::Neither => Error::invalid("callback", "carries neither a code nor an error"),
            Malformed::TooLong => Error::invalid("callback", "is too long"),
        }
    }
}

/// Parses a query string (`state=...&code=...`, without the `?`).
pub(crate) fn parse_query(query: &str) -> Result<Params, Malformed> {
    if query.len() > MAX_CALLBACK_BYTES {
        return Err(Malformed::TooLong);
    }
    from_pairs(url::form_urlencoded::parse(query.as_bytes()))
}

/// Takes the callback's parameters from decoded pairs; other parameters are ignored.
pub(crate) fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Params, Malformed>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (mut state, mut code, mut error) = (None, None, None);
    let (mut desc, mut iss) = (None, None);
    let mut total = 0usize;
    for (k, v) in pairs {
        let (k, v) = (k.as_ref(), v.as_ref());
        total = total.saturating_add(k.len() + v.len() + 2);
        if total > MAX_CALLBACK_BYTES {
            return Err(Malformed::TooLong);
        }
        let (slot, name): (&mut Option<String>, _) = match k {
            "state" => (&mut state, "state"),
            "code" => (&mut code, "code"),
            "error" => (&mut error, "error"),
            "error_description" => (&mut desc, "error_description"),
            "iss" => (&mut iss, "iss"),
            _ => continue,
        };
        if slot.replace(v.to_owned()).is_some() {
            return Err(Malformed::Repeated(name));
        }
    }
    let state = state.ok_or(Malformed::NoState)?;
    let outcome = match (code, error) {
        (Some(_), Some(_)) => return Err(Malformed::Both),
        (None, None) => return Err(Malformed::Neither),
        (Some(c), None) => Outcome::Code(c),
        (None, Some(e)) => Outcome::Error(e),
    };
    Ok(Params {
        state,
        outcome,
        error_description: desc,
        iss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_callbacks_are_named_without_their_values() {
        for (q, want) in [
            ("code=secretcode", Malformed::NoState),
            ("state=s&code=a&code=b", Malformed::Repeated("code")),
            ("state=s&state=t&code=a", Malformed::Repeated("state")),
            ("state=s&code=a&error=x", Malformed::Both),
            ("state=s", Malformed::Neither),
        ] {
            let got = parse_query(q).err();
            assert_eq!(got, Some(want), "{q}");
            let text = want.error().to_string();
            assert!(
                !text.contains("secretcode") && !text.contains("=s"),
                "{text}"
            );
        }
        let long = "state=s&code=".to_owned() + &"a".repeat(MAX_CALLBACK_BYTES);
        assert_eq!(parse_query(&long).err(), Some(Malformed::TooLong));
        let pairs = [("state", "s"), ("code", "c"), ("other", "x"), ("iss", "i")];
        let p = from_pairs(pairs).unwrap();
        assert!(matches!(p.outcome, Outcome::Code(ref c) if c == "c"));
        assert_eq!(p.iss.as_deref(), Some("i"));
    }
}
