//! `Store`: each method converts its arguments, runs the core call off the JavaScript thread,
//! and converts the answer. No rule lives here.

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi_derive::napi;
use oauth_state_store as core;
use oauth_state_store::InvalidateScope;

use crate::error::to_js;
use crate::options::{invalid, OpenOptions, PromoteOptions};
use crate::run::{short, Job};
use crate::values::{BeginOptions, ConsumedFlow, Flow, FlowInfo, Stats, SweepReport};

/// A shared flow store file (the core's `Store`). Cheap to share; every call returns a Promise.
#[napi]
pub struct Store {
    pub(crate) inner: core::Store,
}

/// Runs a core call on a clone of the store, off the JavaScript thread, mapping its value.
fn run<T, U>(
    store: &core::Store,
    work: impl 'static + Send + FnOnce(&core::Store) -> core::Result<T>,
    map: impl 'static + Send + FnOnce(T) -> U,
) -> AsyncTask<Job<U>>
where
    U: 'static + Send + ToNapiValue + TypeName,
{
    let store = store.clone();
    short(move || work(&store).map(map).map_err(|e| to_js(&e)))
}

#[napi]
impl Store {
    /// Opens (creating it 0600 if missing) the store file at `path`.
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn open(path: String, options: Option<OpenOptions>) -> napi::Result<AsyncTask<Job<Store>>> {
        let options = options.unwrap_or_default().to_core()?;
        Ok(short(move || {
            options
                .open(path)
                .map(|inner| Store { inner })
                .map_err(|e| to_js(&e))
        }))
    }

    /// Opens (or creates) the store at the command line's default path: `$OAUTH_STATE_DB`,
    /// else `$XDG_STATE_HOME/oauth-state-store/flows.db`, else
    /// `~/.local/state/oauth-state-store/flows.db`, its missing directory created 0700.
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn open_default(options: Option<OpenOptions>) -> napi::Result<AsyncTask<Job<Store>>> {
        let options = options.unwrap_or_default().to_core()?;
        Ok(short(move || {
            options
                .open_default()
                .map(|inner| Store { inner })
                .map_err(|e| to_js(&e))
        }))
    }

    /// The file's path (`None` for a PostgreSQL store).
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.inner.path().map(|p| p.to_string_lossy().into_owned())
    }

    /// The file's random id (the same in every process that opens it).
    #[napi(getter)]
    pub fn store_id(&self) -> String {
        self.inner.store_id().to_owned()
    }

    /// Begins a `pending` flow with a generated state and S256 PKCE pair.
    #[napi(ts_return_type = "Promise<Flow>")]
    pub fn begin(&self, options: BeginOptions) -> AsyncTask<Job<Flow>> {
        let request = options.to_core();
        run(&self.inner, move |s| s.begin(request), Flow::from)
    }

    /// The SDK path: saves an `unbound` verifier before the state is known; returns its
    /// S256 challenge.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn save_code_verifier(
        &self,
        server_id: String,
        client_id: Option<String>,
        verifier: String,
    ) -> AsyncTask<Job<String>> {
        run(
            &self.inner,
            move |s| s.save_code_verifier(&server_id, client_id.as_deref(), &verifier),
            |c| c.as_str().to_owned(),
        )
    }

    /// Binds a saved verifier to the `state` of the authorization URL built from it, and
    /// records what `options` carries on the flow: the authorization server's `issuer`
    /// (required in the callback with `requireIssuer`) and the SDK's `discovery` state.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn promote(
        &self,
        server_id: String,
        client_id: Option<String>,
        authorization_url: String,
        options: Option<PromoteOptions>,
    ) -> AsyncTask<Job<FlowInfo>> {
        let promotion = options.unwrap_or_default().into_core();
        run(
            &self.inner,
            move |s| {
                s.promote_with(
                    &server_id,
                    client_id.as_deref(),
                    &authorization_url,
                    &promotion,
                )
            },
            |i| FlowInfo::from(&i),
        )
    }

    /// Would `consume` succeed now? Does not consume.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn check(&self, state: String) -> AsyncTask<Job<FlowInfo>> {
        run(&self.inner, move |s| s.check(&state), |i| (&i).into())
    }

    /// Consumes the flow `state` names, exactly once across all processes.
    #[napi(ts_return_type = "Promise<ConsumedFlow>")]
    pub fn consume(&self, state: String) -> AsyncTask<Job<ConsumedFlow>> {
        run(&self.inner, move |s| s.consume(&state), ConsumedFlow::from)
    }

    /// `consume`, only for a flow begun for `serverId` (another server's flow is ended).
    #[napi(ts_return_type = "Promise<ConsumedFlow>")]
    pub fn consume_for(&self, state: String, server_id: String) -> AsyncTask<Job<ConsumedFlow>> {
        run(
            &self.inner,
            move |s| s.consume_for(&state, &server_id),
            ConsumedFlow::from,
        )
    }

    /// Records the `code` a callback delivered (`completed`), for the beginner to consume.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn complete(&self, state: String, code: String) -> AsyncTask<Job<FlowInfo>> {
        run(
            &self.inner,
            move |s| s.complete(&state, &code),
            |i| (&i).into(),
        )
    }

    /// Ends a pending flow as `failed` with the error a callback delivered.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn reject(
        &self,
        state: String,
        error: String,
        description: Option<String>,
    ) -> AsyncTask<Job<FlowInfo>> {
        run(
            &self.inner,
            move |s| s.reject(&state, &error, description.as_deref()),
            |i| (&i).into(),
        )
    }

    /// The verifier of the one live bound flow of this server and client (not consumed).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn pending_verifier(
        &self,
        server_id: String,
        client_id: Option<String>,
    ) -> AsyncTask<Job<String>> {
        run(
            &self.inner,
            move |s| s.pending_verifier(&server_id, client_id.as_deref()),
            |v| v.secret().to_owned(),
        )
    }

    /// The SDK's finish without the state: consumes the one live flow of this server and
    /// client, exactly once across processes (several: `AMBIGUOUS_PENDING_VERIFIER`).
    #[napi(ts_return_type = "Promise<ConsumedFlow>")]
    pub fn consume_pending(
        &self,
        server_id: String,
        client_id: Option<String>,
    ) -> AsyncTask<Job<ConsumedFlow>> {
        run(
            &self.inner,
            move |s| s.consume_pending(&server_id, client_id.as_deref()),
            ConsumedFlow::from,
        )
    }

    /// The discovery state of the flow `consumePending` would take now, not consumed.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn pending_discovery(
        &self,
        server_id: String,
        client_id: Option<String>,
    ) -> AsyncTask<Job<Option<String>>> {
        run(
            &self.inner,
            move |s| s.pending_discovery(&server_id, client_id.as_deref()),
            |d| d,
        )
    }

    /// Deletes a server's (and client's) flows: `scope` is `"unbound"`, `"live"` or `"all"`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn invalidate(
        &self,
        server_id: String,
        client_id: Option<String>,
        scope: String,
    ) -> napi::Result<AsyncTask<Job<i64>>> {
        let scope = match scope.as_str() {
            "unbound" => InvalidateScope::Unbound,
            "live" => InvalidateScope::Live,
            "all" => InvalidateScope::All,
            _ => return Err(invalid("scope", "must be \"unbound\", \"live\" or \"all\"")),
        };
        Ok(run(
            &self.inner,
            move |s| s.invalidate(&server_id, client_id.as_deref(), scope),
            |n| i64::try_from(n).unwrap_or(i64::MAX),
        ))
    }

    /// Deletes every expired row, in short batches.
    #[napi(ts_return_type = "Promise<SweepReport>")]
    pub fn sweep(&self) -> AsyncTask<Job<SweepReport>> {
        run(&self.inner, |s| s.sweep(), SweepReport::from)
    }

    /// Row counts by status, and expiries.
    #[napi(ts_return_type = "Promise<Stats>")]
    pub fn stats(&self) -> AsyncTask<Job<Stats>> {
        run(&self.inner, |s| s.stats(), Stats::from)
    }
}

/// A fresh `state` from the core's generator (32 random bytes, base64url), for a wrapper that
/// must hand the SDK a state before any flow exists.
#[napi]
pub fn generate_state() -> String {
    core::State::generate().secret().to_owned()
}
