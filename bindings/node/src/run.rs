//! Runs core calls off the JavaScript thread and hands back a Promise.

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::Env;

/// Runs `work` on the blocking pool of napi's Tokio runtime and returns a Promise of its value.
/// The JavaScript thread only converts the result; it never waits on SQLite's busy timeout or a
/// callback. `work` maps a core error with [`crate::error::to_js`].
pub(crate) fn blocking<'env, T, F>(env: &'env Env, work: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + FnOnce() -> napi::Result<T>,
{
    env.spawn_future(async move {
        match napi::bindgen_prelude::spawn_blocking(work).await {
            Ok(result) => result,
            Err(_) => Err(napi::Error::from_reason(
                "{\"code\":\"INTERNAL\",\"message\":\"the store call stopped before it finished\"}",
            )),
        }
    })
}
