//! Flow latency over a link with a fixed delay (BENCHMARKS.md, "PostgreSQL", "Latency"): the
//! store, the minimal floor (`pg_minimal`) and Redis, each through the same delaying proxy,
//! against k x the link's round-trip time, with `synchronous_commit` off and on, all variants
//! interleaved in one run; the same variants once more on loopback with no proxy.
//!
//! The link is a delay line on 127.0.0.1: every chunk read from one side is written to the
//! other `delay` later, in both directions, and chunks in flight overlap as on a real link, so
//! a round trip costs 2 x `delay` plus whatever the server does. The server's CPU time a flow
//! (from `/proc/PID/schedstat` of the database's backends) is the one column other load on the
//! machine does not move.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use oauth_state_store::Store;
use postgres::{Client, NoTls};

use crate::common::{
    challenge_of, median, random_token, store_native_flow, store_sdk_flow, TTL_MS,
};
use crate::pg_minimal::Minimal;
use crate::Server;

// ---- the link ----------------------------------------------------------------------------

/// A delaying TCP proxy on 127.0.0.1 in front of `127.0.0.1:upstream`; its threads end with
/// the bench process (or with each connection).
pub struct Link {
    port: u16,
}

impl Link {
    /// Listens on a free loopback port; every connection is relayed with `delay` each way.
    pub fn start(upstream: u16, delay: Duration) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the link");
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                for s in [&client, &server] {
                    s.set_nodelay(true).expect("TCP_NODELAY");
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || delay_line(server, client, delay));
                thread::spawn(move || delay_line(c2, s2, delay));
            }
        });
        Link { port }
    }

    /// The port to connect to instead of the upstream's.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
fn delay_line(mut from: TcpStream, to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let mut out = to.try_clone().unwrap();
    let writer = thread::spawn(move || {
        for (read_at, bytes) in rx {
            let due = read_at + delay;
            let now = Instant::now();
            if due > now {
                // The OS sleep overshoots by tens of µs; the measured RTT includes it, so
                // every variant pays it alike.
                thread::sleep(due - now);
            }
            if out.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = out.shutdown(Shutdown::Both);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = to.shutdown(Shutdown::Both);
}

/// `url` (a URL on `127.0.0.1:port`) pointed at `new_port` instead.
fn via(url: &str, port: u16, new_port: u16) -> String {
    url.replacen(
        &format!("127.0.0.1:{port}/"),
        &format!("127.0.0.1:{new_port}/"),
        1,
    )
}

/// The port of a `…@127.0.0.1:PORT/…` URL; `None` for a server elsewhere.
fn port_of(url: &str) -> Option<u16> {
    let after = url.split("@127.0.0.1:").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

// ---- Redis -------------------------------------------------------------------------------

/// A throwaway `redis-server` on 127.0.0.1, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` from PATH: without persistence, or with an append-only file
    /// synced at every write (`appendfsync always`, its durable setting). `None` when there
    /// is no `redis-server`.
    pub fn start(durable: bool) -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no", "--dir"])
            .arg(dir.path());
        if durable {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP client: the least a flow store on Redis sends. Native: `SET flow:STATE VERIFIER PX
/// ttl NX` + `GETDEL` (2 round trips); SDK: the same under `verifier:CHALLENGE`, `GETDEL` it at
/// promote and `SET` it under the state, then `GETDEL` (4 round trips).
pub struct Redis {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Redis {
    pub fn open(port: u16) -> Redis {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect Redis");
        s.set_nodelay(true).unwrap();
        Redis {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// One command; its simple-string, integer or bulk-string reply.
    fn cmd(&mut self, args: &[&str]) -> Option<String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer.write_all(out.as_bytes()).expect("write Redis");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read Redis");
        match line.as_bytes().first() {
            Some(b'+' | b':') => Some(line[1..].trim_end().to_owned()),
            Some(b'$') => {
                let n: i64 = line[1..].trim_end().parse().expect("a bulk length");
                if n < 0 {
                    return None;
                }
                let mut value = String::new();
                self.reader.read_line(&mut value).expect("read Redis");
                Some(value.trim_end().to_owned())
            }
            _ => panic!("Redis answered {line:?}"),
        }
    }

    fn set_nx(&mut self, key: &str, value: &str) {
        let ttl = TTL_MS.to_string();
        let ok = self.cmd(&["SET", key, value, "PX", &ttl, "NX"]);
        assert_eq!(ok.as_deref(), Some("OK"), "SET NX of a new key");
    }

    pub fn native_flow(&mut self) -> String {
        let (state, verifier) = (random_token(), random_token());
        let _challenge = challenge_of(&verifier);
        let key = format!("flow:{state}");
        self.set_nx(&key, &verifier);
        let taken = self.cmd(&["GETDEL", &key]).expect("the flow just begun");
        assert_eq!(taken, verifier);
        taken
    }

    pub fn sdk_flow(&mut self) -> String {
        let (state, verifier) = (random_token(), random_token());
        let vkey = format!("verifier:{}", challenge_of(&verifier));
        self.set_nx(&vkey, &verifier);
        let saved = self
            .cmd(&["GETDEL", &vkey])
            .expect("the verifier just saved");
        let key = format!("flow:{state}");
        self.set_nx(&key, &saved);
        let taken = self.cmd(&["GETDEL", &key]).expect("the flow just promoted");
        assert_eq!(taken, verifier);
        taken
    }
}

// ---- the table ---------------------------------------------------------------------------

/// The server's CPU nanoseconds so far, summed over the backends of database `db`; `None`
/// when `/proc` does not show them (a server on another host).
fn server_cpu_ns(admin: &mut Client, db: &str) -> Option<u64> {
    let rows = admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .ok()?;
    let mut sum = 0;
    for row in rows {
        let pid: i32 = row.get(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
        sum += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// One variant: what it is, and one flow.
struct Variant<'a> {
    name: String,
    /// Round trips a flow: the `k` of k x RTT.
    round_trips: u32,
    /// The variant this one is compared with (the minimal floor of its path and durability).
    floor: Option<usize>,
    /// The PostgreSQL database whose backends serve it (for the CPU column).
    db: Option<String>,
    flow: Box<dyn FnMut() + 'a>,
}

/// Median round-trip time of a prepared `SELECT 1` on `url`.
fn rtt_us(url: &str) -> f64 {
    let mut c = Client::connect(url, NoTls).expect("connect for the RTT");
    let one = c.prepare("SELECT 1").unwrap();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        c.query_one(&one, &[]).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(times)
}

/// The databases of one `synchronous_commit` setting: the floor's and the store's.
struct Databases {
    sync: &'static str,
    floor: (String, String),
    store: (String, String),
}

fn databases(server: &Server, sync: &'static str) -> Databases {
    let floor = server.create(&format!("lat_min_{sync}"), None);
    let store = server.create(&format!("lat_store_{sync}"), None);
    let mut admin = Client::connect(&server.admin, NoTls).expect("connect");
    for (name, _) in [&floor, &store] {
        // The names are made of [a-z0-9_] by `Server::create`.
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{name}\" SET synchronous_commit = {sync}"
            ))
            .expect("set synchronous_commit");
    }
    Minimal::create_schema(&floor.1);
    drop(Store::open(&store.1).expect("create the store's schema"));
    Databases { sync, floor, store }
}

/// The latency section: the variants on loopback, then through a link of `delay` each way.
pub fn latency(server: &Server, rounds: usize, block: usize, delay: Duration) {
    let dbs = [databases(server, "off"), databases(server, "on")];
    let redis = [RedisServer::start(false), RedisServer::start(true)];
    if redis.iter().any(Option::is_none) {
        assert!(
            std::env::var_os("OSS_REQUIRE_REDIS").is_none(),
            "redis-server is not on PATH and OSS_REQUIRE_REDIS is set"
        );
        println!("\nSKIPPED: the Redis rows (no redis-server on PATH)");
    }
    // The link is a proxy on this host: for a server elsewhere (`OSS_BENCH_PG_URL`), the
    // network between them is the link, and only the direct table is measured.
    let local = port_of(&server.admin);
    let delays = match local {
        Some(_) => vec![Duration::ZERO, delay],
        None => {
            println!("\nThe server is not on 127.0.0.1: no link of our own, the direct table only");
            vec![Duration::ZERO]
        }
    };
    for delay in delays {
        // Each server reached through its own link, or directly.
        let (pg, redis_ports): (Option<u16>, Vec<Option<u16>>) = if delay.is_zero() {
            (
                local,
                redis
                    .iter()
                    .map(|r| r.as_ref().map(RedisServer::port))
                    .collect(),
            )
        } else {
            let link = local.map(|port| Link::start(port, delay).port());
            let ports = redis
                .iter()
                .map(|r| r.as_ref().map(|r| Link::start(r.port(), delay).port()))
                .collect();
            (link, ports)
        };
        let url = |u: &str| match (local, pg) {
            (Some(port), Some(to)) => via(u, port, to),
            _ => u.to_owned(),
        };
        let rtt = rtt_us(&url(&dbs[0].floor.1));
        let mut variants: Vec<Variant<'_>> = Vec::new();
        for d in &dbs {
            let mut floor = Minimal::open(&url(&d.floor.1));
            let store = Store::open(url(&d.store.1)).expect("open the store");
            let mut floor_sdk = Minimal::open(&url(&d.floor.1));
            let store_sdk = Store::open(url(&d.store.1)).expect("open the store");
            let at = variants.len();
            let sync = d.sync;
            let mut add = |name: String, rt, floor, db: &String, flow: Box<dyn FnMut()>| {
                variants.push(Variant {
                    name,
                    round_trips: rt,
                    floor,
                    db: Some(db.clone()),
                    flow,
                });
            };
            add(
                format!("minimal floor, native, sync {sync}"),
                2,
                None,
                &d.floor.0,
                Box::new(move || drop(floor.native_flow())),
            );
            add(
                format!("store, native, sync {sync}"),
                2,
                Some(at),
                &d.store.0,
                Box::new(move || drop(store_native_flow(&store))),
            );
            add(
                format!("minimal floor, SDK, sync {sync}"),
                3,
                None,
                &d.floor.0,
                Box::new(move || drop(floor_sdk.sdk_flow())),
            );
            add(
                format!("store, SDK, sync {sync}"),
                3,
                Some(at + 2),
                &d.store.0,
                Box::new(move || drop(store_sdk_flow(&store_sdk))),
            );
        }
        // Redis without persistence against the floor with synchronous_commit off; Redis
        // syncing every write against the floor with it on.
        for (i, (port, what)) in redis_ports
            .iter()
            .zip(["Redis", "Redis, appendfsync always"])
            .enumerate()
        {
            let Some(port) = *port else { continue };
            let (mut native, mut sdk) = (Redis::open(port), Redis::open(port));
            let floor_at = i * 4;
            variants.push(Variant {
                name: format!("{what}, native (SET NX + GETDEL)"),
                round_trips: 2,
                floor: Some(floor_at),
                db: None,
                flow: Box::new(move || drop(native.native_flow())),
            });
            variants.push(Variant {
                name: format!("{what}, SDK (4 commands)"),
                round_trips: 4,
                floor: Some(floor_at + 2),
                db: None,
                flow: Box::new(move || drop(sdk.sdk_flow())),
            });
        }
        table(server, &mut variants, rounds, block, delay, rtt);
    }
}

fn table(
    server: &Server,
    variants: &mut [Variant<'_>],
    rounds: usize,
    block: usize,
    delay: Duration,
    rtt: f64,
) {
    let mut admin = Client::connect(&server.admin, NoTls).expect("connect");
    for v in variants.iter_mut() {
        for _ in 0..block.min(10) {
            (v.flow)(); // warm-up: connections, prepared statements, plans
        }
    }
    let n = variants.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for _ in 0..rounds {
        for (i, v) in variants.iter_mut().enumerate() {
            let before = v.db.as_ref().and_then(|db| server_cpu_ns(&mut admin, db));
            let t = Instant::now();
            for _ in 0..block {
                (v.flow)();
            }
            wall[i].push(t.elapsed().as_secs_f64() * 1e6 / block as f64);
            let after = v.db.as_ref().and_then(|db| server_cpu_ns(&mut admin, db));
            if let (Some(b), Some(a)) = (before, after) {
                cpu[i].push(a.saturating_sub(b) as f64 / 1e3 / block as f64);
            }
        }
    }
    let link = if delay.is_zero() {
        "direct (no proxy; loopback for a cluster of its own)".to_owned()
    } else {
        format!("a link of {} µs each way", delay.as_micros())
    };
    println!(
        "\n### Flow latency, {link}: RTT {rtt:.0} µs (median prepared SELECT 1); {rounds} rounds \
         of {block} flows a variant, interleaved\n"
    );
    println!("| variant | RT | µs/flow (median round) | vs RT x RTT | vs minimal floor | server CPU µs/flow | CPU vs floor |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        let per_round = |of: &[Vec<f64>], f: usize| {
            if of[i].len() != of[f].len() || of[i].is_empty() {
                return String::new();
            }
            let r: Vec<f64> = of[i].iter().zip(&of[f]).map(|(a, b)| a / b).collect();
            format!("{:.3}x", median(r))
        };
        let us = median(wall[i].clone());
        let vs_floor = v
            .floor
            .map_or_else(|| "1".to_owned(), |f| per_round(&wall, f));
        let (cpu_us, cpu_vs) = if cpu[i].is_empty() {
            (String::new(), String::new())
        } else {
            let c = format!("{:.1}", median(cpu[i].clone()));
            (
                c,
                v.floor
                    .map_or_else(|| "1".to_owned(), |f| per_round(&cpu, f)),
            )
        };
        println!(
            "| {} | {} | {us:.0} | {:.2}x | {vs_floor} | {cpu_us} | {cpu_vs} |",
            v.name,
            v.round_trips,
            us / (f64::from(v.round_trips) * rtt),
        );
    }
}
