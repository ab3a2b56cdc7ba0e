//! `Store`: each method converts its arguments, runs the core call off the JavaScript thread,
//! and converts the answer. No rule lives here.

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use oauth_state_store as core;
use oauth_state_store::InvalidateScope;

use crate::error::to_js;
use crate::options::{invalid, OpenOptions};
use crate::run::blocking;
use crate::values::{BeginOptions, ConsumedFlow, Flow, FlowInfo, Stats, SweepReport};

/// A shared flow store file (the core's `Store`). Cheap to share; every call returns a Promise.
#[napi]
pub struct Store {
    pub(crate) inner: core::Store,
}

/// Runs a core call on a clone of the store, off the JavaScript thread, mapping its value.
fn run<'env, T, U>(
    env: &'env Env,
    store: &core::Store,
    work: impl 'static + Send + FnOnce(&core::Store) -> core::Result<T>,
    map: impl 'static + Send + FnOnce(T) -> U,
) -> napi::Result<PromiseRaw<'env, U>>
where
    U: 'static + Send + napi::bindgen_prelude::ToNapiValue,
{
    let store = store.clone();
    blocking(env, move || work(&store).map(map).map_err(|e| to_js(&e)))
}

#[napi]
impl Store {
    /// Opens (creating it 0600 if missing) the store file at `path`.
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn open<'env>(
        env: &'env Env,
        path: String,
        options: Option<OpenOptions>,
    ) -> napi::Result<PromiseRaw<'env, Store>> {
        let options = options.unwrap_or_default().to_core()?;
        blocking(env, move || {
            options
                .open(path)
                .map(|inner| Store { inner })
                .map_err(|e| to_js(&e))
        })
    }

    /// The file's random id (the same in every process that opens it).
    #[napi(getter)]
    pub fn store_id(&self) -> String {
        self.inner.store_id().to_owned()
    }

    /// Begins a `pending` flow with a generated state and S256 PKCE pair.
    #[napi(ts_return_type = "Promise<Flow>")]
    pub fn begin<'env>(
        &self,
        env: &'env Env,
        options: BeginOptions,
    ) -> napi::Result<PromiseRaw<'env, Flow>> {
        let request = options.to_core();
        run(env, &self.inner, move |s| s.begin(request), Flow::from)
    }

    /// The SDK path: saves an `unbound` verifier before the state is known; returns its
    /// S256 challenge.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn save_code_verifier<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        client_id: Option<String>,
        verifier: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        run(
            env,
            &self.inner,
            move |s| s.save_code_verifier(&server_id, client_id.as_deref(), &verifier),
            |c| c.as_str().to_owned(),
        )
    }

    /// Binds a saved verifier to the `state` of the authorization URL built from it.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn promote<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        client_id: Option<String>,
        authorization_url: String,
    ) -> napi::Result<PromiseRaw<'env, FlowInfo>> {
        run(
            env,
            &self.inner,
            move |s| s.promote(&server_id, client_id.as_deref(), &authorization_url),
            |i| FlowInfo::from(&i),
        )
    }

    /// Would `consume` succeed now? Does not consume.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn check<'env>(
        &self,
        env: &'env Env,
        state: String,
    ) -> napi::Result<PromiseRaw<'env, FlowInfo>> {
        run(env, &self.inner, move |s| s.check(&state), |i| (&i).into())
    }

    /// Consumes the flow `state` names, exactly once across all processes.
    #[napi(ts_return_type = "Promise<ConsumedFlow>")]
    pub fn consume<'env>(
        &self,
        env: &'env Env,
        state: String,
    ) -> napi::Result<PromiseRaw<'env, ConsumedFlow>> {
        run(
            env,
            &self.inner,
            move |s| s.consume(&state),
            ConsumedFlow::from,
        )
    }

    /// `consume`, only for a flow begun for `serverId` (another server's flow is ended).
    #[napi(ts_return_type = "Promise<ConsumedFlow>")]
    pub fn consume_for<'env>(
        &self,
        env: &'env Env,
        state: String,
        server_id: String,
    ) -> napi::Result<PromiseRaw<'env, ConsumedFlow>> {
        run(
            env,
            &self.inner,
            move |s| s.consume_for(&state, &server_id),
            ConsumedFlow::from,
        )
    }

    /// Records the `code` a callback delivered (`completed`), for the beginner to consume.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        state: String,
        code: String,
    ) -> napi::Result<PromiseRaw<'env, FlowInfo>> {
        run(
            env,
            &self.inner,
            move |s| s.complete(&state, &code),
            |i| (&i).into(),
        )
    }

    /// Ends a pending flow as `failed` with the error a callback delivered.
    #[napi(ts_return_type = "Promise<FlowInfo>")]
    pub fn reject<'env>(
        &self,
        env: &'env Env,
        state: String,
        error: String,
        description: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, FlowInfo>> {
        run(
            env,
            &self.inner,
            move |s| s.reject(&state, &error, description.as_deref()),
            |i| (&i).into(),
        )
    }

    /// The verifier of the one live bound flow of this server and client (not consumed).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn pending_verifier<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        client_id: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        run(
            env,
            &self.inner,
            move |s| s.pending_verifier(&server_id, client_id.as_deref()),
            |v| v.secret().to_owned(),
        )
    }

    /// Deletes a server's (and client's) flows: `scope` is `"unbound"`, `"live"` or `"all"`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn invalidate<'env>(
        &self,
        env: &'env Env,
        server_id: String,
        client_id: Option<String>,
        scope: String,
    ) -> napi::Result<PromiseRaw<'env, i64>> {
        let scope = match scope.as_str() {
            "unbound" => InvalidateScope::Unbound,
            "live" => InvalidateScope::Live,
            "all" => InvalidateScope::All,
            _ => return Err(invalid("scope", "must be \"unbound\", \"live\" or \"all\"")),
        };
        run(
            env,
            &self.inner,
            move |s| s.invalidate(&server_id, client_id.as_deref(), scope),
            |n| i64::try_from(n).unwrap_or(i64::MAX),
        )
    }

    /// Deletes every expired row, in short batches.
    #[napi(ts_return_type = "Promise<SweepReport>")]
    pub fn sweep<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, SweepReport>> {
        run(env, &self.inner, |s| s.sweep(), SweepReport::from)
    }

    /// Row counts by status, and expiries.
    #[napi(ts_return_type = "Promise<Stats>")]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Stats>> {
        run(env, &self.inner, |s| s.stats(), Stats::from)
    }
}

/// A fresh `state` from the core's generator (32 random bytes, base64url), for a wrapper that
/// must hand the SDK a state before any flow exists.
#[napi]
pub fn generate_state() -> String {
    core::State::generate().secret().to_owned()
}
