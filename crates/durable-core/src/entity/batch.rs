//! One entity turn, in two halves shared by every kind of worker: [`prepare`] plans the batch
//! (which operations run, on which state), and [`apply`] turns the operations' results into the
//! commit. [`execute`] runs the operations in between with registered Rust entity functions; the
//! gRPC sidecar sends the prepared batch to a remote worker instead and applies its answer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};

use super::{EntityContext, EntityId, EntitySchedule, Operation, plan, reply};
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

/// A planned batch: the operations to run, in order, on `state`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub id: EntityId,
    /// The entity's state before the batch (JSON), `None` when it has none.
    pub state: Option<String>,
    pub operations: Vec<Operation>,
    /// Lock forwards and grants the scheduler decided.
    messages: Vec<NewMessage>,
    schedule: EntitySchedule,
}

/// What running a batch's operations produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// One result per operation of the batch, in order.
    pub results: Vec<Result<Option<String>, FailureDetails>>,
    /// The state after the batch (failed operations already rolled back).
    pub state: Option<String>,
    /// Signals the successful operations sent.
    pub signals: Vec<NewMessage>,
    /// Orchestrations the successful operations started.
    pub starts: Vec<NewInstance>,
}

impl BatchOutcome {
    /// Nothing ran and nothing changed (a batch without operations).
    pub fn unchanged(batch: &Batch) -> Self {
        BatchOutcome {
            state: batch.state.clone(),
            ..Default::default()
        }
    }

    /// Every operation failed with the same failure, nothing changed (poison, oversize items).
    pub fn all_failed(batch: &Batch, failure: FailureDetails) -> Self {
        BatchOutcome {
            results: vec![Err(failure); batch.operations.len()],
            ..Self::unchanged(batch)
        }
    }
}

/// Why an outcome does not fit its batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the batch has {expected} operations but {got} results came back")]
pub struct ResultCountMismatch {
    pub expected: usize,
    pub got: usize,
}

/// Plans an entity's batch from its claimed item: every inbox message is consumed; operations
/// run or wait in the entity's queue (kept in the instance's input).
pub fn prepare(item: &OrchestrationItem, now: DateTime<Utc>) -> Batch {
    let inst = &item.instance;
    let id = EntityId::parse(&inst.instance_id).unwrap_or_else(|| EntityId::new(&inst.name, ""));
    let incoming = item.messages.iter().map(|m| m.event.clone()).collect();
    let planned = plan(
        EntitySchedule::from_json(inst.input.as_deref()),
        incoming,
        now,
    );
    Batch {
        id,
        state: inst.custom_status.clone(),
        operations: planned.operations,
        messages: planned.messages,
        schedule: planned.schedule,
    }
}

/// Builds the commit of a batch from its outcome: the new state, the replies to callers, the
/// signals and starts, and the scheduler's lock messages. A failed signal is logged (`warn`).
pub fn apply(
    item: &OrchestrationItem,
    batch: Batch,
    outcome: BatchOutcome,
    now: DateTime<Utc>,
) -> Result<(TurnCommit, BatchStats), ResultCountMismatch> {
    if outcome.results.len() != batch.operations.len() {
        return Err(ResultCountMismatch {
            expected: batch.operations.len(),
            got: outcome.results.len(),
        });
    }
    let id = batch.id;
    let mut messages = batch.messages;
    messages.extend(outcome.signals);
    let children = outcome
        .starts
        .into_iter()
        .map(|s| started(&id, s, now))
        .collect();
    let mut stats = BatchStats::default();
    for (op, result) in batch.operations.iter().zip(outcome.results) {
        stats.operations += 1;
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
    let inst = &item.instance;
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
            input: batch.schedule.to_json(),
            output: None,
            custom_status: outcome.state,
            failure: None,
            completed_at: None,
        },
        activities: Vec::new(),
        messages,
        children,
        cancelled_timers: Vec::new(),
        terminate_children: None,
    };
    Ok((commit, stats))
}

/// Runs an entity's batch with the registered entity functions. An operation that fails or
/// panics leaves the state as it was and sends nothing; a caller gets the failure as its result.
/// `poisoned` fails every operation without running it (the batch kept crashing the worker).
pub fn execute(
    registry: &Registry,
    item: &OrchestrationItem,
    now: DateTime<Utc>,
    poisoned: bool,
) -> (TurnCommit, BatchStats) {
    let batch = prepare(item, now);
    let outcome = if poisoned {
        BatchOutcome::all_failed(&batch, poison_failure(item.delivery_count()))
    } else {
        run(registry, &batch, now)
    };
    apply(item, batch, outcome, now).expect("one result per operation")
}

/// The failure of every operation of a batch that was delivered too often.
pub fn poison_failure(deliveries: u32) -> FailureDetails {
    FailureDetails::new(
        "PoisonMessage",
        format!(
            "the batch with this operation was attempted {deliveries} times without completing; the operation was dropped"
        ),
    )
}

fn run(registry: &Registry, batch: &Batch, now: DateTime<Utc>) -> BatchOutcome {
    let id = &batch.id;
    let handler = registry.entity(&id.name);
    let mut outcome = BatchOutcome::unchanged(batch);
    for op in &batch.operations {
        let result = match handler {
            None => Err(FailureDetails::new(
                "EntityNotFound",
                format!(
                    "no entity named '{}' is registered (registered: {})",
                    id.name,
                    registry.entity_names().join(", ")
                ),
            )),
            Some(handler) => {
                let mut ctx = EntityContext::new(
                    id.clone(),
                    &op.operation,
                    op.input.clone(),
                    outcome.state.clone(),
                    now,
                );
                match catch_unwind(AssertUnwindSafe(|| handler.run(&mut ctx))) {
                    Ok(Ok(output)) => {
                        let (new_state, signals, starts) = ctx.into_parts();
                        outcome.state = new_state;
                        outcome.signals.extend(signals);
                        outcome.starts.extend(starts);
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
        outcome.results.push(result);
    }
    outcome
}

/// An orchestration an operation starts. If its id is taken, the entity receives (and ignores)
/// a note about it.
fn started(entity: &EntityId, instance: NewInstance, now: DateTime<Utc>) -> NewChild {
    let note = crate::event::EventKind::GenericEvent {
        data: Some(format!(
            "could not start orchestration '{}' ({}): the id is taken",
            instance.name, instance.instance_id
        )),
    };
    NewChild {
        on_conflict: NewMessage {
            instance_id: entity.to_string(),
            execution_id: None,
            event: crate::event::HistoryEvent::unnumbered(now, note),
            visible_at: None,
        },
        instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, HistoryEvent};
    use crate::work::{InboxMessage, Lease};

    fn item(events: Vec<EventKind>) -> OrchestrationItem {
        let now = Utc::now();
        let instance = serde_json::from_value(serde_json::json!({
            "instanceId": "@counter@a", "name": "counter", "version": null, "executionId": "",
            "status": "Running", "input": null, "output": null, "customStatus": "1",
            "failure": null, "createdAt": now, "updatedAt": now, "completedAt": null,
            "scheduledStartAt": null, "parent": null, "tags": {},
        }))
        .unwrap();
        let messages = events
            .into_iter()
            .enumerate()
            .map(|(i, kind)| InboxMessage {
                id: i as i64 + 10,
                execution_id: None,
                event: HistoryEvent::unnumbered(now, kind),
                delivery_count: 1,
            })
            .collect();
        OrchestrationItem {
            lease: Lease {
                instance_id: "@counter@a".into(),
                epoch: 1,
            },
            instance,
            history_len: 0,
            messages,
        }
    }

    fn signal() -> EventKind {
        EventKind::EntityOperationSignaled {
            request_id: "s".into(),
            operation: "add".into(),
            scheduled_time: None,
            input: Some("2".into()),
            target_instance_id: Some("@counter@a".into()),
        }
    }

    fn call() -> EventKind {
        EventKind::EntityOperationCalled {
            request_id: "c".into(),
            operation: "get".into(),
            scheduled_time: None,
            input: None,
            parent_instance_id: Some("orch".into()),
            parent_execution_id: Some("e1".into()),
            target_instance_id: Some("@counter@a".into()),
        }
    }

    #[test]
    fn prepare_then_apply_replies_to_callers_and_keeps_the_state() {
        let item = item(vec![signal(), call()]);
        let now = Utc::now();
        let batch = prepare(&item, now);
        assert_eq!(batch.state.as_deref(), Some("1"));
        assert_eq!(batch.operations.len(), 2);
        let short = BatchOutcome::unchanged(&batch);
        assert_eq!(
            apply(&item, batch.clone(), short, now).unwrap_err(),
            ResultCountMismatch {
                expected: 2,
                got: 0
            }
        );
        let outcome = BatchOutcome {
            results: vec![
                Err(FailureDetails::new("X", "signal failed")),
                Ok(Some("3".into())),
            ],
            state: Some("3".into()),
            ..Default::default()
        };
        let (commit, stats) = apply(&item, batch, outcome, now).unwrap();
        assert_eq!(
            stats,
            BatchStats {
                operations: 2,
                failed: 1
            }
        );
        assert_eq!(commit.consumed, [10, 11]);
        assert_eq!(commit.instance.custom_status.as_deref(), Some("3"));
        assert_eq!(commit.messages.len(), 1, "only the caller gets a reply");
        let reply = &commit.messages[0];
        assert_eq!(reply.instance_id, "orch");
        assert_eq!(reply.execution_id.as_deref(), Some("e1"));
        assert!(matches!(
            &reply.event.kind,
            EventKind::EntityOperationCompleted { request_id, output: Some(o) }
                if request_id == "c" && o == "3"
        ));
    }

    #[test]
    fn poison_fails_every_operation_and_changes_nothing() {
        let item = item(vec![call()]);
        let batch = prepare(&item, Utc::now());
        let outcome = BatchOutcome::all_failed(&batch, poison_failure(11));
        let (commit, stats) = apply(&item, batch, outcome, Utc::now()).unwrap();
        assert_eq!(stats.failed, 1);
        assert_eq!(commit.instance.custom_status.as_deref(), Some("1"));
        assert!(matches!(
            &commit.messages[0].event.kind,
            EventKind::EntityOperationFailed { failure_details, .. }
                if failure_details.error_type == "PoisonMessage"
        ));
    }
}
