//! The one-statement choice held to the rules: for every kind of row (status, expiry and
//! creation around `now`, client, a generated verifier), the statement finds exactly the rows
//! of [`rules::LIVE_BOUND`] that are live by [`rules::live_at`], of the server and exactly the
//! client asked for, and counts them all when it finds more than it returns.

use postgres::Client;

use super::choose;
use crate::backend::postgres::connect::Conn;
use crate::backend::postgres::steps::tests::{NOW, TIMES};
use crate::backend::postgres::test_cluster as pg;
use crate::flow::rules;
use crate::flow::Status;
use crate::pkce::state_key;
use crate::CodeVerifier;

const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[test]
fn live_at_is_the_same_rule_at_every_instant() {
    // The statement passes `live_at(0)` as offsets from its own clock.
    let zero = rules::live_at(0);
    for now in [1, NOW, -NOW, i64::MAX / 2] {
        let l = rules::live_at(now);
        assert_eq!(
            (l.expires_after, l.created_by),
            (zero.expires_after + now, zero.created_by + now)
        );
    }
}

/// Inserts one row; returns its challenge.
#[allow(clippy::too_many_arguments)]
fn insert(
    c: &mut Client,
    server: &str,
    client: Option<&str>,
    status: Status,
    created_at: i64,
    expires_at: i64,
    generated: bool,
) -> String {
    let verifier = CodeVerifier::generate();
    let challenge = verifier.challenge().as_str().to_owned();
    let key = state_key(crate::State::generate().secret());
    let keeps_verifier = !matches!(status, Status::Failed | Status::Consumed);
    c.execute(
        "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
         status, created_at, expires_at, generated_verifier, discovery) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'd')",
        &[
            &(status != Status::Unbound).then_some(&key[..]),
            &challenge,
            &keeps_verifier.then_some(verifier.secret()),
            &server,
            &client,
            &status.as_str(),
            &created_at,
            &expires_at,
            &generated,
        ],
    )
    .unwrap();
    challenge
}

#[test]
fn the_choice_finds_the_live_bound_flows_of_the_server_and_client_and_counts_them() {
    let Some(cluster) = pg::cluster("pending_model") else {
        return;
    };
    let url = cluster.fresh_database("pending_model");
    // Opening a store creates the schema.
    drop(crate::Store::open(&url).unwrap());
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let mut admin = cluster.client(database);
    let mut conn = Conn::for_tests(cluster.client(database));
    let live = rules::live_at(NOW);
    // Every kind of row the rules tell apart, each of a server of its own.
    let mut checked = 0;
    for status in Status::ALL {
        for (created_at, expires_at) in TIMES {
            for client in [Some("c1"), None] {
                for generated in [false, true] {
                    if status == Status::Unbound && generated {
                        continue;
                    }
                    checked += 1;
                    let server = format!("srv-{checked}");
                    let challenge = insert(
                        &mut admin, &server, client, status, created_at, expires_at, generated,
                    );
                    // Another client's live flow of the same server is never this one's.
                    let other = if client.is_some() { None } else { Some("c1") };
                    insert(
                        &mut admin,
                        &server,
                        other,
                        Status::Pending,
                        NOW - 1,
                        NOW + 1,
                        false,
                    );
                    let wanted = rules::LIVE_BOUND.contains(&status)
                        && expires_at > live.expires_after
                        && created_at <= live.created_by;
                    let got = choose(&mut conn, &server, client, Some(NOW), WAIT).unwrap();
                    let what =
                        format!("{status:?} {created_at} {expires_at} {client:?} {generated}");
                    assert_eq!(got.count, u64::from(wanted), "{what}");
                    assert_eq!(got.found.len(), usize::from(wanted), "{what}");
                    if let Some(f) = got.found.first() {
                        assert_eq!(f.challenge, challenge, "{what}");
                        assert_eq!(f.generated, generated, "{what}");
                        assert_eq!(f.discovery.as_deref(), Some("d"), "{what}");
                        assert_eq!(f.state_key.as_ref().map(Vec::len), Some(32), "{what}");
                    }
                }
            }
        }
    }
    assert!(checked > 50);

    // Several: at most `TO_TELL_ONE_FROM_MANY` returned, all counted.
    for n in 2..=4 {
        let server = format!("several-{n}");
        for _ in 0..n {
            insert(
                &mut admin,
                &server,
                Some("c1"),
                Status::Completed,
                NOW - 1,
                NOW + 1,
                false,
            );
        }
        let got = choose(&mut conn, &server, Some("c1"), Some(NOW), WAIT).unwrap();
        assert_eq!(got.count, n, "{n}");
        assert_eq!(
            got.found.len(),
            rules::TO_TELL_ONE_FROM_MANY as usize,
            "{n}"
        );
    }
    // The server's clock when none is injected: a flow created now is live.
    let server = "server-clock";
    let now: i64 = admin
        .query_one(
            "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .unwrap()
        .get(0);
    insert(
        &mut admin,
        server,
        None,
        Status::Pending,
        now - 1,
        now + 60_000,
        false,
    );
    let got = choose(&mut conn, server, None, None, WAIT).unwrap();
    assert_eq!((got.count, got.found.len()), (1, 1));
}
