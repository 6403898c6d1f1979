//! The conformance suite every [`Store`] must pass. A backend runs all of it with one line:
//!
//! ```ignore
//! durable_store::store_conformance!(my_factory);
//! // where: async fn my_factory(clock: ManualClock) -> SharedStore
//! ```
//!
//! Time is a [`ManualClock`], so lease expiry and timers are tested without sleeping. The
//! concurrency tests run in loops.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use durable_core::clock::ManualClock;
use durable_core::event::{EventKind, HistoryEvent, OrchestrationInstance, ParentInstance};
use durable_core::failure::FailureDetails;
use durable_core::instance::{IfExists, InstanceQuery, NewInstance, PurgeFilter};
use durable_core::status::RuntimeStatus;
use durable_core::work::{
    ActivityResult, HistoryWrite, InstanceUpdate, NameFilter, NewActivity, NewChild, NewMessage,
    OrchestrationItem, SendOutcome, TurnCommit,
};

use crate::{SharedStore, StoreError};

mod entities;
pub use entities::{empty_entities_are_removed, removal_races_no_signal_away};

const LOCK: Duration = Duration::from_secs(30);
const ALL: NameFilter = NameFilter::All;

pub fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn ev(kind: EventKind) -> HistoryEvent {
    HistoryEvent::unnumbered(start_time(), kind)
}

fn raised(name: &str, data: &str) -> EventKind {
    EventKind::EventRaised {
        name: name.into(),
        input: Some(data.into()),
    }
}

fn new_instance(id: &str) -> NewInstance {
    let mut n = NewInstance::new("Orch", id);
    n.input = Some("\"in\"".into());
    n
}

fn event_to(id: &str, kind: EventKind) -> NewMessage {
    NewMessage {
        instance_id: id.into(),
        execution_id: None,
        event: ev(kind),
        visible_at: None,
    }
}

/// A commit that records the delivered events and updates status, with nothing else.
fn turn(item: &OrchestrationItem, status: RuntimeStatus) -> TurnCommit {
    let mut events = vec![ev(EventKind::OrchestratorStarted)];
    events.extend(item.messages.iter().map(|m| m.event.clone()));
    TurnCommit {
        lease: item.lease.clone(),
        consumed: item.messages.iter().map(|m| m.id).collect(),
        history: HistoryWrite::Append {
            from: item.history_len,
            events,
        },
        instance: InstanceUpdate {
            status,
            execution_id: item.instance.execution_id.clone(),
            version: item.instance.version.clone(),
            input: item.instance.input.clone(),
            output: if status == RuntimeStatus::Completed {
                Some("\"out\"".into())
            } else {
                None
            },
            custom_status: None,
            failure: None,
            completed_at: status.is_terminal().then(start_time),
        },
        activities: vec![],
        messages: vec![],
        children: vec![],
        cancelled_timers: vec![],
        terminate_children: None,
    }
}

fn activity(item: &OrchestrationItem, task_id: i32) -> NewActivity {
    NewActivity {
        instance_id: item.instance.instance_id.clone(),
        execution_id: item.instance.execution_id.clone(),
        task_id,
        name: "Act".into(),
        version: None,
        input: Some(task_id.to_string()),
        tags: Default::default(),
        trace_context: None,
    }
}

async fn fetch_one(store: &SharedStore) -> OrchestrationItem {
    let mut items = store
        .fetch_orchestration_items(1, LOCK, &ALL)
        .await
        .unwrap();
    assert_eq!(items.len(), 1, "expected one orchestration item");
    items.remove(0)
}

async fn started(store: &SharedStore, id: &str) -> OrchestrationItem {
    store.create_instance(new_instance(id)).await.unwrap();
    let item = fetch_one(store).await;
    assert_eq!(item.lease.instance_id, id);
    item
}

pub async fn create_and_get<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let mut n = new_instance("a");
    n.tags.insert("k".into(), "v".into());
    n.version = Some("1.0".into());
    store.create_instance(n.clone()).await.unwrap();
    let s = store.get_instance("a").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::Pending);
    assert_eq!(s.name, "Orch");
    assert_eq!(s.input.as_deref(), Some("\"in\""));
    assert_eq!(s.version.as_deref(), Some("1.0"));
    assert_eq!(s.execution_id, n.execution_id);
    assert_eq!(s.created_at, start_time());
    assert_eq!(s.tags.get("k").map(String::as_str), Some("v"));
    assert!(store.get_instance("nope").await.unwrap().is_none());

    let err = store.create_instance(new_instance("a")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let mut replace = new_instance("a");
    replace.if_exists = IfExists::replace_terminal();
    let err = store.create_instance(replace).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(_)),
        "a live instance is never replaced"
    );
}

pub async fn fetch_claims_and_commit_records<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    store.create_instance(new_instance("a")).await.unwrap();
    let item = fetch_one(&store).await;
    assert_eq!(item.history_len, 0);
    assert_eq!(item.messages.len(), 1);
    assert_eq!(item.messages[0].delivery_count, 1);
    assert!(matches!(
        item.messages[0].event.kind,
        EventKind::ExecutionStarted { .. }
    ));
    assert!(
        store
            .fetch_orchestration_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty(),
        "a leased instance is not handed out twice"
    );

    // An event that arrives during the turn is not consumed by it.
    store
        .send_message(event_to("a", raised("E", "1")))
        .await
        .unwrap();
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.activities.push(activity(&item, 1));
    commit.instance.custom_status = Some("\"cs\"".into());
    store.commit_turn(commit).await.unwrap();

    let s = store.get_instance("a").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::Running);
    assert_eq!(s.custom_status.as_deref(), Some("\"cs\""));
    let history = store.read_history("a").await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(matches!(history[0].kind, EventKind::OrchestratorStarted));
    assert!(matches!(
        history[1].kind,
        EventKind::ExecutionStarted { .. }
    ));

    let next = fetch_one(&store).await;
    assert_eq!(next.history_len, 2);
    assert_eq!(next.messages.len(), 1);
    assert_eq!(next.messages[0].event.kind, raised("E", "1"));
    assert!(next.lease.epoch > item.lease.epoch);
}

pub async fn stale_lease_is_refused<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let first = started(&store, "a").await;
    // The lease expires and another worker takes the instance over.
    clock.advance(chrono::Duration::seconds(31));
    let second = fetch_one(&store).await;
    assert!(second.lease.epoch > first.lease.epoch);
    assert_eq!(
        second.messages[0].delivery_count, 2,
        "each delivery is counted"
    );

    let err = store
        .commit_turn(turn(&first, RuntimeStatus::Running))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease(_)), "{err:?}");
    assert!(
        store.read_history("a").await.unwrap().is_empty(),
        "a refused commit changes nothing"
    );
    let err = store
        .renew_orchestration_lease(&first.lease, LOCK)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease(_)));
    let err = store
        .abandon_orchestration_item(&first.lease, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease(_)));

    store
        .commit_turn(turn(&second, RuntimeStatus::Running))
        .await
        .unwrap();
    assert_eq!(store.read_history("a").await.unwrap().len(), 2);
    // The same commit twice: the second carries a history position that no longer matches.
    let err = store
        .commit_turn(turn(&second, RuntimeStatus::Running))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease(_)), "{err:?}");
}

pub async fn renew_and_abandon<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let item = started(&store, "a").await;
    clock.advance(chrono::Duration::seconds(20));
    store
        .renew_orchestration_lease(&item.lease, LOCK)
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(20));
    assert!(
        store
            .fetch_orchestration_items(1, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease holds past its first expiry"
    );
    store
        .abandon_orchestration_item(&item.lease, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(
        store
            .fetch_orchestration_items(1, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty()
    );
    // An event that arrives during the delay does not overtake the start.
    store
        .send_message(event_to("a", raised("E", "1")))
        .await
        .unwrap();
    assert!(
        store
            .fetch_orchestration_items(1, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty(),
        "the instance stays unclaimable during the delay"
    );
    clock.advance(chrono::Duration::seconds(6));
    let again = fetch_one(&store).await;
    assert_eq!(again.messages[0].delivery_count, 2);
    assert!(matches!(
        again.messages[0].event.kind,
        EventKind::ExecutionStarted { .. }
    ));
    assert_eq!(again.messages[1].event.kind, raised("E", "1"));
}

pub async fn messages_keep_order_and_respect_visibility<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let item = started(&store, "a").await;
    let mut commit = turn(&item, RuntimeStatus::Running);
    let fire_at = start_time() + chrono::Duration::seconds(60);
    commit.messages.push(NewMessage {
        instance_id: "a".into(),
        execution_id: Some(item.instance.execution_id.clone()),
        event: ev(EventKind::TimerFired {
            fire_at,
            timer_id: 1,
        }),
        visible_at: Some(fire_at),
    });
    store.commit_turn(commit).await.unwrap();
    for i in 0..5 {
        store
            .send_message(event_to("a", raised("E", &i.to_string())))
            .await
            .unwrap();
    }
    let item = fetch_one(&store).await;
    let data: Vec<_> = item
        .messages
        .iter()
        .map(|m| match &m.event.kind {
            EventKind::EventRaised { input, .. } => input.clone().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        data,
        ["0", "1", "2", "3", "4"],
        "commit order, timer not yet visible"
    );
    store
        .commit_turn(turn(&item, RuntimeStatus::Running))
        .await
        .unwrap();
    assert!(
        store
            .fetch_orchestration_items(1, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.pending_timers, 1);
    assert_eq!(store.next_due().await.unwrap(), Some(fire_at));
    clock.advance(chrono::Duration::seconds(60));
    let item = fetch_one(&store).await;
    assert!(matches!(
        item.messages[0].event.kind,
        EventKind::TimerFired { timer_id: 1, .. }
    ));
}

pub async fn activities_round_trip<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let item = started(&store, "a").await;
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.activities = vec![activity(&item, 1), activity(&item, 2)];
    store.commit_turn(commit).await.unwrap();

    let acts = store.fetch_activity_items(10, LOCK, &ALL).await.unwrap();
    assert_eq!(acts.len(), 2);
    assert_eq!(acts[0].activity.task_id, 1, "enqueue order");
    assert_eq!(acts[0].delivery_count, 1);
    assert!(
        store
            .fetch_activity_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty()
    );

    // Lease expiry hands the second out again; the first owner's completion is then stale.
    clock.advance(chrono::Duration::seconds(31));
    store
        .renew_activity_lease(&acts[0].lease, LOCK)
        .await
        .unwrap();
    let again = store.fetch_activity_items(10, LOCK, &ALL).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].activity.task_id, 2);
    assert_eq!(again[0].delivery_count, 2);
    let err = store
        .complete_activity(&acts[1].lease, ActivityResult::Completed(Some("0".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease(_)));

    store
        .complete_activity(&acts[0].lease, ActivityResult::Completed(Some("10".into())))
        .await
        .unwrap();
    store
        .complete_activity(
            &again[0].lease,
            ActivityResult::Failed(FailureDetails::new("E", "boom")),
        )
        .await
        .unwrap();
    let err = store
        .complete_activity(&acts[0].lease, ActivityResult::Completed(None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StaleLease(_)),
        "completing twice is refused"
    );

    let item = fetch_one(&store).await;
    assert_eq!(item.messages.len(), 2);
    assert_eq!(
        item.messages[0].execution_id.as_deref(),
        Some(item.instance.execution_id.as_str())
    );
    assert!(matches!(
        &item.messages[0].event.kind,
        EventKind::TaskCompleted { task_scheduled_id: 1, result: Some(r) } if r == "10"
    ));
    assert!(matches!(
        &item.messages[1].event.kind,
        EventKind::TaskFailed { task_scheduled_id: 2, failure_details } if failure_details.error_message == "boom"
    ));

    // Abandon with a delay.
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.activities = vec![activity(&item, 3)];
    store.commit_turn(commit).await.unwrap();
    let acts = store.fetch_activity_items(10, LOCK, &ALL).await.unwrap();
    store
        .abandon_activity_item(&acts[0].lease, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        store
            .fetch_activity_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(chrono::Duration::seconds(11));
    assert_eq!(
        store
            .fetch_activity_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn finished_instances_receive_nothing<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let err = store
        .send_message(event_to("ghost", raised("E", "1")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));

    let item = started(&store, "a").await;
    store
        .send_message(event_to("a", raised("late", "1")))
        .await
        .unwrap();
    let mut commit = turn(&item, RuntimeStatus::Completed);
    // A message to itself in the finishing turn is dropped.
    commit.messages.push(event_to("a", raised("self", "1")));
    store.commit_turn(commit).await.unwrap();
    let s = store.get_instance("a").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::Completed);
    assert_eq!(s.output.as_deref(), Some("\"out\""));
    assert_eq!(s.completed_at, Some(start_time()));
    assert_eq!(
        store
            .send_message(event_to("a", raised("E", "1")))
            .await
            .unwrap(),
        SendOutcome::InstanceTerminal
    );
    assert!(
        store
            .fetch_orchestration_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.orchestration_backlog, 0);

    // A finished instance may be replaced when the policy allows it.
    let mut again = new_instance("a");
    again.if_exists = IfExists::replace_terminal();
    store.create_instance(again.clone()).await.unwrap();
    let s = store.get_instance("a").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::Pending);
    assert_eq!(s.execution_id, again.execution_id);
    assert!(store.read_history("a").await.unwrap().is_empty());
}

pub async fn children_and_conflicts<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    store.create_instance(new_instance("busy")).await.unwrap();
    let busy = fetch_one(&store).await;
    store
        .commit_turn(turn(&busy, RuntimeStatus::Running))
        .await
        .unwrap();

    let parent = started(&store, "p").await;
    let child = |id: &str, task: i32| {
        let mut n = new_instance(id);
        n.parent = Some(ParentInstance {
            task_scheduled_id: task,
            name: Some("Orch".into()),
            version: None,
            orchestration_instance: OrchestrationInstance {
                instance_id: "p".into(),
                execution_id: Some(parent.instance.execution_id.clone()),
            },
        });
        n.if_exists = IfExists::replace_terminal();
        NewChild {
            instance: n,
            on_conflict: NewMessage {
                instance_id: "p".into(),
                execution_id: Some(parent.instance.execution_id.clone()),
                event: ev(EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: task,
                    failure_details: FailureDetails::new("InstanceExists", "running"),
                }),
                visible_at: None,
            },
        }
    };
    let mut commit = turn(&parent, RuntimeStatus::Running);
    commit.children = vec![child("c1", 1), child("busy", 2)];
    store.commit_turn(commit).await.unwrap();

    let c1 = store.get_instance("c1").await.unwrap().unwrap();
    assert_eq!(c1.status, RuntimeStatus::Pending);
    assert_eq!(c1.parent_instance_id(), Some("p"));
    let busy_state = store.get_instance("busy").await.unwrap().unwrap();
    assert!(
        busy_state.parent.is_none(),
        "a running instance is not replaced"
    );

    let mut seen = HashSet::new();
    for item in store
        .fetch_orchestration_items(10, LOCK, &ALL)
        .await
        .unwrap()
    {
        if item.lease.instance_id == "p" {
            assert!(matches!(
                item.messages[0].event.kind,
                EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: 2,
                    ..
                }
            ));
            let mut commit = turn(&item, RuntimeStatus::Terminated);
            commit.terminate_children = Some(Some("\"stop\"".into()));
            store.commit_turn(commit).await.unwrap();
        } else {
            store
                .commit_turn(turn(&item, RuntimeStatus::Running))
                .await
                .unwrap();
        }
        seen.insert(item.lease.instance_id);
    }
    assert!(seen.contains("p") && seen.contains("c1"), "{seen:?}");
    // The child got a terminate message; the unrelated instance did not.
    let items = store
        .fetch_orchestration_items(10, LOCK, &ALL)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].lease.instance_id, "c1");
    assert!(matches!(
        &items[0].messages[0].event.kind,
        EventKind::ExecutionTerminated { recurse: true, input: Some(i) } if i == "\"stop\""
    ));
}

pub async fn continue_as_new_and_cancelled_timers<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let item = started(&store, "a").await;
    let exec1 = item.instance.execution_id.clone();
    let timer = |exec: &str, id: i32, secs: i64| {
        let at = start_time() + chrono::Duration::seconds(secs);
        NewMessage {
            instance_id: "a".into(),
            execution_id: Some(exec.into()),
            event: ev(EventKind::TimerFired {
                fire_at: at,
                timer_id: id,
            }),
            visible_at: Some(at),
        }
    };
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.messages = vec![timer(&exec1, 1, 10), timer(&exec1, 2, 20)];
    store.commit_turn(commit).await.unwrap();
    store
        .send_message(event_to("a", raised("E", "1")))
        .await
        .unwrap();
    let item = fetch_one(&store).await;
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.cancelled_timers = vec![1];
    store.commit_turn(commit).await.unwrap();
    assert_eq!(store.queue_stats().await.unwrap().pending_timers, 1);

    // Continue as new: fresh history, new execution, new start message.
    store
        .send_message(event_to("a", raised("E", "2")))
        .await
        .unwrap();
    let item = fetch_one(&store).await;
    let exec2 = durable_core::ids::new_execution_id();
    let mut commit = turn(&item, RuntimeStatus::ContinuedAsNew);
    commit.history = HistoryWrite::Replace {
        execution_id: exec2.clone(),
        events: vec![],
    };
    commit.instance.execution_id = exec2.clone();
    commit.instance.input = Some("2".into());
    let mut restart = new_instance("a");
    restart.execution_id = exec2.clone();
    commit.messages = vec![NewMessage {
        instance_id: "a".into(),
        execution_id: Some(exec2.clone()),
        event: restart.started_event(start_time()),
        visible_at: None,
    }];
    store.commit_turn(commit).await.unwrap();
    let s = store.get_instance("a").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::ContinuedAsNew);
    assert_eq!(s.execution_id, exec2);
    assert_eq!(s.input.as_deref(), Some("2"));
    assert!(store.read_history("a").await.unwrap().is_empty());
    let item = fetch_one(&store).await;
    assert_eq!(item.history_len, 0);
    assert_eq!(
        item.messages[0].execution_id.as_deref(),
        Some(exec2.as_str())
    );
}

pub async fn scheduled_start_and_terminating_it<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    for id in ["later", "stopped"] {
        let mut n = new_instance(id);
        n.scheduled_start_at = Some(start_time() + chrono::Duration::hours(1));
        store.create_instance(n).await.unwrap();
    }
    store
        .send_message(event_to("later", raised("early", "1")))
        .await
        .unwrap();
    assert!(
        store
            .fetch_orchestration_items(10, LOCK, &ALL)
            .await
            .unwrap()
            .is_empty(),
        "nothing runs before its scheduled start, even with events waiting"
    );
    let terminate = EventKind::ExecutionTerminated {
        input: Some("\"no\"".into()),
        recurse: false,
    };
    store
        .send_message(event_to("stopped", terminate))
        .await
        .unwrap();
    let item = fetch_one(&store).await;
    assert_eq!(item.lease.instance_id, "stopped");
    assert_eq!(
        item.messages.len(),
        2,
        "the start became visible with the terminate"
    );
    store
        .commit_turn(turn(&item, RuntimeStatus::Terminated))
        .await
        .unwrap();
    clock.advance(chrono::Duration::hours(1));
    let item = fetch_one(&store).await;
    assert_eq!(item.lease.instance_id, "later");
    assert_eq!(item.messages.len(), 2);
}

pub async fn query_and_paging<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    for i in 0..7 {
        let mut n = new_instance(&format!("job-{i}"));
        if i >= 5 {
            n.name = "Other".into();
            n.instance_id = format!("misc-{i}");
        }
        store.create_instance(n).await.unwrap();
        clock.advance(chrono::Duration::seconds(1));
    }
    let item = fetch_one(&store).await;
    assert_eq!(item.lease.instance_id, "job-0");
    store
        .commit_turn(turn(&item, RuntimeStatus::Completed))
        .await
        .unwrap();

    let all = store
        .query_instances(&InstanceQuery::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 7);
    assert!(all.continuation_token.is_none());
    assert!(all.items[0].input.is_none(), "payloads only on request");

    let q = InstanceQuery {
        statuses: vec![RuntimeStatus::Completed],
        fetch_payloads: true,
        ..Default::default()
    };
    let done = store.query_instances(&q).await.unwrap();
    assert_eq!(done.items.len(), 1);
    assert_eq!(done.items[0].output.as_deref(), Some("\"out\""));

    let q = InstanceQuery {
        instance_id_prefix: Some("job-".into()),
        page_size: Some(2),
        ..Default::default()
    };
    let mut ids = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = store
            .query_instances(&InstanceQuery {
                continuation_token: token.clone(),
                ..q.clone()
            })
            .await
            .unwrap();
        pages += 1;
        ids.extend(page.items.iter().map(|s| s.instance_id.clone()));
        token = page.continuation_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(ids, ["job-0", "job-1", "job-2", "job-3", "job-4"]);
    assert_eq!(pages, 3);

    let q = InstanceQuery {
        name: Some("Other".into()),
        ..Default::default()
    };
    assert_eq!(store.query_instances(&q).await.unwrap().items.len(), 2);
    let q = InstanceQuery {
        created_from: Some(start_time() + chrono::Duration::seconds(2)),
        created_to: Some(start_time() + chrono::Duration::seconds(4)),
        ..Default::default()
    };
    let window: Vec<_> = store
        .query_instances(&q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.instance_id)
        .collect();
    assert_eq!(
        window,
        ["job-2", "job-3"],
        "from is inclusive, to exclusive"
    );

    // Instances created in the same instant, at a time finer than a microsecond, page cleanly.
    clock.advance(chrono::Duration::nanoseconds(123_456_789));
    for id in ["same-a", "same-b", "same-c"] {
        store.create_instance(new_instance(id)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let q = InstanceQuery {
            instance_id_prefix: Some("same-".into()),
            page_size: Some(1),
            continuation_token: token.clone(),
            ..Default::default()
        };
        let page = store.query_instances(&q).await.unwrap();
        seen.extend(page.items.into_iter().map(|s| s.instance_id));
        token = page.continuation_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["same-a", "same-b", "same-c"]);
}

pub async fn purge_and_rewind<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let running = started(&store, "running").await;
    store
        .commit_turn(turn(&running, RuntimeStatus::Running))
        .await
        .unwrap();
    assert_eq!(
        store.purge_instance("running", true).await.unwrap(),
        0,
        "live instances stay"
    );
    assert_eq!(store.purge_instance("ghost", true).await.unwrap(), 0);

    let failed = started(&store, "failed").await;
    let mut commit = turn(&failed, RuntimeStatus::Failed);
    commit.instance.failure = Some(FailureDetails::new("E", "boom"));
    store.commit_turn(commit).await.unwrap();
    let err = store
        .rewind_instance(
            "running",
            ev(EventKind::ExecutionRewound {
                reason: None,
                parent_execution_id: None,
                instance_id: None,
                parent_trace_context: None,
                name: None,
                version: None,
                input: None,
                parent_instance: None,
                tags: Default::default(),
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err:?}");
    let rewound = ev(EventKind::ExecutionRewound {
        reason: Some("retry".into()),
        parent_execution_id: None,
        instance_id: None,
        parent_trace_context: None,
        name: None,
        version: None,
        input: None,
        parent_instance: None,
        tags: Default::default(),
    });
    let err = store
        .rewind_instance("ghost", rewound.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    store.rewind_instance("failed", rewound).await.unwrap();
    let s = store.get_instance("failed").await.unwrap().unwrap();
    assert_eq!(s.status, RuntimeStatus::Running);
    assert!(s.failure.is_none());
    let item = fetch_one(&store).await;
    assert!(matches!(
        item.messages[0].event.kind,
        EventKind::ExecutionRewound { .. }
    ));
    store
        .commit_turn(turn(&item, RuntimeStatus::Completed))
        .await
        .unwrap();

    // Purge one, recursively with its child.
    let parent = started(&store, "p").await;
    let mut commit = turn(&parent, RuntimeStatus::Completed);
    let mut child = new_instance("p:0001");
    child.parent = Some(ParentInstance {
        task_scheduled_id: 1,
        name: None,
        version: None,
        orchestration_instance: OrchestrationInstance {
            instance_id: "p".into(),
            execution_id: None,
        },
    });
    commit.children.push(NewChild {
        on_conflict: event_to("p", raised("x", "1")),
        instance: child,
    });
    store.commit_turn(commit).await.unwrap();
    let c = fetch_one(&store).await;
    store
        .commit_turn(turn(&c, RuntimeStatus::Completed))
        .await
        .unwrap();
    assert_eq!(store.purge_instance("p", true).await.unwrap(), 2);
    assert!(store.get_instance("p").await.unwrap().is_none());
    assert!(store.get_instance("p:0001").await.unwrap().is_none());
    assert!(store.read_history("p").await.unwrap().is_empty());

    // Purge by filter: only finished ones, by status.
    let f = PurgeFilter {
        statuses: vec![RuntimeStatus::Completed],
        ..Default::default()
    };
    assert_eq!(store.purge_instances(&f).await.unwrap(), 1);
    assert!(store.get_instance("failed").await.unwrap().is_none());
    assert!(store.get_instance("running").await.unwrap().is_some());
}

pub async fn notifier_wakes_dispatchers_and_watchers<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.notifier().wait_orchestration_work().await })
    };
    tokio::task::yield_now().await;
    store.create_instance(new_instance("a")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("dispatcher woken by a create")
        .unwrap();

    let item = fetch_one(&store).await;
    let watch = store.notifier().watch("a");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    store
        .commit_turn(turn(&item, RuntimeStatus::Completed))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), changed)
        .await
        .expect("watcher woken by the status change");
}

pub async fn name_filters_split_the_work<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let mut other = new_instance("b");
    other.name = "Remote".into();
    store.create_instance(new_instance("a")).await.unwrap();
    store.create_instance(other).await.unwrap();
    let native = NameFilter::Only(vec!["Orch".into()]);
    let remote = NameFilter::Except(vec!["Orch".into()]);
    let items = store
        .fetch_orchestration_items(10, LOCK, &native)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].lease.instance_id, "a");
    let mut commit = turn(&items[0], RuntimeStatus::Running);
    let mut remote_activity = activity(&items[0], 2);
    remote_activity.name = "RemoteAct".into();
    commit.activities = vec![activity(&items[0], 1), remote_activity];
    store.commit_turn(commit).await.unwrap();
    let items = store
        .fetch_orchestration_items(10, LOCK, &remote)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].lease.instance_id, "b");

    let only_act = NameFilter::Only(vec!["Act".into()]);
    let acts = store
        .fetch_activity_items(10, LOCK, &only_act)
        .await
        .unwrap();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].activity.task_id, 1);
    let acts = store
        .fetch_activity_items(10, LOCK, &NameFilter::Except(vec!["Act".into()]))
        .await
        .unwrap();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].activity.name, "RemoteAct");
    let none = NameFilter::Only(vec![]);
    assert!(
        store
            .fetch_activity_items(10, LOCK, &none)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn commit_and_claim_hands_activities_over<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let item = started(&store, "a").await;
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.activities = (1..=3).map(|i| activity(&item, i)).collect();
    let claimed = store
        .commit_turn_and_claim(commit, 2, &ALL, LOCK)
        .await
        .unwrap();
    assert!(claimed.len() <= 2, "never more than asked for");
    assert_eq!(
        store.read_history("a").await.unwrap().len(),
        2,
        "the turn is committed"
    );
    let fetched = store.fetch_activity_items(10, LOCK, &ALL).await.unwrap();
    let mut ids: Vec<i32> = claimed
        .iter()
        .chain(&fetched)
        .map(|a| a.activity.task_id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [1, 2, 3],
        "claimed activities are leased, the rest are fetchable"
    );
    for a in claimed {
        assert_eq!(a.delivery_count, 1);
        store
            .complete_activity(&a.lease, ActivityResult::Completed(None))
            .await
            .unwrap();
    }
}

pub async fn entities_come_into_being_when_addressed<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let clock = ManualClock::new(start_time());
    let store = factory(clock.clone()).await;
    let signal = EventKind::EntityOperationSignaled {
        request_id: "r1".into(),
        operation: "add".into(),
        scheduled_time: None,
        input: Some("1".into()),
        target_instance_id: Some("@counter@k".into()),
    };
    assert_eq!(
        store
            .send_message(event_to("@counter@k", signal))
            .await
            .unwrap(),
        SendOutcome::Queued
    );
    let entity = store.get_instance("@counter@k").await.unwrap().unwrap();
    assert_eq!(entity.name, "counter");
    assert_eq!(entity.status, RuntimeStatus::Running);
    // A turn's message to another entity creates that one too.
    let item = fetch_one(&store).await;
    assert_eq!(item.lease.instance_id, "@counter@k");
    let mut commit = turn(&item, RuntimeStatus::Running);
    commit.history = HistoryWrite::Append {
        from: item.history_len,
        events: vec![],
    };
    commit.instance.custom_status = Some("1".into());
    let forward = EventKind::EntityOperationSignaled {
        request_id: "r2".into(),
        operation: "add".into(),
        scheduled_time: None,
        input: None,
        target_instance_id: Some("@counter@other".into()),
    };
    commit.messages = vec![event_to("@counter@other", forward)];
    store.commit_turn(commit).await.unwrap();
    assert!(
        store
            .get_instance("@counter@other")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .get_instance("@counter@k")
            .await
            .unwrap()
            .unwrap()
            .custom_status
            .as_deref(),
        Some("1")
    );
    // Orchestration listings leave entities out; entity listings have only them.
    store.create_instance(new_instance("orch")).await.unwrap();
    let ids = |q: InstanceQuery| {
        let store = store.clone();
        async move {
            let page = store.query_instances(&q).await.unwrap();
            page.items
                .into_iter()
                .map(|s| s.instance_id)
                .collect::<Vec<_>>()
        }
    };
    let orchestrations = ids(InstanceQuery {
        entities: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(orchestrations, ["orch"]);
    let mut entities = ids(InstanceQuery {
        entities: Some(true),
        ..Default::default()
    })
    .await;
    entities.sort();
    assert_eq!(entities, ["@counter@k", "@counter@other"]);
    assert_eq!(ids(InstanceQuery::default()).await.len(), 3);
    // Counts by status are the orchestrations'; entities are counted apart.
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.instances_by_status, [(RuntimeStatus::Pending, 1)]);
    assert_eq!(stats.entities, 2);
}

/// Many claimers at once never get the same instance, and every event sent concurrently is
/// delivered exactly once.
pub async fn concurrent_claims_and_sends<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    for _iteration in 0..20 {
        let clock = ManualClock::new(start_time());
        let store = factory(clock.clone()).await;
        const INSTANCES: usize = 8;
        const EVENTS: usize = 10;
        for i in 0..INSTANCES {
            let item_store = store.clone();
            item_store
                .create_instance(new_instance(&format!("i{i}")))
                .await
                .unwrap();
        }
        let senders: Vec<_> = (0..INSTANCES)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    for e in 0..EVENTS {
                        let msg = event_to(&format!("i{i}"), raised("E", &e.to_string()));
                        store.send_message(msg).await.unwrap();
                    }
                })
            })
            .collect();
        let delivered = Arc::new(parking_lot::Mutex::new(Vec::<(String, String)>::new()));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let delivered = delivered.clone();
                tokio::spawn(async move {
                    let mut idle = 0;
                    while idle < 50 {
                        let items = store
                            .fetch_orchestration_items(3, LOCK, &ALL)
                            .await
                            .unwrap();
                        if items.is_empty() {
                            idle += 1;
                            tokio::task::yield_now().await;
                            continue;
                        }
                        idle = 0;
                        for item in items {
                            for m in &item.messages {
                                if let EventKind::EventRaised { input, .. } = &m.event.kind {
                                    delivered.lock().push((
                                        item.lease.instance_id.clone(),
                                        input.clone().unwrap(),
                                    ));
                                }
                            }
                            store
                                .commit_turn(turn(&item, RuntimeStatus::Running))
                                .await
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for s in futures::future::join_all(senders).await {
            s.unwrap();
        }
        for w in futures::future::join_all(workers).await {
            w.unwrap();
        }
        // Drain anything that arrived after the workers went idle.
        loop {
            let items = store
                .fetch_orchestration_items(100, LOCK, &ALL)
                .await
                .unwrap();
            if items.is_empty() {
                break;
            }
            for item in items {
                for m in &item.messages {
                    if let EventKind::EventRaised { input, .. } = &m.event.kind {
                        delivered
                            .lock()
                            .push((item.lease.instance_id.clone(), input.clone().unwrap()));
                    }
                }
                store
                    .commit_turn(turn(&item, RuntimeStatus::Running))
                    .await
                    .unwrap();
            }
        }
        let delivered = delivered.lock().clone();
        assert_eq!(
            delivered.len(),
            INSTANCES * EVENTS,
            "every event exactly once"
        );
        for i in 0..INSTANCES {
            let order: Vec<usize> = delivered
                .iter()
                .filter(|(id, _)| *id == format!("i{i}"))
                .map(|(_, d)| d.parse().unwrap())
                .collect();
            assert_eq!(order, (0..EVENTS).collect::<Vec<_>>(), "per-instance order");
        }
        for i in 0..INSTANCES {
            let history = store.read_history(&format!("i{i}")).await.unwrap();
            let events = history
                .iter()
                .filter(|e| matches!(e.kind, EventKind::EventRaised { .. }))
                .count();
            assert_eq!(events, EVENTS);
        }
    }
}

/// Concurrent activity workers: every activity completes exactly once.
pub async fn concurrent_activity_completion<F, Fut>(factory: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    for _iteration in 0..20 {
        let clock = ManualClock::new(start_time());
        let store = factory(clock.clone()).await;
        let item = started(&store, "fan").await;
        let mut commit = turn(&item, RuntimeStatus::Running);
        commit.activities = (1..=40).map(|i| activity(&item, i)).collect();
        store.commit_turn(commit).await.unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    loop {
                        let acts = store.fetch_activity_items(5, LOCK, &ALL).await.unwrap();
                        if acts.is_empty() {
                            break;
                        }
                        for a in acts {
                            let result = ActivityResult::Completed(a.activity.input.clone());
                            store.complete_activity(&a.lease, result).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in futures::future::join_all(workers).await {
            w.unwrap();
        }
        let item = fetch_one(&store).await;
        let mut ids: Vec<i32> = item
            .messages
            .iter()
            .filter_map(|m| match m.event.kind {
                EventKind::TaskCompleted {
                    task_scheduled_id, ..
                } => Some(task_scheduled_id),
                _ => None,
            })
            .collect();
        ids.sort();
        assert_eq!(ids, (1..=40).collect::<Vec<_>>());
    }
}

/// Generates one `#[tokio::test]` per conformance test for a backend factory
/// (`async fn(ManualClock) -> SharedStore`).
#[macro_export]
macro_rules! store_conformance {
    ($factory:path) => {
        $crate::store_conformance!(@tests $factory;
            create_and_get,
            fetch_claims_and_commit_records,
            stale_lease_is_refused,
            renew_and_abandon,
            messages_keep_order_and_respect_visibility,
            activities_round_trip,
            finished_instances_receive_nothing,
            children_and_conflicts,
            continue_as_new_and_cancelled_timers,
            scheduled_start_and_terminating_it,
            query_and_paging,
            purge_and_rewind,
            notifier_wakes_dispatchers_and_watchers,
            name_filters_split_the_work,
            commit_and_claim_hands_activities_over,
            entities_come_into_being_when_addressed,
            concurrent_claims_and_sends,
            concurrent_activity_completion,
            empty_entities_are_removed,
            removal_races_no_signal_away,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name($factory).await;
            }
        )*
    };
}
