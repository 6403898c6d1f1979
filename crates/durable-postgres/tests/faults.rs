//! Dropped connections and wake-ups from other processes.

use std::sync::Arc;
use std::time::Duration;

use durable_core::instance::NewInstance;
use durable_core::status::RuntimeStatus;
use durable_core::turn::{consume_only, prepare_turn};
use durable_core::work::{HistoryWrite, NameFilter, NewActivity, OrchestrationItem, TurnCommit};
use durable_postgres::PostgresStore;
use durable_store::{Store, StoreError};

use crate::support::{admin, app_name, drop_schema, fresh_options_with};

const LOCK: Duration = Duration::from_secs(30);
const WAKE: Duration = Duration::from_secs(5);

/// A turn that records the item's events and leaves the instance running.
fn record(item: &OrchestrationItem) -> TurnCommit {
    let prepared = prepare_turn(item, chrono::Utc::now());
    let mut commit = consume_only(item, &prepared);
    commit.history = HistoryWrite::Append {
        from: item.history_len,
        events: prepared.new_events,
    };
    commit.instance.status = RuntimeStatus::Running;
    commit
}

async fn claim(store: &PostgresStore) -> OrchestrationItem {
    let mut items = store
        .fetch_orchestration_items(1, LOCK, &NameFilter::All)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    items.remove(0)
}

/// Terminates the server sessions of `app` (those waiting on a lock only, with `waiting`).
async fn kill(app: &str, waiting: bool) -> i64 {
    let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
               WHERE application_name = $1 AND ($2 = false OR wait_event_type = 'Lock')";
    admin()
        .await
        .query_one(sql, &[&app, &waiting])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_call_is_unavailable_and_the_store_recovers() {
    let app = app_name("kill");
    let options = fresh_options_with(&format!("application_name={app}")).await;
    let schema = options.schema.clone();
    let store = Arc::new(PostgresStore::connect(options).await.unwrap());
    store
        .create_instance(NewInstance::new("Orch", "a"))
        .await
        .unwrap();
    let item = claim(&store).await;

    // Another session holds the instance row, so the commit waits inside the server.
    let mut blocker = admin().await;
    let tx = blocker.transaction().await.unwrap();
    tx.execute(
        &format!("SELECT 1 FROM {schema}.instances WHERE instance_id = 'a' FOR UPDATE"),
        &[],
    )
    .await
    .unwrap();
    let pending = {
        let (store, commit) = (store.clone(), record(&item));
        tokio::spawn(async move { store.commit_turn(commit).await })
    };
    let deadline = tokio::time::Instant::now() + WAKE;
    while kill(&app, true).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the commit never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    tx.rollback().await.unwrap();

    // Nothing of the interrupted commit was applied: the same commit goes through now.
    store.commit_turn(record(&item)).await.unwrap();
    assert_eq!(store.read_history("a").await.unwrap().len(), 2);

    // Every connection dies while idle (a server restart): calls work again at once or after
    // one Unavailable per dead pooled connection.
    assert!(kill(&app, false).await > 0);
    let mut failures = 0;
    loop {
        match store.get_instance("a").await {
            Ok(Some(s)) => {
                assert_eq!(s.status, RuntimeStatus::Running);
                break;
            }
            Err(StoreError::Unavailable(_)) if failures < 20 => failures += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(store);
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_of_another_process_wake_this_one() {
    let here_app = app_name("here");
    let options = fresh_options_with(&format!("application_name={here_app}")).await;
    let schema = options.schema.clone();
    let mut other_options = options.clone();
    other_options.config.application_name("durable_test_other");
    let here = PostgresStore::connect(options).await.unwrap();
    let other = PostgresStore::connect(other_options).await.unwrap();

    other
        .create_instance(NewInstance::new("Orch", "a"))
        .await
        .unwrap();
    tokio::time::timeout(WAKE, here.notifier().wait_orchestration_work())
        .await
        .expect("a start in another process wakes the orchestration dispatcher");

    let item = claim(&other).await;
    let watch = here.notifier().watch("a");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    let mut commit = record(&item);
    commit.activities.push(NewActivity {
        instance_id: "a".into(),
        execution_id: item.instance.execution_id.clone(),
        task_id: 1,
        name: "Act".into(),
        version: None,
        input: None,
        tags: Default::default(),
        trace_context: None,
    });
    other.commit_turn(commit).await.unwrap();
    tokio::time::timeout(WAKE, here.notifier().wait_activity_work())
        .await
        .expect("an activity scheduled in another process wakes the activity dispatcher");
    tokio::time::timeout(WAKE, changed)
        .await
        .expect("a status change in another process wakes the watchers");

    // The listening connection dies; the store reconnects, signals everything once (it may
    // have missed notifications), and hears the next change.
    assert!(kill(&here_app, false).await > 0);
    tokio::time::timeout(
        Duration::from_secs(10),
        here.notifier().wait_orchestration_work(),
    )
    .await
    .expect("a reconnect signals the dispatchers");
    other
        .create_instance(NewInstance::new("Orch", "b"))
        .await
        .unwrap();
    tokio::time::timeout(WAKE, here.notifier().wait_orchestration_work())
        .await
        .expect("notifications arrive after the reconnect");
    drop((here, other));
    drop_schema(&schema).await;
}
