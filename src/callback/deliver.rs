//! `Store::deliver`: a callback that reached no listener (the browser on another machine,
//! a web app's own route), handed over as its URL or its parameters.

use url::Url;

use super::handler::{self, Place};
use super::params::{self, MAX_CALLBACK_BYTES};
use crate::error::{Error, Result};
use crate::flow::FlowInfo;
use crate::store::Store;

impl Store {
    /// Records a callback given as the full URL the browser ended on (its address bar when
    /// the redirect to the loopback listener could not connect), exactly as the listener
    /// would have: the same checks, the same transaction, the same errors. A process waiting
    /// on the flow ([`LoopbackCallback::wait`], feature `listener`) then finds it
    /// recorded, as if its own listener had taken the callback.
    ///
    /// The URL must arrive where the flow's redirect URI points: the same scheme, port and
    /// path always, the same host (the loopback names `127.0.0.1`, `[::1]` and `localhost`
    /// count as one). Its query carries `state` with `code` or `error` (and
    /// `error_description`, `iss`), each at most once. An `error` callback is recorded too:
    /// the flow fails and the returned info says [`Status::Failed`](crate::Status::Failed).
    /// No error names the code or the state.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(
    ///     BeginRequest::new("srv").redirect_uri("http://127.0.0.1:33418/callback"),
    /// )?;
    /// let pasted = format!(
    ///     "http://127.0.0.1:33418/callback?code=abc&state={}",
    ///     flow.state().secret()
    /// );
    /// assert_eq!(store.deliver(&pasted)?.status, Status::Completed);
    /// let err = store.deliver("http://127.0.0.1:33418/callback?code=abc").unwrap_err();
    /// assert!(matches!(err, Error::InvalidInput { field: "state", .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`callback_url`: not a URL or too long; `state`: missing;
    /// `callback`: both or neither of `code` and `error`; a parameter repeated; a value the
    /// store refuses), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyCompleted`], [`Error::AlreadyConsumed`], [`Error::ServerMismatch`]
    /// (`redirect_uri`: delivered elsewhere than the flow's redirect URI; `iss`: from another
    /// authorization server), storage errors. A refused callback changes nothing.
    ///
    #[cfg_attr(
        feature = "listener",
        doc = "[`LoopbackCallback::wait`]: crate::LoopbackCallback::wait"
    )]
    #[cfg_attr(
        not(feature = "listener"),
        doc = concat!("[`LoopbackCallback::wait`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html#method.wait")
    )]
    pub fn deliver(&self, callback_url: &str) -> Result<FlowInfo> {
        if callback_url.len() > MAX_CALLBACK_BYTES {
            return Err(Error::invalid("callback_url", "is too long"));
        }
        let mut url = Url::parse(callback_url.trim())
            .map_err(|_| Error::invalid("callback_url", "is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::invalid(
                "callback_url",
                "must be an http or https URL with a host",
            ));
        }
        let query = url.query().unwrap_or_default().to_owned();
        url.set_query(None);
        url.set_fragment(None);
        self.deliver_at(&url, params::parse_query(&query))
    }

    /// The same as [`deliver`](Self::deliver), for a callback whose parameters are already
    /// decoded (`(name, value)` pairs) and which arrived at `redirect_uri` (without query).
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let at = "https://app.example.com/oauth/callback";
    /// let flow = store.begin(BeginRequest::new("srv").redirect_uri(at))?;
    /// let pairs = [("state", flow.state().secret()), ("code", "abc")];
    /// assert_eq!(store.deliver_pairs(at, pairs)?.status, Status::Completed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`deliver`](Self::deliver); [`Error::InvalidInput`] (`redirect_uri`) when it
    /// is not an absolute URL.
    pub fn deliver_pairs<K, V>(
        &self,
        redirect_uri: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FlowInfo>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let url = Url::parse(redirect_uri)
            .map_err(|_| Error::invalid("redirect_uri", "is not an absolute URL"))?;
        self.deliver_at(&url, params::from_pairs(pairs))
    }

    fn deliver_at(
        &self,
        at: &Url,
        parsed: std::result::Result<params::Params, params::Malformed>,
    ) -> Result<FlowInfo> {
        let params = parsed.map_err(params::Malformed::error)?;
        handler::record(self, &params, Place::Url(at)).0
    }
}
