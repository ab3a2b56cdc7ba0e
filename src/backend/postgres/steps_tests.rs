//! The model test of the one-statement steps: for every kind of row the rules tell apart
//! (status, expiry and creation around `now`, server, client, redirect URI, issuer, the
//! `iss` promise) and every way each operation is called, the statement run against a real
//! server must write exactly what `rules` asks for on the row it returned, return the row as it
//! was, leave the table so, and hand secrets out only on the rules' "proceed". A statement that
//! drifts from the rules fails here; the mutant at the end shows that it does.

use postgres::Client;

use super::{step as run_step, CONSUME};
use crate::backend::postgres::test_cluster as pg;
use crate::clock::ManualClock;
use crate::flow::ops::judge;
use crate::flow::row::{Binding, CallbackResult};
use crate::flow::rules::{self, Action, Expectations, Verdict};
use crate::flow::tx::{Step, Stepped, Wipe};
use crate::flow::Status;
use crate::pkce::state_key;
use crate::{CodeVerifier, Store, StoreOptions};

pub(in crate::backend::postgres) const NOW: i64 = 1_700_000_000_000;

/// `(created_at, expires_at)` around [`NOW`]: live, expiring at now, 1 ms left, created 1 ms
/// in the future, created exactly now, expired.
pub(in crate::backend::postgres) const TIMES: [(i64, i64); 6] = [
    (NOW - 10, NOW + 1000),
    (NOW - 10, NOW),
    (NOW - 10, NOW + 1),
    (NOW + 1, NOW + 1000),
    (NOW, NOW + 1000),
    (NOW - 1000, NOW - 1),
];
const SERVER: &str = "https://mcp.example.com";
const OTHER: &str = "https://other.example.com";
const LOOPBACK: &str = "http://127.0.0.1:4000/cb";
const ISSUER: &str = "https://as.example.com";

/// One row to insert, every column the rules read given.
#[derive(Debug, Clone)]
struct Case {
    status: Status,
    /// A tombstone's reason (`error`), or a failed flow's callback error.
    error: Option<&'static str>,
    created_at: i64,
    expires_at: i64,
    server_id: &'static str,
    client_id: Option<&'static str>,
    redirect_uri: Option<&'static str>,
    issuer: Option<&'static str>,
    require_issuer: bool,
}

fn cases() -> Vec<Case> {
    let statuses = [
        (Status::Unbound, None),
        (Status::Pending, None),
        (Status::Completed, None),
        (Status::Failed, Some("access_denied")),
        (Status::Consumed, None),
        (Status::Consumed, Some(rules::SERVER_MISMATCH_REASON)),
    ];
    let mut out = Vec::new();
    for (status, error) in statuses {
        for (created_at, expires_at) in TIMES {
            for server_id in [SERVER, OTHER] {
                for client_id in [Some("c1"), None] {
                    for redirect_uri in [None, Some(LOOPBACK)] {
                        for (issuer, require_issuer) in
                            [(None, false), (Some(ISSUER), false), (Some(ISSUER), true)]
                        {
                            if status == Status::Unbound && require_issuer {
                                continue;
                            }
                            out.push(Case {
                                status,
                                error,
                                created_at,
                                expires_at,
                                server_id,
                                client_id,
                                redirect_uri,
                                issuer,
                                require_issuer,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Inserts `case` with a fresh state and verifier; returns (id, state key, challenge).
fn insert(c: &mut Client, case: &Case) -> (i64, [u8; 32], String) {
    let state = crate::State::generate();
    let key = state_key(state.secret());
    let verifier = CodeVerifier::generate();
    let challenge = verifier.challenge().as_str().to_owned();
    let bound = case.status != Status::Unbound;
    let keeps_verifier = !matches!(case.status, Status::Failed | Status::Consumed);
    let id: i64 = c
        .query_one(
            "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
             redirect_uri, issuer, status, created_at, expires_at, auth_code, error, \
             require_issuer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             RETURNING id",
            &[
                &bound.then_some(&key[..]),
                &challenge,
                &keeps_verifier.then_some(verifier.secret()),
                &case.server_id,
                &case.client_id,
                &case.redirect_uri,
                &case.issuer,
                &case.status.as_str(),
                &case.created_at,
                &case.expires_at,
                &(case.status == Status::Completed).then_some("the-code"),
                &case.error,
                &case.require_issuer,
            ],
        )
        .unwrap()
        .get(0);
    (id, key, challenge)
}

/// What one call of an operation looks like, given the row's key and challenge.
#[derive(Debug, Clone, Copy)]
enum Call {
    Consume(Option<&'static str>),
    /// A direct `complete`.
    Complete,
    /// A direct `reject`.
    Reject,
    /// A listener's callback at 127.0.0.1:4000/cb (or 4001), with this `iss`.
    Listener(u16, Option<&'static str>),
    /// A delivered callback, with this `iss`.
    Delivered(&'static str, Option<&'static str>),
    /// Promote for this server and client.
    Promote(&'static str, Option<&'static str>),
}

const CALLS: [Call; 13] = [
    Call::Consume(None),
    Call::Consume(Some(SERVER)),
    Call::Consume(Some(OTHER)),
    Call::Complete,
    Call::Reject,
    Call::Listener(4000, None),
    Call::Listener(4000, Some(ISSUER)),
    Call::Listener(4001, Some(ISSUER)),
    Call::Delivered(
        "http://localhost:4000/cb?code=x",
        Some("https://evil.example"),
    ),
    Call::Delivered("http://localhost:4000/cb?code=x", Some(ISSUER)),
    Call::Delivered("https://app.example/cb?code=x", None),
    Call::Promote(SERVER, Some("c1")),
    Call::Promote(SERVER, None),
];

/// The table's row `id` afterwards: its status and whether it keeps a verifier and a code.
fn after(c: &mut Client, id: i64) -> Option<(String, bool, bool)> {
    c.query_opt(
        "SELECT status, code_verifier IS NOT NULL, auth_code IS NOT NULL FROM flows WHERE id = $1",
        &[&id],
    )
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
}

/// Runs `call` on a fresh row of `case` through `run`, and checks it against the rules.
fn check_one(
    admin: &mut Client,
    run: &mut dyn FnMut(&Step<'_>) -> crate::Result<Stepped>,
    case: &Case,
    call: Call,
) -> Result<(), String> {
    let (id, key, challenge) = insert(admin, case);
    let by_state = !matches!(call, Call::Promote(..));
    if by_state && case.status == Status::Unbound {
        return Ok(()); // an unbound row has no state key: no lookup by state finds it
    }
    let url;
    let mut expect = Expectations::default();
    let code = CallbackResult::Code("code-x");
    let error = CallbackResult::Error {
        error: "access_denied",
        description: None,
    };
    let mut result = &code;
    match call {
        Call::Reject => result = &error,
        Call::Listener(port, iss) => {
            expect.arrived_at = Some((port, "/cb"));
            expect.iss = iss;
        }
        Call::Delivered(at, iss) => {
            url = url::Url::parse(at).unwrap();
            expect.delivered_to = Some(&url);
            expect.iss = iss;
        }
        _ => {}
    }
    let spellings = rules::redirect_spellings(&expect);
    let new_state = crate::State::generate();
    let new_key = state_key(new_state.secret());
    let binding = Binding {
        state_key: &new_key,
        redirect_uri: None,
        resource: None,
        scope: None,
        issuer: None,
        require_issuer: false,
        discovery: None,
    };
    let step = match call {
        Call::Consume(expect_server) => Step::Consume {
            key: &key,
            expect_server,
        },
        Call::Promote(server_id, client_id) => Step::Promote {
            challenge: &challenge,
            server_id,
            client_id,
            binding: &binding,
        },
        _ => Step::Record {
            key: &key,
            result,
            expect: &expect,
            redirects: spellings.as_deref(),
        },
    };
    let s = run(&step).map_err(|e| format!("the step failed: {e}"))?;
    let verdict = judge(&step, s.row.as_ref(), s.now);
    let mut wanted = verdict.action();
    let fallback = matches!(step, Step::Record { .. })
        && spellings.is_some()
        && wanted == Action::Changed
        && s.did == Action::Nothing;
    if fallback {
        // A spelling the list missed (the operation tries again with the exact one): allowed
        // only when the stored URI is not in the list.
        let stored = s.row.as_ref().and_then(|r| r.redirect_uri.clone());
        if stored.is_some_and(|u| spellings.as_ref().is_some_and(|l| l.contains(&u))) {
            return Err("refused a spelling in its own list".to_owned());
        }
        wanted = Action::Nothing;
    }
    if s.now != NOW {
        return Err(format!("judged at {} instead of the injected {NOW}", s.now));
    }
    if s.did != wanted {
        return Err(format!("wrote {:?}, the rules ask for {wanted:?}", s.did));
    }
    let Some(row) = &s.row else {
        return Err("returned no row for a key that is there".to_owned());
    };
    let same = row.id == id
        && row.status == case.status
        && row.created_at == case.created_at
        && row.expires_at == case.expires_at
        && row.server_id == case.server_id
        && row.client_id.as_deref() == case.client_id
        && row.redirect_uri.as_deref() == case.redirect_uri
        && row.issuer.as_deref() == case.issuer
        && row.require_issuer == case.require_issuer
        && row.error.as_deref() == case.error;
    if !same {
        return Err(format!("returned another row: {row:?}"));
    }
    let handed_out = matches!(call, Call::Consume(_))
        && matches!(verdict, Verdict::Proceed)
        && case.status != Status::Failed;
    if row.verifier.is_some() != handed_out || (row.auth_code.is_some() && !handed_out) {
        return Err(format!(
            "verifier handed out: {}, the rules say {handed_out}",
            row.verifier.is_some()
        ));
    }
    let now = after(admin, id);
    let ok = match s.did {
        Action::Deleted => now.is_none(),
        Action::Nothing => now
            .as_ref()
            .is_some_and(|(st, ..)| st == case.status.as_str()),
        Action::Changed => {
            let status = match step {
                Step::Consume { .. } => Status::Consumed,
                Step::Promote { .. } => Status::Pending,
                Step::Record { result, .. } => result.status(),
            };
            now.as_ref().is_some_and(|(st, v, code)| {
                st == status.as_str()
                    && *v == matches!(status, Status::Pending | Status::Completed)
                    && *code == (status == Status::Completed)
            })
        }
    };
    if !ok {
        return Err(format!("the table afterwards: {now:?}"));
    }
    Ok(())
}

/// Runs every case and call through `run`; returns the disagreements.
fn disagreements(
    admin: &mut Client,
    calls: &[Call],
    run: &mut dyn FnMut(&Step<'_>) -> crate::Result<Stepped>,
) -> Vec<String> {
    let mut found = Vec::new();
    for &call in calls {
        for case in cases() {
            if let Err(e) = check_one(admin, run, &case, call) {
                found.push(format!("{call:?} on {case:?}: {e}"));
            }
        }
    }
    found
}

fn store_at_now(cluster: &pg::Cluster, test: &str) -> (Store, Client, String) {
    let url = cluster.fresh_database(test);
    let store = StoreOptions::default()
        .clock(ManualClock::new(NOW))
        .open(&url)
        .unwrap();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    (store, cluster.client(database), database.to_owned())
}

#[test]
fn every_step_statement_writes_what_the_rules_ask_for_the_row_it_returns() {
    let Some(cluster) = pg::cluster("steps_model") else {
        return;
    };
    let (store, mut admin, _) = store_at_now(cluster, "steps_model");
    let found = disagreements(&mut admin, &CALLS, &mut |step| {
        store.engine().step(Wipe::Secret, step)
    });
    assert!(
        found.is_empty(),
        "{} disagreements, first: {:#?}",
        found.len(),
        &found[..found.len().min(5)]
    );
}

#[test]
fn the_model_test_catches_a_statement_that_drifted_from_the_rules() {
    let Some(cluster) = pg::cluster("steps_mutant") else {
        return;
    };
    let (_store, mut admin, database) = store_at_now(cluster, "steps_mutant");
    // A consume whose "live" reads `created_at < now`: a flow created at this very
    // millisecond would be deleted as expired.
    let mutant = CONSUME.replacen("old.created_at <= t.now", "old.created_at < t.now", 1);
    assert_ne!(mutant, CONSUME);
    let mut conn = super::super::connect::Conn::for_tests(cluster.client(&database));
    let consumes = [Call::Consume(None), Call::Consume(Some(OTHER))];
    let found = disagreements(&mut admin, &consumes, &mut |step| match step {
        Step::Consume { key, expect_server } => {
            let rows = conn
                .query(
                    mutant.as_str(),
                    &[
                        &&key[..],
                        expect_server,
                        &Some(NOW),
                        &super::super::flows::names(&rules::ACTS_BY_STATE),
                        &rules::SERVER_MISMATCH_REASON,
                    ],
                )
                .map_err(|e| super::super::error::classify(e, std::time::Duration::ZERO))?;
            super::stepped(&rows[0])
        }
        other => run_step(
            &mut conn,
            other,
            Some(NOW),
            std::time::Duration::from_secs(5),
        ),
    });
    // Exactly the rows created at this very millisecond that a consume acts on disagree.
    assert!(!found.is_empty(), "the drifted consume was not caught");
    assert!(
        found
            .iter()
            .all(|d| d.contains(&format!("created_at: {NOW},"))),
        "only the drifted condition disagrees: {found:#?}"
    );
}

#[test]
fn the_step_statements_find_their_row_by_an_index_in_their_generic_plan() {
    let Some(cluster) = pg::cluster("steps_plans") else {
        return;
    };
    let (_store, mut admin, _) = store_at_now(cluster, "steps_plans");
    admin
        .batch_execute(
            "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
             status, created_at, expires_at) \
             SELECT sha256(i::text::bytea), rpad(i::text, 43, 'x'), 'v', 'https://s' || (i % 50), \
             'c', 'pending', i, 10000000000000 FROM generate_series(1, 20000) AS i; \
             ANALYZE flows; SET plan_cache_mode = force_generic_plan",
        )
        .unwrap();
    for (name, sql) in super::ALL {
        // The highest `$n`: the statement's parameter count.
        let params = (1..=20)
            .filter(|n| sql.contains(&format!("${n}")))
            .max()
            .unwrap_or(0);
        admin
            .batch_execute(&format!("PREPARE p_{name} AS {sql}"))
            .unwrap();
        let args = vec!["NULL"; params].join(", ");
        let plan = admin
            .query(&format!("EXPLAIN EXECUTE p_{name}({args})"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!plan.contains("Seq Scan on flows"), "{name}: {plan}");
        let (index, then_by_id) = match name {
            "CONSUME" | "RECORD" => ("flows_state_key_key", true),
            "PROMOTE" => ("flows_code_challenge_key", true),
            "CHOOSE" => ("flows_by_server", false),
            "BY_STATE" => ("flows_state_key_key", false),
            _ => continue,
        };
        assert!(plan.contains(index), "{name}: {plan}");
        if then_by_id {
            assert!(plan.contains("flows_pkey"), "{name}: {plan}");
        }
    }
}
