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

/// A database written by schema 2 (history in an `(instance_id, seq)` index) opens with every
/// history intact and in order.
#[tokio::test]
async fn a_schema_2_database_is_upgraded_with_its_histories() {
    use durable_core::event::{EventKind, HistoryEvent};
    use durable_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let event = |name: &str| {
        let kind = EventKind::EventRaised {
            name: name.into(),
            input: None,
        };
        HistoryEvent::unnumbered(chrono::Utc::now(), kind)
    };
    let (a0, a1, a2, b0) = (event("a0"), event("a1"), event("a2"), event("b0"));
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE journal (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, entries TEXT NOT NULL);
             CREATE TABLE history (instance_id TEXT NOT NULL, seq INTEGER NOT NULL,
                 events TEXT NOT NULL, PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;
             CREATE TABLE snapshot (instance_id TEXT PRIMARY KEY, slot TEXT NOT NULL) WITHOUT ROWID;
             INSERT INTO meta (key, value) VALUES ('checkpoint_seq', 0), ('next_key', 0);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        let json = |events: &[&HistoryEvent]| serde_json::to_string(events).unwrap();
        // Inserted out of order: the index, not the insertion order, gave the order.
        for (id, seq, events) in [
            ("a", 1, json(&[&a1, &a2])),
            ("b", 0, json(&[&b0])),
            ("a", 0, json(&[&a0])),
        ] {
            c.execute(
                "INSERT INTO history (instance_id, seq, events) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, seq, events],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(SqliteOptions::file(&path)).unwrap();
    assert_eq!(store.read_history("a").await.unwrap(), vec![a0, a1, a2]);
    assert_eq!(store.read_history("b").await.unwrap(), vec![b0]);
    assert!(store.read_history("c").await.unwrap().is_empty());
}

mod recovery {
    use std::time::Duration;

    use durable_core::event::{EventKind, HistoryEvent};
    use durable_core::instance::{InstanceQuery, NewInstance};
    use durable_core::status::RuntimeStatus;
    use durable_core::work::{
        ActivityResult, HistoryWrite, InstanceUpdate, NameFilter, NewActivity, NewMessage,
        TurnCommit,
    };
    use durable_sqlite::{SqliteOptions, SqliteStore};
    use durable_store::Store;

    const LOCK: Duration = Duration::from_secs(30);

    /// Writes a bit of everything: instances, turns with history, activities, results, events.
    async fn workload(store: &SqliteStore, round: usize) {
        for i in 0..5 {
            let mut n = NewInstance::new("Orch", format!("r{round}-{i}"));
            n.input = Some(format!("{i}"));
            store.create_instance(n).await.unwrap();
        }
        for item in store
            .fetch_orchestration_items(10, LOCK, &NameFilter::All)
            .await
            .unwrap()
        {
            let mut events = vec![HistoryEvent::unnumbered(
                chrono::Utc::now(),
                EventKind::OrchestratorStarted,
            )];
            events.extend(item.messages.iter().map(|m| m.event.clone()));
            let commit = TurnCommit {
                lease: item.lease.clone(),
                consumed: item.messages.iter().map(|m| m.id).collect(),
                history: HistoryWrite::Append {
                    from: item.history_len,
                    events,
                },
                instance: InstanceUpdate {
                    status: RuntimeStatus::Running,
                    execution_id: item.instance.execution_id.clone(),
                    version: None,
                    input: item.instance.input.clone(),
                    output: None,
                    custom_status: Some(format!("\"{round}\"")),
                    failure: None,
                    completed_at: None,
                },
                activities: vec![NewActivity {
                    instance_id: item.lease.instance_id.clone(),
                    execution_id: item.instance.execution_id.clone(),
                    task_id: 1,
                    name: "Act".into(),
                    version: None,
                    input: Some("1".into()),
                    tags: Default::default(),
                    trace_context: None,
                }],
                messages: vec![],
                children: vec![],
                cancelled_timers: vec![],
                terminate_children: None,
            };
            store.commit_turn(commit).await.unwrap();
        }
        for a in store
            .fetch_activity_items(3, LOCK, &NameFilter::All)
            .await
            .unwrap()
        {
            store
                .complete_activity(&a.lease, ActivityResult::Completed(Some("2".into())))
                .await
                .unwrap();
        }
        let event = HistoryEvent::unnumbered(
            chrono::Utc::now(),
            EventKind::EventRaised {
                name: "E".into(),
                input: Some("3".into()),
            },
        );
        let msg = NewMessage {
            instance_id: format!("r{round}-4"),
            execution_id: None,
            event,
            visible_at: None,
        };
        store.send_message(msg).await.unwrap();
        store.purge_instance("ghost", false).await.unwrap();
    }

    /// Everything a client or a worker can observe.
    async fn observe(store: &SqliteStore) -> String {
        let page = store
            .query_instances(&InstanceQuery {
                page_size: Some(1000),
                fetch_payloads: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = format!("{:?}\n", page.items);
        for s in &page.items {
            out += &format!("{:?}\n", store.read_history(&s.instance_id).await.unwrap());
        }
        let stats = store.queue_stats().await.unwrap();
        out += &format!(
            "{} {} {}\n",
            stats.orchestration_backlog, stats.activity_backlog, stats.pending_timers
        );
        out
    }

    async fn reopen_reproduces_the_state(checkpoint_ops: u64) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            checkpoint_ops,
            ..SqliteOptions::file(dir.path().join("r.db"))
        };
        let before = {
            let store = SqliteStore::open(options.clone()).unwrap();
            for round in 0..4 {
                workload(&store, round).await;
            }
            observe(&store).await
        };
        let store = SqliteStore::open(options.clone()).unwrap();
        assert_eq!(observe(&store).await, before);
        // The recovered store keeps working, and survives another restart.
        workload(&store, 9).await;
        let again = observe(&store).await;
        drop(store);
        let store = SqliteStore::open(options).unwrap();
        assert_eq!(observe(&store).await, again);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopening_replays_the_journal() {
        reopen_reproduces_the_state(1_000_000).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopening_loads_checkpoints_and_the_journal_after_them() {
        reopen_reproduces_the_state(7).await;
    }

    #[tokio::test]
    async fn one_process_owns_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::file(dir.path().join("owned.db"));
        let first = SqliteStore::open(options.clone()).unwrap();
        let err = SqliteStore::open(options.clone()).unwrap_err();
        assert!(
            err.to_string()
                .contains("in use by another durable process"),
            "{err}"
        );
        drop(first);
        assert!(
            SqliteStore::open(options).is_ok(),
            "free again once the owner is gone"
        );
    }
}
