//! The store against an in-memory reference model: random operation sequences, with a manual
//! clock that moves forwards and backwards, must give the same result (`Ok` value or error
//! variant) from both on every step. Also the clock rules: a flow never lives past its
//! creation plus its time to live, whichever way the clock is moved.

use super::Fixture;
use crate::common;

use oauth_state_store::{
    BeginRequest, CodeVerifier, Error, InvalidateScope, ManualClock, State, Status, Store,
    StoreOptions,
};
use proptest::prelude::*;

const STATES: usize = 4;
const VERIFIERS: usize = 4;
const SERVERS: [&str; 2] = ["srv-a", "srv-b"];
const DEFAULT_TTL_MS: i64 = 3_000;
const START: i64 = 1_700_000_000_000;

fn state(i: usize) -> String {
    format!("model-state-{i}")
}

fn verifier(j: usize) -> String {
    format!("model-verifier-{j}-{}", "x".repeat(40))
}

fn challenge(j: usize) -> String {
    CodeVerifier::new(verifier(j))
        .unwrap()
        .challenge()
        .to_string()
}

#[derive(Debug, Clone)]
enum Op {
    Begin {
        s: usize,
        v: usize,
        server: usize,
        ttl_ms: i64,
    },
    Save {
        v: usize,
        server: usize,
    },
    Promote {
        v: usize,
        s: usize,
        server: usize,
    },
    Check {
        s: usize,
    },
    Consume {
        s: usize,
    },
    ConsumeFor {
        s: usize,
        server: usize,
    },
    Complete {
        s: usize,
    },
    Reject {
        s: usize,
    },
    Sweep,
    PendingVerifier {
        server: usize,
    },
    Invalidate {
        server: usize,
        scope: usize,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..STATES;
    let v = 0..VERIFIERS;
    let server = 0..SERVERS.len();
    prop_oneof![
        3 => (s.clone(), v.clone(), server.clone(), 1i64..5_000)
            .prop_map(|(s, v, server, ttl_ms)| Op::Begin { s, v, server, ttl_ms }),
        2 => (v.clone(), server.clone()).prop_map(|(v, server)| Op::Save { v, server }),
        2 => (v.clone(), s.clone(), server.clone())
            .prop_map(|(v, s, server)| Op::Promote { v, s, server }),
        2 => s.clone().prop_map(|s| Op::Check { s }),
        3 => s.clone().prop_map(|s| Op::Consume { s }),
        1 => (s.clone(), server).prop_map(|(s, server)| Op::ConsumeFor { s, server }),
        1 => s.clone().prop_map(|s| Op::Complete { s }),
        1 => s.prop_map(|s| Op::Reject { s }),
        1 => Just(Op::Sweep),
        1 => (0..SERVERS.len()).prop_map(|server| Op::PendingVerifier { server }),
        1 => (0..SERVERS.len(), 0..3usize)
            .prop_map(|(server, scope)| Op::Invalidate { server, scope }),
        3 => (-4_000i64..6_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// A result as both sides report it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Info {
        status: Status,
        server: String,
        created: i64,
        expires: i64,
    },
    Consumed {
        challenge: String,
        status: Status,
        created: i64,
        expires: i64,
        consumed_at: i64,
        has_code: bool,
    },
    Challenge(String),
    Swept([u64; 5]),
    Count(u64),
    Unit,
    Err(String),
}

fn err_name(e: &Error) -> String {
    match e {
        Error::ServerMismatch { field } => format!("ServerMismatch({field})"),
        Error::AuthorizationFailed { error, .. } => format!("AuthorizationFailed({error})"),
        Error::FlowEnded { reason } => format!("FlowEnded({reason:?})"),
        other => format!("{other:?}"),
    }
}

#[derive(Debug, Clone)]
struct Row {
    state: Option<usize>,
    v: usize,
    server: usize,
    status: Status,
    created: i64,
    expires: i64,
    /// On a tombstone: why the flow ended without a login, as the store names it.
    ended: Option<&'static str>,
}

impl Row {
    /// A flow is alive from its creation to its creation plus its TTL, as the clock reads;
    /// a clock reading before its creation (the clock went back) cannot vouch for its age.
    fn expired(&self, now: i64) -> bool {
        now >= self.expires || now < self.created
    }

    fn info(&self) -> Out {
        Out::Info {
            status: self.status,
            server: SERVERS[self.server].to_owned(),
            created: self.created,
            expires: self.expires,
        }
    }
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    rows: Vec<Row>,
}

fn e(name: &str) -> Out {
    Out::Err(name.to_owned())
}

impl Model {
    fn by_state(&self, s: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.state == Some(s))
    }

    fn by_challenge(&self, v: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.v == v)
    }

    /// The checks every lookup by state makes; `Ok` is a live row's index.
    fn live(&mut self, s: usize) -> Result<usize, Out> {
        let Some(i) = self.by_state(s) else {
            return Err(e("UnknownState"));
        };
        if self.rows[i].status == Status::Consumed {
            return Err(e(self.rows[i].ended.unwrap_or("AlreadyConsumed")));
        }
        if self.rows[i].expired(self.now) {
            self.rows.remove(i);
            return Err(e("Expired"));
        }
        Ok(i)
    }

    fn apply(&mut self, op: &Op) -> Out {
        let now = self.now;
        match *op {
            Op::Begin {
                s,
                v,
                server,
                ttl_ms,
            } => {
                // SQLite checks the challenge's UNIQUE index first when both collide.
                if self.by_challenge(v).is_some() {
                    return e("DuplicateChallenge");
                }
                if self.by_state(s).is_some() {
                    return e("DuplicateState");
                }
                let row = Row {
                    state: Some(s),
                    v,
                    server,
                    status: Status::Pending,
                    created: now,
                    expires: now + ttl_ms,
                    ended: None,
                };
                let out = row.info();
                self.rows.push(row);
                out
            }
            Op::Save { v, server } => {
                if self.by_challenge(v).is_some() {
                    return e("DuplicateChallenge");
                }
                self.rows.push(Row {
                    state: None,
                    v,
                    server,
                    status: Status::Unbound,
                    created: now,
                    expires: now + DEFAULT_TTL_MS,
                    ended: None,
                });
                Out::Challenge(challenge(v))
            }
            Op::Promote { v, s, server } => {
                let Some(i) = self.by_challenge(v) else {
                    return e("UnknownChallenge");
                };
                if self.rows[i].server != server {
                    return e("ServerMismatch(server_id)");
                }
                if self.rows[i].expired(now) {
                    self.rows.remove(i);
                    return e("Expired");
                }
                match self.rows[i].status {
                    Status::Unbound => {
                        if self.by_state(s).is_some() {
                            return e("DuplicateState");
                        }
                        self.rows[i].state = Some(s);
                        self.rows[i].status = Status::Pending;
                        self.rows[i].info()
                    }
                    Status::Pending if self.rows[i].state == Some(s) => self.rows[i].info(),
                    _ => e("ChallengeAlreadyBound"),
                }
            }
            Op::Check { s } => match self.live(s) {
                Ok(i) => self.rows[i].info(),
                Err(out) => out,
            },
            Op::Consume { s } => self.consume(s, None),
            Op::ConsumeFor { s, server } => self.consume(s, Some(server)),
            Op::Complete { s } => self.record(s, Status::Completed),
            Op::Reject { s } => self.record(s, Status::Failed),
            Op::Sweep => {
                let mut removed = [0; 5];
                self.rows.retain(|r| {
                    let gone = r.expires <= now;
                    if gone {
                        removed[Status::ALL.iter().position(|s| *s == r.status).unwrap()] += 1;
                    }
                    !gone
                });
                Out::Swept(removed)
            }
            Op::PendingVerifier { server } => {
                let live: Vec<&Row> = self
                    .rows
                    .iter()
                    .filter(|r| {
                        r.server == server
                            && matches!(r.status, Status::Pending | Status::Completed)
                            && !r.expired(now)
                    })
                    .collect();
                match live.len() {
                    0 => e("NoPendingVerifier"),
                    1 => Out::Challenge(challenge(live[0].v)),
                    n => e(&format!("AmbiguousPendingVerifier {{ count: {n} }}")),
                }
            }
            Op::Invalidate { server, scope } => {
                let statuses: &[Status] = match scope {
                    0 => &[Status::Unbound],
                    1 => &[
                        Status::Unbound,
                        Status::Pending,
                        Status::Completed,
                        Status::Failed,
                    ],
                    _ => &Status::ALL,
                };
                let before = self.rows.len();
                self.rows
                    .retain(|r| !(r.server == server && statuses.contains(&r.status)));
                Out::Count((before - self.rows.len()) as u64)
            }
            Op::Advance { ms } => {
                self.now += ms;
                Out::Unit
            }
        }
    }

    fn consume(&mut self, s: usize, expect: Option<usize>) -> Out {
        let i = match self.live(s) {
            Ok(i) => i,
            Err(out) => return out,
        };
        let row = &mut self.rows[i];
        let before = row.status;
        row.status = Status::Consumed;
        if expect.is_some_and(|server| server != row.server) {
            row.ended = Some("FlowEnded(ServerMismatch)");
            return e("ServerMismatch(server_id)");
        }
        if before == Status::Failed {
            row.ended = Some("FlowEnded(AuthorizationFailed)");
            return e("AuthorizationFailed(access_denied)");
        }
        Out::Consumed {
            challenge: challenge(row.v),
            status: before,
            created: row.created,
            expires: row.expires,
            consumed_at: self.now,
            has_code: before == Status::Completed,
        }
    }

    fn record(&mut self, s: usize, to: Status) -> Out {
        let i = match self.live(s) {
            Ok(i) => i,
            Err(out) => return out,
        };
        if self.rows[i].status != Status::Pending {
            return e("AlreadyCompleted");
        }
        self.rows[i].status = to;
        self.rows[i].info()
    }
}

fn run(store: &Store, clock: &ManualClock, op: &Op) -> Out {
    fn info(r: oauth_state_store::Result<oauth_state_store::FlowInfo>) -> Out {
        match r {
            Ok(i) => Out::Info {
                status: i.status,
                server: i.server_id,
                created: i.created_at,
                expires: i.expires_at,
            },
            Err(err) => Out::Err(err_name(&err)),
        }
    }
    fn consumed(r: oauth_state_store::Result<oauth_state_store::ConsumedFlow>) -> Out {
        match r {
            Ok(c) => Out::Consumed {
                challenge: c.verifier.challenge().to_string(),
                status: c.info.status,
                created: c.info.created_at,
                expires: c.info.expires_at,
                consumed_at: c.consumed_at,
                has_code: c.code.is_some(),
            },
            Err(err) => Out::Err(err_name(&err)),
        }
    }
    match *op {
        Op::Begin {
            s,
            v,
            server,
            ttl_ms,
        } => {
            let req = BeginRequest::new(SERVERS[server])
                .state(State::new(state(s)).unwrap())
                .verifier(CodeVerifier::new(verifier(v)).unwrap())
                .ttl(std::time::Duration::from_millis(ttl_ms.unsigned_abs()));
            match store.begin(req) {
                Ok(f) => {
                    assert_eq!(f.code_challenge().to_string(), challenge(v));
                    let i = f.info();
                    Out::Info {
                        status: i.status,
                        server: i.server_id.clone(),
                        created: i.created_at,
                        expires: i.expires_at,
                    }
                }
                Err(err) => Out::Err(err_name(&err)),
            }
        }
        Op::Save { v, server } => {
            match store.save_code_verifier(SERVERS[server], None, &verifier(v)) {
                Ok(c) => Out::Challenge(c.to_string()),
                Err(err) => Out::Err(err_name(&err)),
            }
        }
        Op::Promote { v, s, server } => {
            let url = format!(
                "https://as.example/authorize?response_type=code&state={}&code_challenge={}\
                 &code_challenge_method=S256",
                state(s),
                challenge(v)
            );
            info(store.promote(SERVERS[server], None, &url))
        }
        Op::Check { s } => info(store.check(&state(s))),
        Op::Consume { s } => consumed(store.consume(&state(s))),
        Op::ConsumeFor { s, server } => consumed(store.consume_for(&state(s), SERVERS[server])),
        Op::Complete { s } => info(store.complete(&state(s), "model-code")),
        Op::Reject { s } => info(store.reject(&state(s), "access_denied", None)),
        Op::Sweep => match store.sweep() {
            Ok(r) => Out::Swept(Status::ALL.map(|s| r.removed.get(s))),
            Err(err) => Out::Err(err_name(&err)),
        },
        Op::PendingVerifier { server } => match store.pending_verifier(SERVERS[server], None) {
            Ok(v) => Out::Challenge(v.challenge().to_string()),
            Err(err) => Out::Err(err_name(&err)),
        },
        Op::Invalidate { server, scope } => {
            let scope = [
                InvalidateScope::Unbound,
                InvalidateScope::Live,
                InvalidateScope::All,
            ][scope];
            match store.invalidate(SERVERS[server], None, scope) {
                Ok(n) => Out::Count(n),
                Err(err) => Out::Err(err_name(&err)),
            }
        }
        Op::Advance { ms } => {
            let by = std::time::Duration::from_millis(ms.unsigned_abs());
            if ms >= 0 {
                clock.advance(by);
            } else {
                clock.rewind(by);
            }
            Out::Unit
        }
    }
}

fn new_store(clock: &ManualClock) -> Store {
    Fixture::scratch(
        StoreOptions::default()
            .clock(clock.clone())
            .ttl(std::time::Duration::from_millis(DEFAULT_TTL_MS as u64)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: common::count(256, 4096) as u32,
        ..ProptestConfig::default()
    })]

    /// Case 3: the store and the model agree on every step.
    #[test]
    fn store_agrees_with_the_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        let clock = ManualClock::new(START);
        let store = new_store(&clock);
        let mut model = Model { now: START, rows: Vec::new() };
        for (step, op) in ops.iter().enumerate() {
            let want = model.apply(op);
            let got = run(&store, &clock, op);
            prop_assert_eq!(&got, &want, "step {} {:?}", step, op);
        }
        let stats = store.stats().unwrap();
        prop_assert_eq!(stats.counts.total(), model.rows.len() as u64);
    }
}

/// Case 13: moving the clock back and then forward again does not stretch a flow: it still
/// expires at its creation plus its TTL.
#[test]
fn a_clock_moved_back_and_forward_again_does_not_stretch_a_flow() {
    let clock = ManualClock::new(START);
    let store = new_store(&clock);
    let ttl = std::time::Duration::from_millis(DEFAULT_TTL_MS as u64);
    let flow = store.begin(BeginRequest::new("srv").ttl(ttl)).unwrap();
    assert_eq!(flow.info().expires_at, START + DEFAULT_TTL_MS);
    let kept = store.begin(BeginRequest::new("srv").ttl(ttl)).unwrap();
    clock.rewind(std::time::Duration::from_secs(5 * 60));
    // Under a clock that reads before the flow's creation its age is unknown: not usable.
    assert!(matches!(
        store.check(flow.state().secret()),
        Err(Error::Expired)
    ));
    clock.set(START + DEFAULT_TTL_MS - 1);
    // The expired verdict above removed it; it does not come back when the clock does.
    assert!(matches!(
        store.consume(flow.state().secret()),
        Err(Error::UnknownState)
    ));
    // A flow not touched while the clock was back lives exactly to creation + TTL.
    store.check(kept.state().secret()).unwrap();
    clock.set(START + DEFAULT_TTL_MS);
    assert!(matches!(
        store.consume(kept.state().secret()),
        Err(Error::Expired)
    ));
}

/// Case 13: a flow created under a later clock reading (another process whose clock was
/// ahead, or a clock stepped back since) is not granted its TTL again from the earlier
/// reading: nothing returns its verifier while the clock reads before its creation.
#[test]
fn a_flow_from_a_later_clock_reading_is_not_usable_when_the_clock_reads_earlier() {
    let fx = Fixture::new();
    let ahead = ManualClock::new(START + 3_600_000);
    let behind = ManualClock::new(START);
    let writer = fx.open(StoreOptions::default().clock(ahead.clone()));
    let reader = fx.open(StoreOptions::default().clock(behind.clone()));
    let ttl = std::time::Duration::from_secs(10 * 60);
    let begun = writer.begin(BeginRequest::new("srv").ttl(ttl)).unwrap();
    let bound = writer.begin(BeginRequest::new("srv").ttl(ttl)).unwrap();
    // The reader's clock is an hour behind the flows' creation: with expiry alone the flows
    // would live an hour and ten minutes of its time.
    assert!(matches!(
        reader.consume(begun.state().secret()),
        Err(Error::Expired)
    ));
    assert!(matches!(
        reader.pending_verifier("srv", None),
        Err(Error::NoPendingVerifier)
    ));
    assert!(matches!(
        reader.complete(bound.state().secret(), "code"),
        Err(Error::Expired)
    ));
    // The writer, whose clock agrees with the flows, was told the truth: they are gone.
    assert!(matches!(
        writer.consume(bound.state().secret()),
        Err(Error::UnknownState)
    ));
}
