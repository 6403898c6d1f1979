//! Removing empty entities: what counts as empty, and that a send racing the removal is never
//! lost.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use durable_core::clock::ManualClock;
use durable_core::event::EventKind;
use durable_core::status::RuntimeStatus;
use durable_core::work::{HistoryWrite, NewMessage, OrchestrationItem, SendOutcome, TurnCommit};

use super::{ALL, LOCK, event_to, fetch_one, new_instance, raised, start_time, turn};
use crate::SharedStore;

fn signal(entity: &str, request: &str) -> NewMessage {
    event_to(
        entity,
        EventKind::EntityOperationSignaled {
            request_id: request.into(),
            operation: "add".into(),
            scheduled_time: None,
            input: Some("1".into()),
            target_instance_id: Some(entity.into()),
        },
    )
}

/// An entity batch over the claimed item: the given state, no history.
fn batch(item: &OrchestrationItem, state: Option<&str>) -> TurnCommit {
    let mut commit = turn(item, RuntimeStatus::Running);
    commit.history = HistoryWrite::Append {
        from: item.history_len,
        events: vec![],
    };
    commit.instance.custom_status = state.map(Into::into);
    commit
}

async fn run_batch(store: &SharedStore, item: &OrchestrationItem, state: Option<&str>) {
    store.commit_turn(batch(item, state)).await.unwrap();
}

async fn exists(store: &SharedStore, id: &str) -> bool {
    store.get_instance(id).await.unwrap().is_some()
}

pub async fn empty_entities_are_removed<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let store = factory(ManualClock::new(start_time())).await;
    // Only entities are removed, and only existing ones.
    store.create_instance(new_instance("orch")).await.unwrap();
    assert!(!store.remove_empty_entity("orch").await.unwrap());
    assert!(exists(&store, "orch").await);
    assert!(!store.remove_empty_entity("@counter@nobody").await.unwrap());
    let orch = fetch_one(&store).await;
    store
        .commit_turn(turn(&orch, RuntimeStatus::Running))
        .await
        .unwrap();

    // A message in the inbox keeps an entity, claimed or not; so does a state.
    store
        .send_message(signal("@counter@a", "r1"))
        .await
        .unwrap();
    assert!(!store.remove_empty_entity("@counter@a").await.unwrap());
    let item = fetch_one(&store).await;
    assert!(!store.remove_empty_entity("@counter@a").await.unwrap());
    run_batch(&store, &item, Some("1")).await;
    assert!(!store.remove_empty_entity("@counter@a").await.unwrap());
    assert!(exists(&store, "@counter@a").await);

    // A signal not visible yet keeps it.
    let mut later = signal("@counter@b", "r2");
    later.visible_at = Some(start_time() + chrono::Duration::hours(1));
    store.send_message(later).await.unwrap();
    assert!(!store.remove_empty_entity("@counter@b").await.unwrap());

    // A schedule (a lock, or operations waiting for one) keeps it.
    store
        .send_message(signal("@counter@c", "r3"))
        .await
        .unwrap();
    let item = fetch_one(&store).await;
    let mut commit = batch(&item, None);
    commit.instance.input = Some(r#"{"lock":{"criticalSectionId":"s","owner":"o"}}"#.into());
    store.commit_turn(commit).await.unwrap();
    assert!(!store.remove_empty_entity("@counter@c").await.unwrap());

    // Nothing at all: it goes, once, and comes back when addressed again.
    store
        .send_message(signal("@counter@d", "r4"))
        .await
        .unwrap();
    let item = fetch_one(&store).await;
    run_batch(&store, &item, None).await;
    assert!(store.remove_empty_entity("@counter@d").await.unwrap());
    assert!(!exists(&store, "@counter@d").await);
    assert!(!store.remove_empty_entity("@counter@d").await.unwrap());
    assert_eq!(
        store
            .send_message(signal("@counter@d", "r5"))
            .await
            .unwrap(),
        SendOutcome::Queued
    );
    let item = fetch_one(&store).await;
    assert_eq!(item.lease.instance_id, "@counter@d");
    assert_eq!(item.messages.len(), 1);
    for kept in ["@counter@a", "@counter@b", "@counter@c"] {
        assert!(exists(&store, kept).await, "{kept}");
    }
}

/// Signals from clients and from orchestration turns race a remover that deletes the entity
/// whenever it is empty: every signal is delivered exactly once.
pub async fn removal_races_no_signal_away<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    const ENTITY: &str = "@counter@hot";
    const CLIENT_SIGNALS: usize = 30;
    const TURN_SIGNALS: usize = 15;
    let removals = Arc::new(AtomicUsize::new(0));
    for _iteration in 0..20 {
        let store = factory(ManualClock::new(start_time())).await;
        store.create_instance(new_instance("sender")).await.unwrap();
        let first = fetch_one(&store).await;
        store
            .commit_turn(turn(&first, RuntimeStatus::Running))
            .await
            .unwrap();
        let clients = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..CLIENT_SIGNALS {
                    let sent = store.send_message(signal(ENTITY, &format!("c{i}"))).await;
                    assert_eq!(sent.unwrap(), SendOutcome::Queued);
                    let event = event_to("sender", raised("E", &i.to_string()));
                    if i < TURN_SIGNALS {
                        store.send_message(event).await.unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let remover = {
            let (store, stop, removals) = (store.clone(), stop.clone(), removals.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if store.remove_empty_entity(ENTITY).await.unwrap() {
                        removals.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let delivered = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let worker = {
            let (store, delivered) = (store.clone(), delivered.clone());
            tokio::spawn(async move { work(&store, &delivered, 50).await })
        };
        clients.await.unwrap();
        worker.await.unwrap();
        stop.store(true, Ordering::Relaxed);
        remover.await.unwrap();
        // Whatever arrived after the worker went idle.
        work(&store, &delivered, 1).await;
        let mut got = delivered.lock().clone();
        got.sort();
        let mut want: Vec<String> = (0..CLIENT_SIGNALS)
            .map(|i| format!("c{i}"))
            .chain((0..TURN_SIGNALS).map(|i| format!("t{i}")))
            .collect();
        want.sort();
        assert_eq!(got, want, "every signal exactly once");
    }
    assert!(
        removals.load(Ordering::Relaxed) > 0,
        "the remover never found the entity empty: the race was not exercised"
    );
}

/// Claims and handles work until `patience` claims in a row found none.
async fn work(store: &SharedStore, delivered: &parking_lot::Mutex<Vec<String>>, patience: u32) {
    let mut idle = 0;
    while idle < patience {
        let items = store
            .fetch_orchestration_items(4, LOCK, &ALL)
            .await
            .unwrap();
        if items.is_empty() {
            idle += 1;
            tokio::task::yield_now().await;
            continue;
        }
        idle = 0;
        for item in items {
            handle(store, &item, delivered).await;
        }
    }
}

/// The entity records its signals and keeps no state; the orchestration `sender` signals the
/// entity once for every event it receives.
async fn handle(
    store: &SharedStore,
    item: &OrchestrationItem,
    delivered: &parking_lot::Mutex<Vec<String>>,
) {
    if item.lease.instance_id == "sender" {
        let mut commit = turn(item, RuntimeStatus::Running);
        commit.messages = item
            .messages
            .iter()
            .filter_map(|m| match &m.event.kind {
                EventKind::EventRaised { input, .. } => {
                    let n = input.as_deref().unwrap_or_default();
                    Some(signal("@counter@hot", &format!("t{n}")))
                }
                _ => None,
            })
            .collect();
        store.commit_turn(commit).await.unwrap();
        return;
    }
    for m in &item.messages {
        if let EventKind::EntityOperationSignaled { request_id, .. } = &m.event.kind {
            delivered.lock().push(request_id.clone());
        }
    }
    run_batch(store, item, None).await;
}
