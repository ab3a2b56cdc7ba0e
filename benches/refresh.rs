//! Single-flight refresh (BENCHMARKS.md, "Refresh"), on an SQLite file and on PostgreSQL:
//!
//! - **overhead**: one process, refreshes in a row against a rotating token endpoint in this
//!   process (loopback, a new connection a request): the bare request against
//!   `Store::refresh_with` (the lease's write, the same request, the finish's write), in
//!   interleaved blocks, round after round; the ratio is taken within a round, then the median
//!   of rounds.
//! - **waiters**: the holder's request held by the endpoint for `--delay-ms`, while K other
//!   processes wait for its refresh; each waiter's return is compared with the holder's
//!   commit (one host, one clock): what waiting for another process's refresh adds.
//!
//! ```text
//! cargo bench --bench refresh --features postgres                 # 20 rounds of 50; K = 1, 4, 15
//! cargo bench --bench refresh --features postgres -- --quick      # CI: tiny sizes
//! cargo bench --bench refresh -- --rounds 20 --block 50 --waiters 1,4,15 --delay-ms 200
//! ```
//!
//! PostgreSQL is a throwaway cluster started by the bench (tests/common/pg.rs), with the
//! tests' `fsync=off`; without its binaries (or without the `postgres` feature) the SQLite
//! rows alone are printed.
#![allow(missing_docs)] // a bench binary, not an API

#[path = "../tests/common/oidc.rs"]
mod oidc;
#[cfg(feature = "postgres")]
#[path = "../tests/common/pg.rs"]
mod pg_cluster;
mod refresh_endpoint;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oauth_state_store::{
    AccessToken, Begun, RefreshOptions, RefreshToken, Refreshed, Seen, Store, TokenResponse,
    TryBegun,
};
use refresh_endpoint::{request, Endpoint};

const SRV: &str = "https://mcp.example.com/mcp";

struct Args {
    rounds: usize,
    block: usize,
    waiters: Vec<usize>,
    waiter_rounds: usize,
    delay: Duration,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 20,
        block: 50,
        waiters: vec![1, 4, 15],
        waiter_rounds: 5,
        delay: Duration::from_millis(200),
    };
    let mut it = std::env::args().skip(1);
    let value = |it: &mut dyn Iterator<Item = String>, what: &str| {
        it.next().unwrap_or_else(|| panic!("{what} needs a value"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                (a.rounds, a.block, a.waiter_rounds) = (2, 5, 1);
                a.waiters = vec![2];
                a.delay = Duration::from_millis(50);
            }
            "--rounds" => a.rounds = value(&mut it, "--rounds").parse().expect("N"),
            "--block" => a.block = value(&mut it, "--block").parse().expect("N"),
            "--delay-ms" => {
                a.delay = Duration::from_millis(value(&mut it, "--delay-ms").parse().expect("ms"));
            }
            "--waiters" => {
                a.waiters = value(&mut it, "--waiters")
                    .split(',')
                    .map(|k| k.parse().expect("K,K,..."))
                    .collect();
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn tokens(tag: &str) -> TokenResponse {
    TokenResponse::new(AccessToken::new(format!("at-{tag}")).unwrap(), "Bearer")
        .refresh_token(RefreshToken::new(format!("rt-{tag}")).unwrap())
        .expires_in(Duration::from_secs(3600))
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Refreshes in a row, bare and through the store, interleaved; prints one row.
fn overhead(engine: &str, store: &Store, a: &Args) {
    let client = format!("overhead-{}", std::process::id());
    store.save_tokens(SRV, &client, tokens("o-0")).unwrap();
    let bare_endpoint = Endpoint::start("rt-bare-0");
    let store_endpoint = Endpoint::start("rt-o-0");
    let options = RefreshOptions::default();
    let (mut bare_us, mut store_us) = (Vec::new(), Vec::new());
    let (mut ratios, mut bare_means, mut store_means) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let started = Instant::now();
        for _ in 0..a.block {
            let t = Instant::now();
            let token = bare_endpoint.current();
            match request(&bare_endpoint.url, &token) {
                oauth_state_store::Exchange::Tokens(_) => {}
                other => panic!("bare refresh: {other:?}"),
            }
            bare_us.push(t.elapsed().as_micros() as u64);
        }
        let bare = started.elapsed().as_secs_f64() * 1e6 / a.block as f64;
        let started = Instant::now();
        for _ in 0..a.block {
            let t = Instant::now();
            let refreshed = store
                .refresh_with(SRV, &client, Seen::Current, &options, |lease| {
                    request(&store_endpoint.url, lease.refresh_token().secret())
                })
                .unwrap();
            assert!(
                matches!(refreshed, Refreshed::Refreshed(_)),
                "{refreshed:?}"
            );
            store_us.push(t.elapsed().as_micros() as u64);
        }
        let through = started.elapsed().as_secs_f64() * 1e6 / a.block as f64;
        ratios.push(through / bare);
        bare_means.push(bare);
        store_means.push(through);
    }
    assert_eq!(
        store_endpoint
            .refused
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    bare_us.sort_unstable();
    store_us.sort_unstable();
    let (bare, through) = (median(bare_means), median(store_means));
    println!(
        "| {engine} | {:.0} | {:.0} | {:.0} | {:.2}x | {} / {} | {} / {} |",
        bare,
        through,
        through - bare,
        median(ratios),
        percentile(&bare_us, 0.5),
        percentile(&bare_us, 0.99),
        percentile(&store_us, 0.5),
        percentile(&store_us, 0.99),
    );
}

/// The same against oidc-provider (Node.js, `bindings/node/node_modules`): a real token
/// endpoint's own cost. A fresh server a round and a variant (its in-memory adapter keeps 1000
/// entries); bare and store rounds alternate. Prints one row, or nothing without Node.js.
fn oidc_overhead(engine: &str, store: &Store, a: &Args) {
    use oidc::{refresh_request, RotatingServer, TokenReply};
    let exchange = |server: &RotatingServer, token: &str| -> Result<serde_json::Value, String> {
        match refresh_request(&server.token_endpoint, &server.client_id, token)? {
            TokenReply::Tokens(json) => Ok(json),
            other => Err(format!("{other:?}")),
        }
    };
    let (mut ratios, mut bare_means, mut store_means) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..a.rounds {
        let Some(server) = RotatingServer::start("refresh bench", 600) else {
            return;
        };
        let mut token = server.login["refresh_token"].as_str().unwrap().to_owned();
        let started = Instant::now();
        for _ in 0..a.block {
            let json = exchange(&server, &token).unwrap();
            token = json["refresh_token"].as_str().unwrap().to_owned();
        }
        let bare = started.elapsed().as_secs_f64() * 1e6 / a.block as f64;
        drop(server);
        let server = RotatingServer::start("refresh bench", 600).unwrap();
        let client = format!("oidc-{round}-{}", std::process::id());
        let login = TokenResponse::new(
            AccessToken::new(server.login["access_token"].as_str().unwrap()).unwrap(),
            "Bearer",
        )
        .refresh_token(RefreshToken::new(server.login["refresh_token"].as_str().unwrap()).unwrap());
        store.save_tokens(SRV, &client, login).unwrap();
        let options = RefreshOptions::default();
        let started = Instant::now();
        for _ in 0..a.block {
            let refreshed = store
                .refresh_with(
                    SRV,
                    &client,
                    Seen::Current,
                    &options,
                    |lease| match exchange(&server, lease.refresh_token().secret()) {
                        Ok(json) => oauth_state_store::Exchange::Tokens(
                            TokenResponse::new(
                                AccessToken::new(json["access_token"].as_str().unwrap()).unwrap(),
                                "Bearer",
                            )
                            .refresh_token(
                                RefreshToken::new(json["refresh_token"].as_str().unwrap()).unwrap(),
                            ),
                        ),
                        Err(e) => oauth_state_store::Exchange::Failed(e),
                    },
                )
                .unwrap();
            assert!(
                matches!(refreshed, Refreshed::Refreshed(_)),
                "{refreshed:?}"
            );
        }
        let through = started.elapsed().as_secs_f64() * 1e6 / a.block as f64;
        ratios.push(through / bare);
        bare_means.push(bare);
        store_means.push(through);
    }
    let (bare, through) = (median(bare_means), median(store_means));
    println!(
        "| {engine}, oidc-provider | {:.0} | {:.0} | {:.0} | {:.2}x | | |",
        bare,
        through,
        through - bare,
        median(ratios),
    );
}

/// K processes wait while the holder's request is held; prints one row a K.
fn waiters(engine: &str, target: &str, a: &Args) {
    let store = Store::open(target).unwrap();
    for &k in &a.waiters {
        let mut added = Vec::new();
        for round in 0..a.waiter_rounds {
            let client = format!("waiters-{k}-{round}-{}", std::process::id());
            store.save_tokens(SRV, &client, tokens(&client)).unwrap();
            let endpoint = Endpoint::start(&format!("rt-{client}"));
            endpoint.set_delay(a.delay);
            let mut kids: Vec<_> = (0..k)
                .map(|_| {
                    let mut child = Command::new(std::env::current_exe().unwrap())
                        .args(["--child-waiter", target, &client])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("spawn a waiter");
                    let out = BufReader::new(child.stdout.take().unwrap());
                    let mut lines = out.lines().map_while(Result::ok);
                    assert_eq!(lines.next().as_deref(), Some("READY"));
                    (child, lines)
                })
                .collect();
            let TryBegun::Lease(lease) = store
                .try_begin_refresh(SRV, &client, Seen::Current, &RefreshOptions::default())
                .unwrap()
            else {
                panic!("the holder leases first");
            };
            for (child, _) in &mut kids {
                let stdin = child.stdin.as_mut().unwrap();
                writeln!(stdin, "go").and_then(|()| stdin.flush()).unwrap();
            }
            let oauth_state_store::Exchange::Tokens(response) =
                request(&endpoint.url, lease.refresh_token().secret())
            else {
                panic!("the holder's refresh failed");
            };
            store.finish_refresh(lease, response).unwrap();
            let committed = unix_us();
            for (mut child, mut lines) in kids {
                let line = lines.next().expect("a waiter's report");
                let returned: u64 = line.strip_prefix("NEWER ").expect(&line).parse().unwrap();
                added.push(returned.saturating_sub(committed));
                child.wait().unwrap();
            }
            assert_eq!(endpoint.served.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
        added.sort_unstable();
        println!(
            "| {engine} | {k} | {:.1} | {:.1} | {:.1} |",
            percentile(&added, 0.5) as f64 / 1000.0,
            percentile(&added, 0.99) as f64 / 1000.0,
            *added.last().unwrap() as f64 / 1000.0,
        );
    }
}

/// A waiter process: loads the set, says READY, and on `go` begins a refresh of what it
/// loaded; reports when it got the holder's newer set.
fn child_waiter(target: &str, client: &str) {
    let store = Store::open(target).unwrap();
    let seen = Seen::from(&store.tokens(SRV, client).unwrap().unwrap());
    println!("READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    match store
        .begin_refresh(SRV, client, seen, &RefreshOptions::default())
        .unwrap()
    {
        Begun::Newer(_) => println!("NEWER {}", unix_us()),
        Begun::Lease(_) => panic!("a waiter leased: the holder's lease was not seen"),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--child-waiter") {
        return child_waiter(&argv[2], &argv[3]);
    }
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.db");
    let sqlite = path.to_str().unwrap().to_owned();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut engines = vec![("SQLite", sqlite)];
    #[cfg(feature = "postgres")]
    let _cluster = match pg_cluster::find_binaries() {
        Ok(_) => {
            let cluster = pg_cluster::Cluster::start();
            engines.push(("PostgreSQL", cluster.fresh_database("refresh_bench")));
            Some(cluster)
        }
        Err(why) => {
            println!("PostgreSQL skipped: {why}");
            None
        }
    };
    println!(
        "\nCoordination overhead per refresh: {} rounds of {} refreshes, µs (mean of a block, \
         median of rounds; p50 / p99 of single refreshes)\n",
        a.rounds, a.block
    );
    println!("| engine | bare request | refresh_with | overhead | ratio | bare p50 / p99 | refresh_with p50 / p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (engine, target) in &engines {
        overhead(engine, &Store::open(target).unwrap(), &a);
    }
    for (engine, target) in &engines {
        oidc_overhead(engine, &Store::open(target).unwrap(), &a);
    }
    println!(
        "\nWaiters' added latency: the holder's request held {:?}; waiter return minus holder \
         commit, ms, over {} rounds\n",
        a.delay, a.waiter_rounds
    );
    println!("| engine | waiting processes | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (engine, target) in &engines {
        waiters(engine, target, &a);
    }
}
