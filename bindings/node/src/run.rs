//! Runs core calls off the JavaScript thread and hands back a Promise.
//!
//! Two pools, for two kinds of call:
//! - [`short`]: the store's operations (milliseconds; at most SQLite's busy timeout) run as an
//!   N-API async work item on libuv's thread pool, as Node's own `fs` calls do. One hop there
//!   and one back: the cheapest crossing N-API offers (BENCHMARKS.md, "Node.js binding").
//! - [`long`]: `wait`, which may block for minutes, runs on the blocking pool of napi's Tokio
//!   runtime, so that pending waits never starve libuv's few threads.

use napi::bindgen_prelude::{AsyncTask, PromiseRaw, ToNapiValue, TypeName};
use napi::{Env, Task};

/// A core call waiting for a libuv thread.
pub struct Job<U> {
    work: Option<Box<dyn FnOnce() -> napi::Result<U> + Send>>,
}

impl<U> Task for Job<U>
where
    U: 'static + Send + ToNapiValue + TypeName,
{
    type Output = U;
    type JsValue = U;

    fn compute(&mut self) -> napi::Result<U> {
        match self.work.take() {
            Some(work) => work(),
            None => Err(internal()),
        }
    }

    fn resolve(&mut self, _env: Env, output: U) -> napi::Result<U> {
        Ok(output)
    }
}

/// Runs a short core call on libuv's thread pool; the Promise settles with its value.
/// `work` maps a core error with [`crate::error::to_js`].
pub(crate) fn short<U>(work: impl 'static + Send + FnOnce() -> napi::Result<U>) -> AsyncTask<Job<U>>
where
    U: 'static + Send + ToNapiValue + TypeName,
{
    AsyncTask::new(Job {
        work: Some(Box::new(work)),
    })
}

/// Runs a call that may block for long (a `wait`) on the blocking pool of napi's Tokio
/// runtime and returns a Promise of its value.
pub(crate) fn long<'env, T, F>(env: &'env Env, work: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + FnOnce() -> napi::Result<T>,
{
    env.spawn_future(async move {
        match napi::bindgen_prelude::spawn_blocking(work).await {
            Ok(result) => result,
            Err(_) => Err(internal()),
        }
    })
}

fn internal() -> napi::Error {
    napi::Error::from_reason(
        "{\"code\":\"INTERNAL\",\"message\":\"the store call stopped before it finished\"}",
    )
}
