//! One entity turn: plan the batch, run its operations one after the other on the state, and
//! build the commit.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};

use super::{EntityContext, EntityId, EntitySchedule, plan, reply};
use crate::event::{EventKind, HistoryEvent};
use crate::failure::FailureDetails;
use crate::instance::NewInstance;
use crate::registry::Registry;
use crate::work::{
    HistoryWrite, InstanceUpdate, NewChild, NewMessage, OrchestrationItem, TurnCommit,
};

/// What a batch did, besides its commit: how many operations ran and how many failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub operations: usize,
    pub failed: usize,
}

/// Runs an entity's batch. Every inbox message is consumed: operations run or wait in the
/// entity's queue (kept in the instance's input). An operation that fails or panics leaves the
/// state as it was and sends nothing; a caller gets the failure as its result. `poisoned` fails
/// every operation without running it (the batch kept crashing the worker).
pub fn execute(
    registry: &Registry,
    item: &OrchestrationItem,
    now: DateTime<Utc>,
    poisoned: bool,
) -> (TurnCommit, BatchStats) {
    let inst = &item.instance;
    let id = EntityId::parse(&inst.instance_id).unwrap_or_else(|| EntityId::new(&inst.name, ""));
    let incoming = item.messages.iter().map(|m| m.event.clone()).collect();
    let planned = plan(
        EntitySchedule::from_json(inst.input.as_deref()),
        incoming,
        now,
    );
    let handler = registry.entity(&id.name);
    let mut state = inst.custom_status.clone();
    let mut messages = planned.messages;
    let mut children = Vec::new();
    let mut stats = BatchStats::default();
    for op in planned.operations {
        stats.operations += 1;
        let result = match handler {
            _ if poisoned => Err(FailureDetails::new(
                "PoisonMessage",
                format!(
                    "the batch with this operation was attempted {} times without completing; the operation was dropped",
                    item.delivery_count()
                ),
            )),
            None => Err(FailureDetails::new(
                "EntityNotFound",
                format!(
                    "no entity named '{}' is registered (registered: {})",
                    id.name,
                    registry.entity_names().join(", ")
                ),
            )),
            Some(handler) => {
                let mut ctx =
                    EntityContext::new(id.clone(), &op.operation, op.input, state.clone(), now);
                match catch_unwind(AssertUnwindSafe(|| handler.run(&mut ctx))) {
                    Ok(Ok(output)) => {
                        let (new_state, signals, starts) = ctx.into_parts();
                        state = new_state;
                        messages.extend(signals);
                        children.extend(starts.into_iter().map(|s| started(&id, s, now)));
                        Ok(output)
                    }
                    Ok(Err(failure)) => Err(failure),
                    Err(panic) => Err(FailureDetails::panicked(
                        &format!("entity '{}' operation '{}'", id.name, op.operation),
                        &*panic,
                    )),
                }
            }
        };
        if let Err(failure) = &result {
            stats.failed += 1;
            if op.caller.is_none() {
                tracing::warn!(entity = %id, operation = %op.operation, %failure, "a signaled entity operation failed");
            }
        }
        if let Some(caller) = &op.caller {
            messages.push(reply(caller, &op.request_id, result, now));
        }
    }
    let commit = TurnCommit {
        lease: item.lease.clone(),
        consumed: item.messages.iter().map(|m| m.id).collect(),
        history: HistoryWrite::Append {
            from: item.history_len,
            events: Vec::new(),
        },
        instance: InstanceUpdate {
            status: inst.status,
            execution_id: inst.execution_id.clone(),
            version: None,
            input: planned.schedule.to_json(),
            output: None,
            custom_status: state,
            failure: None,
            completed_at: None,
        },
        activities: Vec::new(),
        messages,
        children,
        cancelled_timers: Vec::new(),
        terminate_children: None,
    };
    (commit, stats)
}

/// An orchestration an operation starts. Its id is fresh, so a conflict cannot really happen;
/// if it did, the entity would receive (and ignore) a note about it.
fn started(entity: &EntityId, instance: NewInstance, now: DateTime<Utc>) -> NewChild {
    let note = EventKind::GenericEvent {
        data: Some(format!(
            "could not start orchestration '{}' ({}): the id is taken",
            instance.name, instance.instance_id
        )),
    };
    NewChild {
        on_conflict: NewMessage {
            instance_id: entity.to_string(),
            execution_id: None,
            event: HistoryEvent::unnumbered(now, note),
            visible_at: None,
        },
        instance,
    }
}
