//! A store opened only to look at its file (`StoreOptions::read_only`) creates and changes
//! nothing: no `-wal` or `-shm` left beside a cleanly closed file, and a `-wal` that a killed
//! application left is read where it is, never merged into the file.

mod common;

use common::{file_state, killed_writer, writer_child, Fixture};
use oauth_state_store::{BeginRequest, Error, FlowFilter, StoreOptions};

fn side_files(fx: &Fixture) -> Vec<String> {
    std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "flows.db")
        .collect()
}

#[test]
fn a_read_only_store_on_a_cleanly_closed_file_leaves_nothing_beside_it() {
    let fx = Fixture::new();
    let store = fx.store();
    store.begin(BeginRequest::new("srv")).unwrap();
    drop(store);
    assert_eq!(side_files(&fx), Vec::<String>::new(), "closed cleanly");
    let before = file_state(&fx.path);
    let looking = StoreOptions::default()
        .read_only(true)
        .open(&fx.path)
        .unwrap();
    assert_eq!(looking.stats().unwrap().counts.pending, 1);
    assert_eq!(looking.list_flows(&FlowFilter::new()).unwrap().len(), 1);
    assert_eq!(
        looking.file_info().unwrap().expect("a file").journal_mode,
        "wal"
    );
    let e = looking.begin(BeginRequest::new("srv")).unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
    drop(looking);
    assert_eq!(file_state(&fx.path), before);
    assert_eq!(side_files(&fx), Vec::<String>::new());
}

#[test]
fn a_read_only_store_reads_a_killed_applications_wal_without_merging_it() {
    let fx = Fixture::new();
    drop(fx.store());
    killed_writer("child_writer", &fx.path, 20);
    let before = file_state(&fx.path);
    let looking = StoreOptions::default()
        .read_only(true)
        .open(&fx.path)
        .unwrap();
    // The flows are in the -wal only, and the look sees them.
    assert_eq!(looking.stats().unwrap().counts.pending, 20);
    let info = looking.file_info().unwrap().expect("a file");
    assert!(info.wal_bytes.unwrap() > 0, "{info:?}");
    drop(looking);
    assert_eq!(file_state(&fx.path), before);
}

#[test]
#[ignore = "child process of killed_writer"]
fn child_writer() {
    writer_child();
}
