//! What a store on a server says about itself, against a real server.

use crate::backend::postgres::test_cluster as pg;
use crate::Store;

/// A database server has no file: the store answers its server's facts, and no file facts
/// (before, `file_info` answered with SQLite's version and the table's size as a file's).
#[test]
fn a_store_on_a_server_answers_server_facts_and_no_file_facts() {
    let Some(cluster) = pg::cluster("server_facts") else {
        return;
    };
    let store = Store::open(cluster.fresh_database("server_facts")).unwrap();
    assert_eq!(store.file_info().unwrap(), None);
    let info = store.server_info().unwrap().expect("a server's facts");
    assert_eq!(info.engine, "postgresql");
    assert_eq!(info.schema_version, info.supported_schema_version);
    assert_eq!(info.store_id, store.store_id());
    let tables: Vec<&str> = info
        .relations
        .iter()
        .filter(|r| r.name == r.table)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(tables, ["flows", "meta", "token_sets"]);
}
