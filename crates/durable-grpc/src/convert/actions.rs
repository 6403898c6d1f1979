//! Orchestrator actions from a worker's `OrchestratorResponse`, into the engine's [`Action`]s.

use durable::core::action::{Action, ActionKind};
use durable::core::entity::EntityId;
use durable::core::event::EventKind;
use proto::history_event::EventType as P2;
use proto::orchestrator_action::OrchestratorActionType as P;
use proto::send_entity_message_action::EntityMessageType as M;

use super::events::kind_from_proto;
use super::*;

pub(crate) fn turn_actions(actions: Vec<proto::OrchestratorAction>) -> RpcResult<Vec<Action>> {
    actions.into_iter().map(action_from_proto).collect()
}

fn action_from_proto(a: proto::OrchestratorAction) -> RpcResult<Action> {
    let id = a.id;
    let kind = a
        .orchestrator_action_type
        .ok_or_else(|| RpcError::bad(format!("action #{id} has no action type")))?;
    let kind = match kind {
        P::ScheduleTask(t) => ActionKind::ScheduleTask {
            name: non_empty(t.name, id, "scheduleTask.name")?,
            version: t.version,
            input: t.input,
            tags: tags_from_proto(t.tags),
            parent_trace_context: t.parent_trace_context.map(trace_from_proto),
        },
        P::CreateSubOrchestration(s) => ActionKind::CreateSubOrchestration {
            instance_id: s.instance_id,
            name: non_empty(s.name, id, "createSubOrchestration.name")?,
            version: s.version,
            input: s.input,
            parent_trace_context: s.parent_trace_context.map(trace_from_proto),
            tags: tags_from_proto(s.tags),
        },
        P::CreateTimer(t) => ActionKind::CreateTimer {
            fire_at: opt_datetime(t.fire_at.as_ref())?.ok_or_else(|| {
                RpcError::bad(format!("action #{id}: createTimer.fireAt is required"))
            })?,
        },
        P::SendEvent(s) => {
            let instance = s
                .instance
                .map(instance_from_proto)
                .filter(|i| !i.instance_id.is_empty())
                .ok_or_else(|| {
                    RpcError::bad(format!("action #{id}: sendEvent.instance is required"))
                })?;
            ActionKind::SendEvent {
                instance,
                name: non_empty(s.name, id, "sendEvent.name")?,
                data: s.data,
            }
        }
        P::CompleteOrchestration(c) => ActionKind::CompleteOrchestration {
            orchestration_status: status_from_proto(c.orchestration_status)?,
            result: c.result,
            details: c.details,
            new_version: c.new_version,
            carryover_events: events_from_proto(c.carryover_events)?,
            failure_details: c.failure_details.map(failure_from_proto),
            tags: tags_from_proto(c.tags),
        },
        P::TerminateOrchestration(t) => ActionKind::TerminateOrchestration {
            instance_id: non_empty(t.instance_id, id, "terminateOrchestration.instanceId")?,
            reason: t.reason,
            recurse: t.recurse,
        },
        P::SendEntityMessage(m) => {
            let event = match m.entity_message_type {
                Some(M::EntityOperationSignaled(e)) => P2::EntityOperationSignaled(e),
                Some(M::EntityOperationCalled(e)) => P2::EntityOperationCalled(e),
                Some(M::EntityLockRequested(e)) => P2::EntityLockRequested(e),
                Some(M::EntityUnlockSent(e)) => P2::EntityUnlockSent(e),
                None => {
                    return Err(RpcError::bad(format!(
                        "action #{id}: sendEntityMessage has no message"
                    )));
                }
            };
            let event = kind_from_proto(event)?;
            check_entity_targets(id, &event)?;
            ActionKind::SendEntityMessage { event }
        }
        P::RewindOrchestration(r) => ActionKind::RewindOrchestration {
            new_history: events_from_proto(r.new_history)?,
        },
    };
    Ok(Action { id, kind })
}

/// Entity messages must name entities (`@name@key`): the target, or every id of a lock set.
fn check_entity_targets(id: i32, event: &EventKind) -> RpcResult<()> {
    let targets: Vec<Option<&str>> = match event {
        EventKind::EntityOperationSignaled {
            target_instance_id, ..
        }
        | EventKind::EntityOperationCalled {
            target_instance_id, ..
        }
        | EventKind::EntityUnlockSent {
            target_instance_id, ..
        } => vec![target_instance_id.as_deref()],
        EventKind::EntityLockRequested { lock_set, .. } if !lock_set.is_empty() => {
            lock_set.iter().map(|t| Some(t.as_str())).collect()
        }
        _ => vec![None],
    };
    match targets
        .into_iter()
        .find(|t| !t.is_some_and(EntityId::is_entity))
    {
        None => Ok(()),
        Some(t) => Err(RpcError::bad(format!(
            "action #{id}: sendEntityMessage targets {}, which is not an entity id (@name@key)",
            t.map_or("nothing".to_string(), |t| format!("'{t}'"))
        ))),
    }
}

fn non_empty(value: String, id: i32, what: &str) -> RpcResult<String> {
    if value.is_empty() {
        return Err(RpcError::bad(format!(
            "action #{id}: {what} must not be empty"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(id: i32, kind: P) -> proto::OrchestratorAction {
        proto::OrchestratorAction {
            id,
            orchestrator_action_type: Some(kind),
        }
    }

    #[test]
    fn actions_convert_with_their_ids() {
        let actions = turn_actions(vec![
            action(
                1,
                P::ScheduleTask(proto::ScheduleTaskAction {
                    name: "plus_one".into(),
                    input: Some("1".into()),
                    ..Default::default()
                }),
            ),
            action(
                2,
                P::CompleteOrchestration(proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Completed as i32,
                    result: Some("2".into()),
                    ..Default::default()
                }),
            ),
        ])
        .unwrap();
        assert_eq!(actions[0].id, 1);
        assert!(
            matches!(&actions[0].kind, ActionKind::ScheduleTask { name, .. } if name == "plus_one")
        );
        assert!(matches!(
            &actions[1].kind,
            ActionKind::CompleteOrchestration { orchestration_status: RuntimeStatus::Completed, result: Some(r), .. } if r == "2"
        ));
    }

    #[test]
    fn malformed_actions_are_refused() {
        let missing_type = proto::OrchestratorAction {
            id: 1,
            orchestrator_action_type: None,
        };
        assert!(turn_actions(vec![missing_type]).is_err());
        let timer = action(
            2,
            P::CreateTimer(proto::CreateTimerAction { fire_at: None }),
        );
        assert!(turn_actions(vec![timer]).is_err());
        let canceled = action(
            3,
            P::CompleteOrchestration(proto::CompleteOrchestrationAction {
                orchestration_status: proto::OrchestrationStatus::Canceled as i32,
                ..Default::default()
            }),
        );
        assert!(turn_actions(vec![canceled]).is_err());
    }

    #[test]
    fn entity_messages_must_target_entities() {
        let signal = |target: &str| {
            action(
                1,
                P::SendEntityMessage(proto::SendEntityMessageAction {
                    entity_message_type: Some(M::EntityOperationSignaled(
                        proto::EntityOperationSignaledEvent {
                            request_id: "r".into(),
                            operation: "add".into(),
                            target_instance_id: Some(target.into()),
                            ..Default::default()
                        },
                    )),
                }),
            )
        };
        assert!(turn_actions(vec![signal("@counter@a")]).is_ok());
        let refused = turn_actions(vec![signal("counter")]).unwrap_err();
        assert!(
            format!("{refused:?}").contains("not an entity id"),
            "{refused:?}"
        );
        let lock = |set: Vec<String>| {
            action(
                2,
                P::SendEntityMessage(proto::SendEntityMessageAction {
                    entity_message_type: Some(M::EntityLockRequested(
                        proto::EntityLockRequestedEvent {
                            critical_section_id: "cs".into(),
                            lock_set: set,
                            position: 0,
                            parent_instance_id: Some("o".into()),
                        },
                    )),
                }),
            )
        };
        assert!(turn_actions(vec![lock(vec!["@c@a".into(), "@c@b".into()])]).is_ok());
        assert!(turn_actions(vec![lock(vec![])]).is_err());
        assert!(turn_actions(vec![lock(vec!["@c@a".into(), "b".into()])]).is_err());
    }
}
