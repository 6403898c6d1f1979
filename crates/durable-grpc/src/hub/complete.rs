//! Completions and abandons from remote workers.
//!
//! Token rules: a malformed token, or one of the wrong kind, is INVALID_ARGUMENT. A well-formed
//! token that is not held any more (completed already, re-dispatched after its stream closed,
//! issued before a restart) is stale and answered OK without effect, as the protocol asks. A
//! response that does not fit its work item (another instance, a malformed or inconsistent
//! action list) is INVALID_ARGUMENT, leaves history unchanged, and the item goes back to the store
//! to be dispatched again (and failed as poison if that keeps happening).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use durable::core::action::{Action, ActionKind, TurnOutput};
use durable::core::event::{EventKind, HistoryEvent, OrchestrationInstance, ParentInstance};
use durable::core::instance::NewInstance;
use durable::core::turn::plan_turn;
use durable::core::work::ActivityResult;
use durable::{RuntimeStatus, StoreError};

use super::{Hub, Kind, Turn, Work, WorkKey, parse_token};
use crate::convert::{failure_from_proto, turn_actions};
use crate::error::{RpcError, RpcResult};
use crate::proto;

/// A rejected turn is offered again after this delay.
const RETRY_REJECTED: Duration = Duration::from_secs(1);

pub(crate) async fn complete_turn(hub: &Arc<Hub>, r: proto::OrchestratorResponse) -> RpcResult<()> {
    let token = r.completion_token;
    parse_token(&token, Kind::Orchestration)?;
    // .NET workers may split a large response into chunks; the last one has isPartial unset.
    #[allow(deprecated)]
    let partial = r.is_partial;
    if partial {
        return match turn_actions(r.actions) {
            Ok(actions) => {
                // An unknown token is stale: nothing to add to.
                hub.extend_partial(&token, actions);
                Ok(())
            }
            Err(e) => reject(hub, &token, e).await,
        };
    }
    let Some(Work::Turn(mut turn)) = hub.take(&token) else {
        return Ok(());
    };
    if !r.instance_id.is_empty() && r.instance_id != turn.item.lease.instance_id {
        let e = RpcError::bad(format!(
            "the response is for instance '{}' but its token belongs to '{}'",
            r.instance_id, turn.item.lease.instance_id
        ));
        return give_back_rejected(hub, Work::Turn(turn), e).await;
    }
    let mut actions = std::mem::take(&mut turn.partial);
    match turn_actions(r.actions) {
        Ok(more) => actions.extend(more),
        Err(e) => return give_back_rejected(hub, Work::Turn(turn), e).await,
    }
    if super::locks::ends(&actions) {
        match hub.owed_unlocks(&turn.item, &actions).await {
            Ok(unlocks) => drop(actions.splice(0..0, unlocks)),
            Err(e) => {
                hub.give_back(Work::Turn(turn), Some(Duration::from_millis(200)))
                    .await;
                return Err(e.into());
            }
        }
    }
    let children = keep_execution_on_rewind(&turn, &mut actions);
    let new_tasks = actions.iter().filter(|a| a.kind.is_task()).count();
    let output = TurnOutput {
        actions,
        custom_status: r.custom_status,
        cancelled_timers: Vec::new(),
        open_tasks: Some(turn.pending_tasks + new_tasks),
    };
    let now = Utc::now();
    let commit = match plan_turn(&turn.item, &turn.prepared, output, now, Default::default()) {
        Ok(commit) => commit,
        Err(e) => {
            return give_back_rejected(hub, Work::Turn(turn), RpcError::bad(e.to_string())).await;
        }
    };
    match hub.store.commit_turn(commit).await {
        Ok(()) => {
            hub.finished(&WorkKey::Instance(turn.item.lease.instance_id.clone()));
            rearm_children(hub, &turn, children).await;
            Ok(())
        }
        // Another claim took the instance over (lease expired): this result is stale.
        Err(StoreError::StaleLease(_)) => Ok(()),
        Err(e) => {
            hub.give_back(Work::Turn(turn), Some(Duration::from_millis(200)))
                .await;
            Err(e.into())
        }
    }
}

pub(crate) async fn complete_activity(hub: &Arc<Hub>, r: proto::ActivityResponse) -> RpcResult<()> {
    parse_token(&r.completion_token, Kind::Activity)?;
    let Some(Work::Activity(item)) = hub.take(&r.completion_token) else {
        return Ok(());
    };
    let a = &item.activity;
    if !r.instance_id.is_empty() && (r.instance_id != a.instance_id || r.task_id != a.task_id) {
        let e = RpcError::bad(format!(
            "the response is for task #{} of '{}' but its token belongs to task #{} of '{}'",
            r.task_id, r.instance_id, a.task_id, a.instance_id
        ));
        return give_back_rejected(hub, Work::Activity(item), e).await;
    }
    // Failure is decided by the presence of details, not by an empty message.
    let result = match r.failure_details {
        Some(f) => ActivityResult::Failed(failure_from_proto(f)),
        None => ActivityResult::Completed(r.result),
    };
    match hub.store.complete_activity(&item.lease, result).await {
        Ok(()) | Err(StoreError::StaleLease(_)) => {
            hub.finished(&WorkKey::Activity(item.lease.activity_id));
            Ok(())
        }
        Err(e) => {
            hub.give_back(Work::Activity(item), Some(Duration::from_secs(1)))
                .await;
            Err(e.into())
        }
    }
}

/// `Abandon*`: the worker will not finish the item; it goes back to the store. Orchestrations
/// come back after a short delay, so a worker that rejects a version does not spin on it.
pub(crate) async fn abandon_token(hub: &Arc<Hub>, token: &str, kind: Kind) -> RpcResult<()> {
    parse_token(token, kind)?;
    if let Some(work) = hub.take(token) {
        let delay = match kind {
            Kind::Orchestration => Some(RETRY_REJECTED),
            Kind::Activity | Kind::Entity => None,
        };
        hub.decline(work, delay).await;
    }
    Ok(())
}

async fn reject(hub: &Hub, token: &str, e: RpcError) -> RpcResult<()> {
    match hub.take(token) {
        Some(work) => give_back_rejected(hub, work, e).await,
        None => Err(e),
    }
}

async fn give_back_rejected(hub: &Hub, work: Work, e: RpcError) -> RpcResult<()> {
    tracing::warn!(error = ?e, "rejected a worker's response; the item will be dispatched again");
    hub.give_back(work, Some(RETRY_REJECTED)).await;
    Err(e)
}

/// A rewind answer carries a new history with a fresh execution id (the Python worker mints
/// one). Keeping the instance's current execution id instead keeps every link to it valid: the
/// parent links of its sub-orchestrations and the results already addressed to it. Returns the
/// sub-orchestrations the rewound history still waits for.
fn keep_execution_on_rewind(turn: &Turn, actions: &mut [Action]) -> Vec<HistoryEvent> {
    let current = &turn.item.instance.execution_id;
    let mut waiting = Vec::new();
    for action in actions.iter_mut() {
        let ActionKind::RewindOrchestration { new_history } = &mut action.kind else {
            continue;
        };
        for event in new_history.iter_mut() {
            if let EventKind::ExecutionStarted {
                orchestration_instance,
                ..
            } = &mut event.kind
            {
                orchestration_instance.execution_id = Some(current.clone());
            }
        }
        let done: HashSet<i32> = new_history
            .iter()
            .filter_map(|e| e.kind.completes_task())
            .collect();
        waiting.extend(
            new_history
                .iter()
                .filter(|e| {
                    matches!(e.kind, EventKind::SubOrchestrationInstanceCreated { .. })
                        && !done.contains(&e.event_id)
                })
                .cloned(),
        );
    }
    waiting
}

/// After a rewind: failed sub-orchestrations are rewound too, purged ones are created again, so
/// every child the history waits for reports back.
async fn rearm_children(hub: &Hub, turn: &Turn, children: Vec<HistoryEvent>) {
    let parent = &turn.item.instance;
    for event in children {
        let EventKind::SubOrchestrationInstanceCreated {
            instance_id,
            name,
            version,
            input,
            parent_trace_context,
            tags,
        } = event.kind
        else {
            continue;
        };
        let result = match hub.store.get_instance(&instance_id).await {
            Ok(Some(child)) if child.status == RuntimeStatus::Failed => hub
                .client
                .rewind(&instance_id, Some("parent rewound"))
                .await
                .map_err(|e| e.to_string()),
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let mut child = NewInstance::new(name, instance_id.clone());
                child.version = version;
                child.input = input;
                child.tags = tags;
                child.trace_context = parent_trace_context;
                child.parent = Some(ParentInstance {
                    task_scheduled_id: event.event_id,
                    name: Some(parent.name.clone()),
                    version: parent.version.clone(),
                    orchestration_instance: OrchestrationInstance {
                        instance_id: parent.instance_id.clone(),
                        execution_id: Some(parent.execution_id.clone()),
                    },
                });
                hub.store
                    .create_instance(child)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(instance_id = %instance_id, error = %e, "could not re-arm a sub-orchestration after a rewind");
        }
    }
}
