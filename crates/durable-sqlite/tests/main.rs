//! The SQLite store against the shared conformance suite, on a file and in memory.

use std::sync::Arc;

use durable_core::clock::ManualClock;
use durable_sqlite::{SqliteOptions, SqliteStore};
use durable_store::SharedStore;

mod file {
    use super::*;

    async fn store(clock: ManualClock) -> SharedStore {
        // Each store gets its own directory; it lives until the process ends.
        let dir = tempfile::tempdir().unwrap().keep();
        let options = SqliteOptions::file(dir.join("durable.db"));
        Arc::new(SqliteStore::open_with_clock(options, Arc::new(clock)).unwrap())
    }

    durable_store::store_conformance!(store);
}

mod memory {
    use super::*;

    async fn store(clock: ManualClock) -> SharedStore {
        Arc::new(SqliteStore::open_with_clock(SqliteOptions::memory(), Arc::new(clock)).unwrap())
    }

    durable_store::store_conformance!(store);
}

#[test]
fn urls_parse() {
    use durable_sqlite::Synchronous;
    assert_eq!(
        SqliteOptions::from_url("sqlite::memory:").unwrap(),
        SqliteOptions::memory()
    );
    let o = SqliteOptions::from_url("sqlite://durable.db?sync=normal").unwrap();
    assert_eq!(o.path.as_deref(), Some(std::path::Path::new("durable.db")));
    assert_eq!(o.synchronous, Synchronous::Normal);
    assert_eq!(
        SqliteOptions::from_url("sqlite:///tmp/x.db")
            .unwrap()
            .path
            .as_deref(),
        Some(std::path::Path::new("/tmp/x.db"))
    );
    assert!(SqliteOptions::from_url("postgres://x").is_err());
    assert!(SqliteOptions::from_url("sqlite://x.db?sync=maybe").is_err());
    assert!(SqliteOptions::from_url("sqlite://x.db?cache=1").is_err());
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    use durable_core::instance::NewInstance;
    use durable_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    {
        let store = SqliteStore::open(SqliteOptions::file(&path)).unwrap();
        store
            .create_instance(NewInstance::new("Orch", "keep"))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(SqliteOptions::file(&path)).unwrap();
    let s = store.get_instance("keep").await.unwrap().unwrap();
    assert_eq!(s.name, "Orch");
}
