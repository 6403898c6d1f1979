//! The dispatcher: while remote workers are connected, fetches the work they may take from the
//! store and sends it down their streams.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use durable::core::entity::EntityId;
use durable::core::event::{EventKind, HistoryEvent};
use durable::core::limits::DEFAULT_MAX_DELIVERIES;
use durable::core::turn::{PreparedTurn, consume_only, pending_tasks, prepare_turn};
use durable::core::work::{ActivityItem, OrchestrationItem};
use durable::{FailureDetails, RuntimeStatus};
use prost::Message;

use super::{Hub, Turn, Work, WorkKey, WorkSender};
use crate::convert::{event_to_proto, instance_to_proto, tags_to_proto, trace_to_proto};
use crate::proto;

/// Items claimed per store round trip.
const BATCH: usize = 64;
/// How often an idle dispatcher looks for work it was not told about (other processes).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub(crate) async fn run(hub: Arc<Hub>) {
    let listener = hub.store.notifier().listen();
    let mut shutdown = hub.shutdown_signal();
    let mut backoff = Duration::from_millis(50);
    while !hub.is_shutting_down() {
        for (token, tx) in hub.unpark() {
            tokio::spawn(send(hub.clone(), token, tx));
        }
        let Some(plan) = hub.fetch_plan() else {
            tokio::select! {
                _ = hub.changed.notified() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        match fetch(&hub, plan).await {
            Ok(0) => {}
            Ok(_) => {
                backoff = Duration::from_millis(50);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching work for remote workers failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        let wait = match hub.store.next_due().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(IDLE_POLL),
            _ => IDLE_POLL,
        };
        tokio::select! {
            _ = listener.wait_orchestration_work() => {}
            _ = listener.wait_activity_work() => {}
            _ = hub.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Fetches and dispatches one round; returns how many items were claimed.
async fn fetch(hub: &Arc<Hub>, plan: super::FetchPlan) -> Result<usize, durable::StoreError> {
    let lock = hub.options.lock_duration;
    let mut claimed = 0;
    let (free, filter) = plan.orchestrations;
    if free > 0 {
        let items = hub
            .store
            .fetch_orchestration_items(free.min(BATCH), lock, &filter)
            .await?;
        claimed += items.len();
        for item in items {
            dispatch_turn(hub, item);
        }
    }
    let (free, filter) = plan.activities;
    if free > 0 {
        let items = hub
            .store
            .fetch_activity_items(free.min(BATCH), lock, &filter)
            .await?;
        claimed += items.len();
        for item in items {
            dispatch_activity(hub, item);
        }
    }
    Ok(claimed)
}

fn dispatch_turn(hub: &Arc<Hub>, item: OrchestrationItem) {
    if EntityId::is_entity(&item.lease.instance_id) {
        return super::entities::dispatch(hub, item);
    }
    let prepared = prepare_remote_turn(&item, Utc::now());
    let turn = Box::new(Turn {
        item,
        prepared,
        partial: Vec::new(),
        pending_tasks: 0,
    });
    let hub = hub.clone();
    let key = WorkKey::Instance(turn.item.lease.instance_id.clone());
    let deliveries = hub.counted_deliveries(&key, turn.item.delivery_count());
    if deliveries > DEFAULT_MAX_DELIVERIES {
        tokio::spawn(async move {
            let message = format!(
                "this turn was handed to remote workers {deliveries} times without completing; the instance was failed after {DEFAULT_MAX_DELIVERIES} deliveries"
            );
            hub.fail_turn(&turn, "PoisonMessage", message).await;
            hub.finished(&key);
        });
        return;
    }
    // A first turn whose start is not visible yet: give the instance back for a moment.
    if turn.prepared.new_events.is_empty() && turn.prepared.consumed.is_empty() {
        tokio::spawn(async move {
            let retry = Some(std::time::Duration::from_millis(250));
            let _ = hub
                .store
                .abandon_orchestration_item(&turn.item.lease, retry)
                .await;
        });
        return;
    }
    // Only an orchestratorStarted (or nothing) left: nothing for the worker to see.
    if turn.prepared.new_events.len() <= 1 {
        tokio::spawn(async move {
            let commit = consume_only(&turn.item, &turn.prepared);
            if let Err(e) = hub.store.commit_turn(commit).await {
                tracing::debug!(error = %e, "could not consume undeliverable messages");
            }
        });
        return;
    }
    offer(hub, Work::Turn(turn));
}

fn dispatch_activity(hub: &Arc<Hub>, item: ActivityItem) {
    let hub = hub.clone();
    let key = WorkKey::Activity(item.lease.activity_id);
    let deliveries = hub.counted_deliveries(&key, item.delivery_count);
    if deliveries > DEFAULT_MAX_DELIVERIES {
        tokio::spawn(async move {
            let message = format!(
                "activity '{}' was handed to remote workers {deliveries} times without completing; it was failed after {DEFAULT_MAX_DELIVERIES} deliveries",
                item.activity.name
            );
            hub.fail_activity(&item, "PoisonMessage", message).await;
            hub.finished(&key);
        });
        return;
    }
    offer(hub, Work::Activity(item));
}

pub(super) fn offer(hub: Arc<Hub>, work: Work) {
    if let (token, Some(tx)) = hub.hold(work) {
        tokio::spawn(send(hub, token, tx));
    }
}

/// The engine's turn preparation, adjusted to what remote workers accept: a rewind turn is
/// exactly `[orchestratorStarted, executionRewound]` (other messages wait for the next turn),
/// and a resume for an instance that is not suspended is consumed without being delivered.
fn prepare_remote_turn(item: &OrchestrationItem, now: DateTime<Utc>) -> PreparedTurn {
    let mut prepared = prepare_turn(item, now);
    let rewind = item
        .messages
        .iter()
        .find(|m| matches!(m.event.kind, EventKind::ExecutionRewound { .. }));
    if let Some(rewind) = rewind {
        return PreparedTurn {
            new_events: vec![
                HistoryEvent::unnumbered(now, EventKind::OrchestratorStarted),
                rewind.event.clone(),
            ],
            consumed: vec![rewind.id],
        };
    }
    let mut suspended = item.instance.status == RuntimeStatus::Suspended;
    prepared.new_events.retain(|e| match e.kind {
        EventKind::ExecutionSuspended { .. } => {
            suspended = true;
            true
        }
        EventKind::ExecutionResumed { .. } => std::mem::replace(&mut suspended, false),
        _ => true,
    });
    prepared
}

/// Builds the work item of a held token and sends it; gives the item back if the stream is gone.
async fn send(hub: Arc<Hub>, token: String, tx: WorkSender) {
    let Some(request) = hub.with_held(&token, request_seed) else {
        return;
    };
    let request = match request {
        Seed::Activity(request) => proto::work_item::Request::ActivityRequest(request),
        Seed::Entity(request) => proto::work_item::Request::EntityRequestV2(request),
        Seed::Turn {
            instance_id,
            execution_id,
            history_len,
            new_events,
        } => {
            let past = if history_len == 0 {
                Ok(Vec::new())
            } else {
                hub.store.read_history(&instance_id).await
            };
            let past = match past {
                Ok(past) => past,
                Err(e) => {
                    tracing::warn!(%instance_id, error = %e, "could not read history; retrying the turn later");
                    if let Some(work) = hub.take(&token) {
                        hub.decline(work, Some(Duration::from_secs(1))).await;
                    }
                    return;
                }
            };
            hub.set_pending_tasks(&token, pending_tasks(past.iter().chain(&new_events)));
            proto::work_item::Request::OrchestratorRequest(proto::OrchestratorRequest {
                instance_id,
                execution_id: Some(execution_id),
                past_events: past.iter().map(event_to_proto).collect(),
                new_events: new_events.iter().map(event_to_proto).collect(),
                ..Default::default()
            })
        }
    };
    let item = proto::WorkItem {
        request: Some(request),
        completion_token: token.clone(),
    };
    let size = item.encoded_len();
    if size > hub.options.max_message_bytes {
        too_large(&hub, &token, size).await;
        return;
    }
    let mut shutdown = hub.shutdown_signal();
    // A worker that stops reading must not hold up shutdown with a full stream buffer.
    let sent = tokio::select! {
        sent = tx.send(Ok(item)) => sent.is_ok(),
        _ = shutdown.wait_for(|stopping| *stopping) => false,
    };
    drop(tx);
    if !sent && let Some(work) = hub.take(&token) {
        hub.decline(work, None).await;
    }
}

enum Seed {
    Turn {
        instance_id: String,
        execution_id: String,
        history_len: u32,
        new_events: Vec<HistoryEvent>,
    },
    Activity(proto::ActivityRequest),
    Entity(proto::EntityRequest),
}

fn request_seed(work: &Work) -> Seed {
    match work {
        Work::Entity(e) => Seed::Entity(super::entities::request(e)),
        Work::Turn(t) => Seed::Turn {
            instance_id: t.item.instance.instance_id.clone(),
            execution_id: t.item.instance.execution_id.clone(),
            history_len: t.item.history_len,
            new_events: t.prepared.new_events.clone(),
        },
        Work::Activity(a) => {
            let a = &a.activity;
            Seed::Activity(proto::ActivityRequest {
                name: a.name.clone(),
                version: a.version.clone(),
                input: a.input.clone(),
                orchestration_instance: Some(instance_to_proto(
                    &durable::core::event::OrchestrationInstance {
                        instance_id: a.instance_id.clone(),
                        execution_id: Some(a.execution_id.clone()),
                    },
                )),
                task_id: a.task_id,
                parent_trace_context: a.trace_context.as_ref().map(trace_to_proto),
                tags: tags_to_proto(&a.tags),
            })
        }
    }
}

/// A work item the worker could not receive: the instance or the activity fails with a reason
/// instead of being retried forever.
async fn too_large(hub: &Hub, token: &str, size: usize) {
    let Some(work) = hub.take(token) else { return };
    let limit = hub.options.max_message_bytes;
    match work {
        Work::Turn(turn) => {
            let message = format!(
                "the work item for this turn is {size} bytes (history plus new events), over the {limit}-byte gRPC message limit; keep histories short with continue_as_new and payloads small"
            );
            hub.fail_turn(&turn, "MessageTooLarge", message).await;
        }
        Work::Activity(item) => {
            let message = format!(
                "the input of activity '{}' makes a {size}-byte work item, over the {limit}-byte gRPC message limit",
                item.activity.name
            );
            hub.fail_activity(&item, "MessageTooLarge", message).await;
        }
        Work::Entity(turn) => {
            let message = format!(
                "the work item for this entity batch is {size} bytes (state plus operation inputs), over the {limit}-byte gRPC message limit"
            );
            let failure = FailureDetails::new("MessageTooLarge", message).non_retriable();
            hub.fail_entity(*turn, failure).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use durable::core::instance::InstanceState;
    use durable::core::work::{InboxMessage, Lease};

    use super::*;

    fn item(status: RuntimeStatus, events: Vec<EventKind>) -> OrchestrationItem {
        let now = Utc::now();
        let instance: InstanceState = serde_json::from_value(serde_json::json!({
            "instanceId": "i1", "name": "orch", "version": null, "executionId": "e1",
            "status": status, "input": null, "output": null, "customStatus": null,
            "failure": null, "createdAt": now, "updatedAt": now, "completedAt": null,
            "scheduledStartAt": null, "parent": null, "tags": {},
        }))
        .unwrap();
        let messages = events
            .into_iter()
            .enumerate()
            .map(|(i, kind)| InboxMessage {
                id: i as i64 + 1,
                execution_id: None,
                event: HistoryEvent::unnumbered(now, kind),
                delivery_count: 1,
            })
            .collect();
        OrchestrationItem {
            lease: Lease {
                instance_id: "i1".into(),
                epoch: 1,
            },
            instance,
            history_len: 3,
            messages,
        }
    }

    fn kinds(p: &PreparedTurn) -> Vec<&'static str> {
        p.new_events.iter().map(|e| e.kind.type_name()).collect()
    }

    #[test]
    fn stray_resumes_are_not_delivered() {
        let resume = || EventKind::ExecutionResumed { input: None };
        let suspend = || EventKind::ExecutionSuspended { input: None };
        let p = prepare_remote_turn(&item(RuntimeStatus::Running, vec![resume()]), Utc::now());
        assert_eq!(kinds(&p), ["OrchestratorStarted"]);
        assert_eq!(p.consumed, [1], "the stray resume is consumed");
        let p = prepare_remote_turn(
            &item(RuntimeStatus::Running, vec![suspend(), resume(), resume()]),
            Utc::now(),
        );
        assert_eq!(
            kinds(&p),
            [
                "OrchestratorStarted",
                "ExecutionSuspended",
                "ExecutionResumed"
            ]
        );
        let p = prepare_remote_turn(&item(RuntimeStatus::Suspended, vec![resume()]), Utc::now());
        assert_eq!(kinds(&p), ["OrchestratorStarted", "ExecutionResumed"]);
    }

    #[test]
    fn a_rewind_turn_carries_exactly_two_events() {
        let rewound: EventKind =
            serde_json::from_value(serde_json::json!({"eventType": "ExecutionRewound"})).unwrap();
        let raised = EventKind::EventRaised {
            name: "E".into(),
            input: None,
        };
        let p = prepare_remote_turn(
            &item(RuntimeStatus::Running, vec![raised, rewound]),
            Utc::now(),
        );
        assert_eq!(kinds(&p), ["OrchestratorStarted", "ExecutionRewound"]);
        assert_eq!(p.consumed, [2], "the raised event waits for the next turn");
    }
}
