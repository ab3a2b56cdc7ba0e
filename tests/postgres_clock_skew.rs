//! Hosts whose system clocks differ by 10 s (+5 s and -5 s): on PostgreSQL a flow begun on one
//! is consumed on the other, because the times come from the database server's clock.
//!
//! The two "hosts" are OS processes whose `CLOCK_REALTIME` is shifted by an `LD_PRELOAD` shim
//! that the test builds with the machine's C compiler. Each process reports the time its own
//! system clock shows, so the test proves the shift took effect (it cannot pass vacuously),
//! and a control run, in which the same two processes use their own clocks
//! (`StoreOptions::clock(SystemClock)`), shows the skew refusing the flow as expired.

#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use oauth_state_store::{BeginRequest, Error, Store, StoreOptions, SystemClock};
use sha2::Digest as _;

const URL_VAR: &str = "OSS_TEST_PG_URL";
const SKEW_VAR: &str = "OSS_CLOCK_SKEW_MS";
const MODE_VAR: &str = "OSS_TEST_CLOCK_MODE";
const SERVER: &str = "https://mcp.example.com";
const SKEW_MS: i64 = 5_000;
const BEGINS: &str = "child_begins_a_flow";
const CONSUMES: &str = "child_consumes_the_flow";

/// The shim: `clock_gettime(CLOCK_REALTIME*)`, `gettimeofday` and `time` shifted by
/// `$OSS_CLOCK_SKEW_MS` milliseconds; every other clock (the monotonic one that timeouts use)
/// untouched.
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);

static long long skew_ns(void) {
    const char *s = getenv("OSS_CLOCK_SKEW_MS");
    return s ? atoll(s) * 1000000LL : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!real_clock_gettime)
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real_clock_gettime(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ns();
        ts->tv_sec = ns / 1000000000LL;
        ts->tv_nsec = ns % 1000000000LL;
    }
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    if (tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return 0;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"#;

/// Builds the shim into `dir`; `None` where there is no C compiler.
fn build_shim(dir: &Path) -> Option<PathBuf> {
    let (src, lib) = (dir.join("skew.c"), dir.join("libskew.so"));
    std::fs::write(&src, SHIM_C).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "the clock shim did not build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(lib)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What a child printed after `prefix` (the test runner may print before it on the line).
fn after(out: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.find(prefix).map(|i| l[i + prefix.len()..].to_owned()))
        .collect()
}

fn one(out: &Output, prefix: &str) -> String {
    let found = after(out, prefix);
    assert_eq!(
        found.len(),
        1,
        "{prefix}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    found[0].clone()
}

/// Runs one "host": the child `name` with the shim and `skew_ms`, `stdin` written to it.
/// Returns its output and the clock it reported, checked to be shifted by `skew_ms`.
fn host(name: &str, shim: &Path, skew_ms: i64, env: &[(&str, &str)], stdin: &str) -> Output {
    let skew = skew_ms.to_string();
    let preload = shim.to_str().unwrap();
    let mut vars = vec![("LD_PRELOAD", preload), (SKEW_VAR, skew.as_str())];
    vars.extend_from_slice(env);
    let before = now_ms();
    let out = common::run_child(name, &vars, stdin);
    let after = now_ms();
    assert!(out.status.success(), "{name}: {out:?}");
    let clock: i64 = one(&out, "CLOCK ").parse().unwrap();
    // The child read its clock between `before` and `after` of the real one, shifted.
    assert!(
        clock >= before + skew_ms && clock <= after + skew_ms,
        "{name}: its clock reads {clock}, the real one was {before}..{after}: the shim did not \
         shift it by {skew_ms} ms"
    );
    out
}

/// The database server's clock now, Unix milliseconds.
fn server_ms(c: &mut postgres::Client) -> i64 {
    c.query_one(
        "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn a_flow_begun_on_a_host_5s_ahead_is_consumed_on_one_5s_behind() {
    let Some(cluster) = pg::cluster("clock_skew") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(shim) = build_shim(dir.path()) else {
        assert!(
            !pg::required(),
            "{}=1 but there is no C compiler (cc) to build the clock shim",
            pg::REQUIRE_VAR
        );
        println!("SKIPPED: clock_skew: no C compiler (cc) to build the clock shim");
        return;
    };
    let url = cluster.fresh_database("clock_skew");
    drop(Store::open(&url).unwrap());
    let mut admin = cluster.client(url.rsplit('/').next().unwrap().split('?').next().unwrap());

    // The server's clock: the host 5 s ahead begins, the host 5 s behind consumes.
    let env = [(URL_VAR, url.as_str()), (MODE_VAR, "server")];
    let server_before = server_ms(&mut admin);
    let begun = host(BEGINS, &shim, SKEW_MS, &env, "");
    let server_after = server_ms(&mut admin);
    let line = one(&begun, "BEGUN ");
    let (state, challenge) = line.split_once(' ').unwrap();
    let created_at: i64 = admin
        .query_one(
            "SELECT created_at FROM flows WHERE state_key = $1",
            &[&sha2::Sha256::digest(state.as_bytes()).to_vec()],
        )
        .unwrap()
        .get(0);
    assert!(
        (server_before..=server_after).contains(&created_at),
        "created_at {created_at} is not the server's time {server_before}..{server_after}"
    );
    let consumed = host(CONSUMES, &shim, -SKEW_MS, &env, &format!("{state}\n"));
    assert_eq!(
        one(&consumed, "RESULT "),
        format!("ok {challenge}"),
        "the flow was not consumed with its own verifier on the host behind"
    );

    // The control: the same hosts on their own clocks refuse the flow.
    let env = [(URL_VAR, url.as_str()), (MODE_VAR, "own")];
    let begun = host(BEGINS, &shim, SKEW_MS, &env, "");
    let line = one(&begun, "BEGUN ");
    let (state, _) = line.split_once(' ').unwrap();
    let refused = host(CONSUMES, &shim, -SKEW_MS, &env, &format!("{state}\n"));
    assert_eq!(
        one(&refused, "RESULT "),
        "expired",
        "with the hosts' own clocks the skew should make the flow look created in the future"
    );
}

/// A store on the URL: the server's clock, or (`own`) this process's system clock.
fn child_store() -> Option<Store> {
    let url = std::env::var(URL_VAR).ok()?;
    let options = StoreOptions::default().busy_timeout(Duration::from_secs(5));
    let options = match std::env::var(MODE_VAR).as_deref() {
        Ok("own") => options.clock(SystemClock),
        _ => options,
    };
    println!("CLOCK {}", now_ms());
    Some(options.open(&url).expect("open the store"))
}

/// Child of `a_flow_begun_on_a_host_5s_ahead_is_consumed_on_one_5s_behind`: begins a flow,
/// prints `BEGUN <state> <challenge>` (on the pipe to the parent only).
#[test]
#[ignore = "child process of a_flow_begun_on_a_host_5s_ahead_is_consumed_on_one_5s_behind"]
fn child_begins_a_flow() {
    let Some(store) = child_store() else {
        return;
    };
    let flow = store.begin(BeginRequest::new(SERVER)).unwrap();
    println!(
        "BEGUN {} {}",
        flow.state().secret(),
        flow.code_challenge().as_str()
    );
}

/// Child of `a_flow_begun_on_a_host_5s_ahead_is_consumed_on_one_5s_behind`: consumes the state
/// read from stdin, prints `RESULT ok <challenge of the verifier>` or `RESULT <error kind>`.
#[test]
#[ignore = "child process of a_flow_begun_on_a_host_5s_ahead_is_consumed_on_one_5s_behind"]
fn child_consumes_the_flow() {
    let Some(store) = child_store() else {
        return;
    };
    let mut input = String::new();
    std::io::stdin().lock().read_to_string(&mut input).unwrap();
    let state = input.lines().next().unwrap_or_default().trim();
    let result = match store.consume(state) {
        Ok(c) => format!(
            "ok {}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(c.verifier.secret().as_bytes()))
        ),
        Err(Error::Expired) => "expired".to_owned(),
        Err(e) => format!("error {e}"),
    };
    println!("RESULT {result}");
}
