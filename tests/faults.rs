//! Storage faults: a full disk, a read-only file, corrupt files. Each ends in a typed error,
//! never a panic, never a wrong verifier, and leaves the rows that were there as they were.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{assert_error_clean, dump_flows, heavy, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, Error, InvalidateScope, State, Store};

const VERIFIER: &str = "faultsVERIFIERsecret-0123456789-abcdefghijklmno";
const STATE: &str = "faults-STATE-secret-9f8e7d";
const SECRETS: [&str; 2] = [VERIFIER, STATE];

/// A state and a verifier of our own for flow `i`, so that the test knows both.
fn secrets(i: usize) -> (String, String) {
    (format!("{STATE}-{i:04}"), format!("{VERIFIER}-{i:04}"))
}

fn begin_known(store: &Store, server: &str, i: usize) -> Result<(), Error> {
    let (state, verifier) = secrets(i);
    store
        .begin(
            BeginRequest::new(server)
                .state(State::new(state).unwrap())
                .verifier(CodeVerifier::new(verifier).unwrap()),
        )
        .map(drop)
}

/// Consumes flow `i`: `Ok` only with exactly its own verifier, whose challenge is the one its
/// begin produced.
fn consume_known(store: &Store, i: usize) -> Result<(), Error> {
    let (state, verifier) = secrets(i);
    let consumed = store.consume(&state)?;
    assert_eq!(
        consumed.verifier.secret(),
        verifier,
        "flow {i} got a wrong verifier"
    );
    Ok(())
}

fn checkpoint(path: &Path) {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Case 7: the database reaches its size limit.
#[test]
fn a_full_database_is_storage_full_keeps_its_rows_and_recovers_when_space_is_freed() {
    let fx = Fixture::new();
    let limit = 128 * 1024; // the empty schema alone takes about 15 of its 32 pages
    let store = fx
        .options()
        .max_database_size(limit)
        .open(&fx.path)
        .unwrap();
    let mut errors = Vec::new();
    let big_scope = "s".repeat(4000);
    let mut filled = 0;
    let full = loop {
        let request = BeginRequest::new("filler").scope(big_scope.clone());
        match store.begin(request) {
            Ok(_) => filled += 1,
            Err(e) => break e,
        }
        assert!(filled < 1000, "the size limit was never reached");
    };
    assert!(matches!(full, Error::StorageFull { .. }), "{full:?}");
    assert!(full.to_string().contains("free space"), "{full}");
    assert!(filled > 3, "only {filled} flows fitted");
    errors.push(full);

    // One small flow of ours may still fit in the last page; fill it too.
    let mut ours = Vec::new();
    for i in 0..50 {
        match begin_known(&store, "srv", i) {
            Ok(()) => ours.push(i),
            Err(e) => {
                assert!(matches!(e, Error::StorageFull { .. }), "{e:?}");
                errors.push(e);
                break;
            }
        }
    }
    let before = dump_flows(&fx.path);
    for _ in 0..3 {
        let e = store
            .begin(BeginRequest::new("filler").scope(big_scope.clone()))
            .unwrap_err();
        assert!(matches!(e, Error::StorageFull { .. }), "{e:?}");
        errors.push(e);
    }
    assert_eq!(dump_flows(&fx.path), before, "a failed write changed rows");
    assert!(fs::metadata(&fx.path).unwrap().len() <= limit);

    // Rows already there are intact and still usable.
    if let Some(&first) = ours.first() {
        consume_known(&store, first).unwrap();
    }

    // Free space: the filler flows go; new flows fit again.
    let removed = store
        .invalidate("filler", None, InvalidateScope::All)
        .unwrap();
    assert_eq!(removed, filled);
    for i in 100..105 {
        begin_known(&store, "srv", i).unwrap();
    }
    for &i in ours.iter().skip(1) {
        consume_known(&store, i).unwrap();
    }
    for i in 100..105 {
        consume_known(&store, i).unwrap();
    }
    drop(store);

    // A larger limit (or none) on the same file lifts it.
    let store = fx.store();
    store
        .begin(BeginRequest::new("filler").scope(big_scope))
        .unwrap();
    for e in &errors {
        assert_error_clean(e, &SECRETS);
    }
}

/// Case 7: a limit too small for even the schema fails the open with the same typed error.
#[test]
fn a_size_limit_below_the_schema_fails_the_open_with_storage_full() {
    let fx = Fixture::new();
    let got = fx.options().max_database_size(4096).open(&fx.path);
    match got {
        Err(e @ Error::StorageFull { .. }) => assert_error_clean(&e, &SECRETS),
        other => panic!("expected StorageFull, got {other:?}"),
    }
    // Nothing half-made stays behind: the file opens normally afterwards.
    fx.store().begin(BeginRequest::new("srv")).unwrap();
}

/// Case 8: a store opened read-only reads and refuses every write with `ReadOnly`.
#[test]
fn a_read_only_store_reads_and_refuses_writes_with_read_only() {
    let fx = Fixture::new();
    let store = fx.store();
    begin_known(&store, "srv", 1).unwrap();
    begin_known(&store, "srv", 2).unwrap();
    drop(store);
    let before = dump_flows(&fx.path);

    let ro = fx.options().read_only(true).open(&fx.path).unwrap();
    let (state, _) = secrets(1);
    ro.check(&state).unwrap();
    ro.stats().unwrap();
    let mut errors = vec![
        ro.consume(&state).unwrap_err(),
        ro.begin(BeginRequest::new("srv")).unwrap_err(),
        ro.complete(&state, "code-abc").unwrap_err(),
        ro.reject(&state, "access_denied", None).unwrap_err(),
        ro.save_code_verifier("srv", None, &"v".repeat(43))
            .unwrap_err(),
        ro.invalidate("srv", None, InvalidateScope::All)
            .unwrap_err(),
    ];
    fx.clock.advance(std::time::Duration::from_secs(2 * 3600));
    errors.push(ro.sweep().unwrap_err());
    for e in &errors {
        assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
        assert!(e.to_string().contains("read-only"), "{e}");
        assert_error_clean(e, &SECRETS);
    }
    assert_eq!(dump_flows(&fx.path), before);
    drop(ro);
    fx.clock.rewind(std::time::Duration::from_secs(2 * 3600));
    consume_known(&fx.store(), 1).unwrap();
}

/// Case 8: read-only never creates a file, and a file that would need creating or migrating
/// is `MigrationNeeded` (typed), not a hang or a panic, and stays as it was.
#[test]
fn read_only_never_creates_or_migrates() {
    let fx = Fixture::new();
    let got = fx.options().read_only(true).open(&fx.path);
    assert!(matches!(got, Err(Error::DatabaseMissing { .. })), "{got:?}");
    assert!(!fx.path.exists());

    // An empty file (what a new store starts from) needs the schema written.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&fx.path)
        .unwrap();
    fs::set_permissions(
        &fx.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let got = fx.options().read_only(true).open(&fx.path);
    assert!(
        matches!(got, Err(Error::MigrationNeeded { found: 0, .. })),
        "{got:?}"
    );
    assert_eq!(fs::metadata(&fx.path).unwrap().len(), 0);
}

/// Case 8: as an ordinary user, a file without write permission. Root ignores the mode, so
/// there the read-only flag above is the proof.
#[test]
fn a_file_without_write_permission_is_read_only_for_a_non_root_user() {
    if common::running_as_root() {
        eprintln!(
            "SKIPPED: a_file_without_write_permission_is_read_only_for_a_non_root_user: root \
             ignores file modes; read_only(true) covers this case"
        );
        return;
    }
    let fx = Fixture::new();
    let store = fx.store();
    begin_known(&store, "srv", 1).unwrap();
    drop(store);
    checkpoint(&fx.path);
    fs::set_permissions(
        &fx.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    match fx.options().open(&fx.path) {
        Ok(store) => {
            let e = store.consume(&secrets(1).0).unwrap_err();
            assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
        }
        Err(e) => assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}"),
    }
}

/// A store with `n` known flows, checkpointed into the main file and closed.
fn populated(n: usize) -> Fixture {
    let fx = Fixture::new();
    let store = fx.store();
    for i in 0..n {
        begin_known(&store, "srv", i).unwrap();
    }
    drop(store);
    checkpoint(&fx.path);
    fx
}

fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Pseudo-random garbage, the same on every run.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Opens and uses a damaged file: every flow either consumes with exactly its own verifier or
/// fails with a typed error. Returns the errors seen. A file whose header no longer carries
/// the store's application id (cut before it, or its first page overwritten) cannot be told
/// from another program's: `NotAStore`, at open.
fn use_damaged(fx: &Fixture, n: usize) -> Vec<Error> {
    let mut errors = Vec::new();
    let store = match fx.options().open(&fx.path) {
        Ok(s) => s,
        Err(e) => {
            errors.push(e);
            return errors;
        }
    };
    for i in 0..n {
        if let Err(e) = consume_known(&store, i) {
            errors.push(e);
        }
    }
    if let Err(e) = store.stats() {
        errors.push(e);
    }
    if let Err(e) = store.begin(BeginRequest::new("srv")) {
        errors.push(e);
    }
    for e in &errors {
        assert!(
            matches!(
                e,
                Error::Corrupt { .. }
                    | Error::UnknownState
                    | Error::AlreadyConsumed
                    | Error::NotAStore { .. }
            ),
            "not a typed corruption error: {e:?}"
        );
        assert_error_clean(e, &SECRETS);
    }
    errors
}

fn is_corrupt(errors: &[Error]) -> bool {
    errors.iter().any(|e| matches!(e, Error::Corrupt { .. }))
}

/// Case 9: the 16-byte magic header replaced by garbage.
#[test]
fn a_garbage_header_is_corrupt_at_open() {
    let fx = populated(3);
    overwrite(&fx.path, 0, &garbage(16, 1));
    let got = fx.options().open(&fx.path);
    match got {
        Err(e @ Error::Corrupt { .. }) => {
            assert!(e.to_string().contains("oauth-state-store check"), "{e}");
            assert_error_clean(&e, &SECRETS);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Case 9: a file that was never a database (text, and random bytes) is not a store.
#[test]
fn a_non_database_file_is_not_a_store_at_open() {
    for (i, content) in [
        b"# not a database\nthis is a configuration file\n".repeat(200),
        garbage(10_000, 7),
        b"SQLite format 3\0".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let fx = Fixture::new();
        fs::write(&fx.path, &content).unwrap();
        fs::set_permissions(
            &fx.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let got = fx.options().open(&fx.path);
        assert!(
            matches!(got, Err(Error::NotAStore { .. })),
            "content {i}: {got:?}"
        );
        assert_eq!(
            fs::read(&fx.path).unwrap(),
            content,
            "content {i} was changed"
        );
    }
}

/// Case 9: the contract for a zero-length file is "a new, empty database": it is exactly what
/// the store itself creates (0600) before SQLite first writes to it, so another process may
/// be opening it at this very moment.
#[test]
fn a_zero_length_file_is_a_new_empty_database() {
    let fx = Fixture::new();
    fs::write(&fx.path, b"").unwrap();
    fs::set_permissions(
        &fx.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let store = fx.store();
    assert_eq!(store.migration().from, 0);
    assert_eq!(store.stats().unwrap().counts.total(), 0);
    begin_known(&store, "srv", 1).unwrap();
    consume_known(&store, 1).unwrap();
}

/// Case 9: a file cut short, at several lengths.
#[test]
fn a_truncated_file_is_a_typed_error_never_a_wrong_verifier() {
    let n = if heavy() { 2000 } else { 200 };
    let template = populated(n);
    let bytes = fs::read(&template.path).unwrap();
    let len = bytes.len();
    assert!(len > 4 * 4096, "want a multi-page file, got {len} bytes");
    let mut corrupt_seen = false;
    for cut in [50, 100, 4096, 4096 + 17, len / 2, len - 4096, len - 1] {
        let fx = Fixture::new();
        fs::write(&fx.path, &bytes[..cut]).unwrap();
        fs::set_permissions(
            &fx.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        // Cutting only a few trailing bytes of unused space may go unnoticed (SQLite reads
        // them as zeros): then every flow must still give exactly its own verifier, which
        // `use_damaged` checks.
        let errors = use_damaged(&fx, n);
        corrupt_seen |= is_corrupt(&errors);
    }
    assert!(corrupt_seen);
}

/// Case 9: one page overwritten with garbage, for each page of the file in turn.
#[test]
fn one_page_overwritten_is_a_typed_error_never_a_wrong_verifier() {
    let n = if heavy() { 1500 } else { 120 };
    let template = populated(n);
    let bytes = fs::read(&template.path).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(pages >= 4, "want several pages, got {pages}");
    let mut corrupt_seen = 0;
    for p in 0..pages {
        let fx = Fixture::new();
        let mut damaged = bytes.clone();
        // Page 1 keeps its 100-byte file header, so that the damage is found at use.
        let start = p * page + if p == 0 { 100 } else { 0 };
        damaged[start..(p + 1) * page].copy_from_slice(&garbage((p + 1) * page - start, p as u64));
        fs::write(&fx.path, &damaged).unwrap();
        fs::set_permissions(
            &fx.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let errors = use_damaged(&fx, n);
        corrupt_seen += usize::from(is_corrupt(&errors));
    }
    assert!(
        corrupt_seen > pages / 2,
        "only {corrupt_seen} of {pages} pages were noticed"
    );
}

/// Case 9: the subtle damage SQLite cannot see: one character of a stored verifier changed to
/// another valid one. Handing it out would fail the token exchange with a misleading PKCE
/// error; the store notices that it no longer matches the row's challenge.
#[test]
fn a_flipped_verifier_byte_is_corrupt_not_a_wrong_verifier() {
    let fx = populated(3);
    let (_, verifier) = secrets(1);
    let mut bytes = fs::read(&fx.path).unwrap();
    let at = bytes
        .windows(verifier.len())
        .position(|w| w == verifier.as_bytes())
        .expect("the verifier is in the checkpointed file");
    bytes[at + 5] = if bytes[at + 5] == b'A' { b'B' } else { b'A' };
    fs::write(&fx.path, &bytes).unwrap();
    let store = fx.store();
    let e = store.consume(&secrets(1).0).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert_error_clean(&e, &SECRETS);
    consume_known(&store, 0).unwrap();
    consume_known(&store, 2).unwrap();
}

/// Case 9: the same damage seen through `pending_verifier`, the SDK's state-less lookup.
#[test]
fn a_flipped_verifier_byte_is_corrupt_for_pending_verifier_too() {
    let fx = populated(1);
    let (_, verifier) = secrets(0);
    let mut bytes = fs::read(&fx.path).unwrap();
    let at = bytes
        .windows(verifier.len())
        .position(|w| w == verifier.as_bytes())
        .expect("the verifier is in the checkpointed file");
    bytes[at + 9] = if bytes[at + 9] == b'~' { b'.' } else { b'~' };
    fs::write(&fx.path, &bytes).unwrap();
    let e = fx.store().pending_verifier("srv", None).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert_error_clean(&e, &SECRETS);
}

/// Case 9: a state-key index entry that points at another flow's row (damage inside the index
/// that SQLite does not check on lookup) must not hand out the other flow's verifier.
#[test]
fn an_index_entry_pointing_at_another_row_is_corrupt_not_a_wrong_verifier() {
    let fx = populated(6);
    // The UNIQUE index on state_key maps each key to its row id; swap the two row ids in the
    // index page, so that state 0 leads to flow 1's row and state 1 to flow 0's.
    let raw = rusqlite::Connection::open(&fx.path).unwrap();
    // Flows 2 and 3 (0-based, begun one after the other with the same TTL) are the third and
    // fourth rows in id order. Their ids (expiry * 2^20 + n) are 8-byte integers in a record.
    let keys: Vec<(i64, Vec<u8>)> = raw
        .prepare("SELECT id, state_key FROM flows ORDER BY id LIMIT 2 OFFSET 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let index_root: i64 = raw
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_autoindex_flows_1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(raw);
    checkpoint(&fx.path);
    let mut bytes = fs::read(&fx.path).unwrap();
    let page = 4096usize;
    let start = (index_root as usize - 1) * page;
    let index_page = &mut bytes[start..start + page];
    let mut swapped = 0;
    for (id, key) in &keys {
        let other = keys.iter().find(|(o, _)| o != id).unwrap().0;
        let at = index_page
            .windows(key.len())
            .position(|w| w == &key[..])
            .expect("key in the index page");
        // The record's last field is the rowid, 8 big-endian bytes right after the key.
        let rowid_at = at + key.len();
        let stored = &mut index_page[rowid_at..rowid_at + 8];
        assert_eq!(
            i64::from_be_bytes(stored.try_into().unwrap()),
            *id,
            "unexpected index layout"
        );
        stored.copy_from_slice(&other.to_be_bytes());
        swapped += 1;
    }
    assert_eq!(swapped, 2);
    fs::write(&fx.path, &bytes).unwrap();
    let store = fx.store();
    for i in [2, 3] {
        match consume_known(&store, i) {
            Err(e) => {
                assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
                assert_error_clean(&e, &SECRETS);
            }
            Ok(()) => panic!("flow {i} consumed through a damaged index"),
        }
    }
}

/// Case 9 through the rmcp adapter: `RmcpStateStore::load` reads the row through the same
/// checked lookup as `consume`, so a flipped verifier byte is an error, never a wrong verifier
/// handed to rmcp's token exchange.
#[cfg(feature = "rmcp")]
#[tokio::test]
async fn a_flipped_verifier_byte_is_an_error_for_rmcp_load_too() {
    use oauth_state_store::RmcpStateStore;
    use rmcp::transport::auth::{AuthError, StateStore};
    let fx = populated(3);
    let (state, verifier) = secrets(1);
    let mut bytes = fs::read(&fx.path).unwrap();
    let at = bytes
        .windows(verifier.len())
        .position(|w| w == verifier.as_bytes())
        .expect("the verifier is in the checkpointed file");
    bytes[at + 5] = if bytes[at + 5] == b'A' { b'B' } else { b'A' };
    fs::write(&fx.path, &bytes).unwrap();
    let adapter = RmcpStateStore::new(fx.store(), "srv").unwrap();
    match adapter.load(&state).await {
        Err(AuthError::InternalError(message)) => {
            assert!(message.contains("corrupt"), "{message}");
            for secret in SECRETS {
                assert!(!message.contains(secret), "{message}");
            }
        }
        Err(other) => panic!("expected an internal error, got {other:?}"),
        Ok(Some(s)) => panic!(
            "load handed out a verifier from a damaged row (right one: {})",
            s.pkce_verifier == verifier
        ),
        Ok(None) => panic!("load reported a damaged row as absent"),
    }
    let (good, good_verifier) = secrets(2);
    let loaded = adapter.load(&good).await.unwrap().expect("undamaged flow");
    assert_eq!(loaded.pkce_verifier, good_verifier);
}
