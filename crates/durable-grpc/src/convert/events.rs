//! History events, both ways. One arm per member of the `HistoryEvent.eventType` oneof.

use durable::core::event::{EventKind, HistoryEvent};
use proto::history_event::EventType as P;

use super::*;

pub(crate) fn event_to_proto(e: &HistoryEvent) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id: e.event_id,
        timestamp: Some(timestamp(e.timestamp)),
        event_type: Some(kind_to_proto(&e.kind)),
    }
}

fn kind_to_proto(kind: &EventKind) -> P {
    match kind.clone() {
        EventKind::ExecutionStarted {
            name,
            version,
            input,
            orchestration_instance,
            parent_instance,
            scheduled_start_timestamp,
            parent_trace_context,
            orchestration_span_id,
            tags,
        } => P::ExecutionStarted(proto::ExecutionStartedEvent {
            name,
            version,
            input,
            orchestration_instance: Some(instance_to_proto(&orchestration_instance)),
            parent_instance: parent_instance.as_ref().map(parent_to_proto),
            scheduled_start_timestamp: scheduled_start_timestamp.map(timestamp),
            parent_trace_context: parent_trace_context.as_ref().map(trace_to_proto),
            orchestration_span_id,
            tags: tags_to_proto(&tags),
        }),
        EventKind::ExecutionCompleted {
            orchestration_status,
            result,
            failure_details,
        } => P::ExecutionCompleted(proto::ExecutionCompletedEvent {
            orchestration_status: status_to_proto(orchestration_status),
            result,
            failure_details: failure_details.as_ref().map(failure_to_proto),
        }),
        EventKind::ExecutionTerminated { input, recurse } => {
            P::ExecutionTerminated(proto::ExecutionTerminatedEvent { input, recurse })
        }
        EventKind::TaskScheduled {
            name,
            version,
            input,
            parent_trace_context,
            tags,
        } => P::TaskScheduled(proto::TaskScheduledEvent {
            name,
            version,
            input,
            parent_trace_context: parent_trace_context.as_ref().map(trace_to_proto),
            tags: tags_to_proto(&tags),
        }),
        EventKind::TaskCompleted {
            task_scheduled_id,
            result,
        } => P::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id,
            result,
        }),
        EventKind::TaskFailed {
            task_scheduled_id,
            failure_details,
        } => P::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id,
            failure_details: Some(failure_to_proto(&failure_details)),
        }),
        EventKind::SubOrchestrationInstanceCreated {
            instance_id,
            name,
            version,
            input,
            parent_trace_context,
            tags,
        } => P::SubOrchestrationInstanceCreated(proto::SubOrchestrationInstanceCreatedEvent {
            instance_id,
            name,
            version,
            input,
            parent_trace_context: parent_trace_context.as_ref().map(trace_to_proto),
            tags: tags_to_proto(&tags),
        }),
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id,
            result,
        } => P::SubOrchestrationInstanceCompleted(proto::SubOrchestrationInstanceCompletedEvent {
            task_scheduled_id,
            result,
        }),
        EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id,
            failure_details,
        } => P::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
            task_scheduled_id,
            failure_details: Some(failure_to_proto(&failure_details)),
        }),
        EventKind::TimerCreated { fire_at } => P::TimerCreated(proto::TimerCreatedEvent {
            fire_at: Some(timestamp(fire_at)),
        }),
        EventKind::TimerFired { fire_at, timer_id } => P::TimerFired(proto::TimerFiredEvent {
            fire_at: Some(timestamp(fire_at)),
            timer_id,
        }),
        EventKind::OrchestratorStarted => {
            P::OrchestratorStarted(proto::OrchestratorStartedEvent {})
        }
        EventKind::OrchestratorCompleted => {
            P::OrchestratorCompleted(proto::OrchestratorCompletedEvent {})
        }
        EventKind::EventSent {
            instance_id,
            name,
            input,
        } => P::EventSent(proto::EventSentEvent {
            instance_id,
            name,
            input,
        }),
        EventKind::EventRaised { name, input } => {
            P::EventRaised(proto::EventRaisedEvent { name, input })
        }
        EventKind::GenericEvent { data } => P::GenericEvent(proto::GenericEvent { data }),
        // Never produced by this engine (and fatal to the Python worker); kept for completeness.
        EventKind::HistoryState { .. } => P::HistoryState(proto::HistoryStateEvent {
            orchestration_state: None,
        }),
        EventKind::ContinueAsNew { input } => P::ContinueAsNew(proto::ContinueAsNewEvent { input }),
        EventKind::ExecutionSuspended { input } => {
            P::ExecutionSuspended(proto::ExecutionSuspendedEvent { input })
        }
        EventKind::ExecutionResumed { input } => {
            P::ExecutionResumed(proto::ExecutionResumedEvent { input })
        }
        EventKind::EntityOperationSignaled {
            request_id,
            operation,
            scheduled_time,
            input,
            target_instance_id,
        } => P::EntityOperationSignaled(proto::EntityOperationSignaledEvent {
            request_id,
            operation,
            scheduled_time: scheduled_time.map(timestamp),
            input,
            target_instance_id,
        }),
        EventKind::EntityOperationCalled {
            request_id,
            operation,
            scheduled_time,
            input,
            parent_instance_id,
            parent_execution_id,
            target_instance_id,
        } => P::EntityOperationCalled(proto::EntityOperationCalledEvent {
            request_id,
            operation,
            scheduled_time: scheduled_time.map(timestamp),
            input,
            parent_instance_id,
            parent_execution_id,
            target_instance_id,
        }),
        EventKind::EntityOperationCompleted { request_id, output } => {
            P::EntityOperationCompleted(proto::EntityOperationCompletedEvent { request_id, output })
        }
        EventKind::EntityOperationFailed {
            request_id,
            failure_details,
        } => P::EntityOperationFailed(proto::EntityOperationFailedEvent {
            request_id,
            failure_details: Some(failure_to_proto(&failure_details)),
        }),
        EventKind::EntityLockRequested {
            critical_section_id,
            lock_set,
            position,
            parent_instance_id,
        } => P::EntityLockRequested(proto::EntityLockRequestedEvent {
            critical_section_id,
            lock_set,
            position,
            parent_instance_id,
        }),
        EventKind::EntityLockGranted {
            critical_section_id,
        } => P::EntityLockGranted(proto::EntityLockGrantedEvent {
            critical_section_id,
        }),
        EventKind::EntityUnlockSent {
            critical_section_id,
            parent_instance_id,
            target_instance_id,
        } => P::EntityUnlockSent(proto::EntityUnlockSentEvent {
            critical_section_id,
            parent_instance_id,
            target_instance_id,
        }),
        EventKind::ExecutionRewound {
            reason,
            parent_execution_id,
            instance_id,
            parent_trace_context,
            name,
            version,
            input,
            parent_instance,
            tags,
        } => P::ExecutionRewound(proto::ExecutionRewoundEvent {
            reason,
            parent_execution_id,
            instance_id,
            parent_trace_context: parent_trace_context.as_ref().map(trace_to_proto),
            name,
            version,
            input,
            parent_instance: parent_instance.as_ref().map(parent_to_proto),
            tags: tags_to_proto(&tags),
        }),
    }
}

pub(crate) fn events_from_proto(events: Vec<proto::HistoryEvent>) -> RpcResult<Vec<HistoryEvent>> {
    events.into_iter().map(event_from_proto).collect()
}

/// An event sent back by a worker (carried-over events, a rewound history).
pub(crate) fn event_from_proto(e: proto::HistoryEvent) -> RpcResult<HistoryEvent> {
    let kind = e
        .event_type
        .ok_or_else(|| RpcError::bad("a history event has no eventType"))?;
    // Events a worker echoes were sent by this server with timestamps; absent means the epoch.
    let ts = match e.timestamp {
        Some(t) => datetime(&t)?,
        None => DateTime::UNIX_EPOCH,
    };
    Ok(HistoryEvent::new(e.event_id, ts, kind_from_proto(kind)?))
}

pub(crate) fn kind_from_proto(kind: P) -> RpcResult<EventKind> {
    let failure =
        |f: Option<proto::TaskFailureDetails>| f.map(failure_from_proto).unwrap_or_default();
    let required_time = |t: Option<prost_types::Timestamp>, what: &str| {
        t.as_ref()
            .map(datetime)
            .transpose()?
            .ok_or_else(|| RpcError::bad(format!("{what} is required")))
    };
    Ok(match kind {
        P::ExecutionStarted(e) => EventKind::ExecutionStarted {
            name: e.name,
            version: e.version,
            input: e.input,
            orchestration_instance: e
                .orchestration_instance
                .map(instance_from_proto)
                .unwrap_or_default(),
            parent_instance: e.parent_instance.map(parent_from_proto),
            scheduled_start_timestamp: opt_datetime(e.scheduled_start_timestamp.as_ref())?,
            parent_trace_context: e.parent_trace_context.map(trace_from_proto),
            orchestration_span_id: e.orchestration_span_id,
            tags: tags_from_proto(e.tags),
        },
        P::ExecutionCompleted(e) => EventKind::ExecutionCompleted {
            orchestration_status: status_from_proto(e.orchestration_status)?,
            result: e.result,
            failure_details: e.failure_details.map(failure_from_proto),
        },
        P::ExecutionTerminated(e) => EventKind::ExecutionTerminated {
            input: e.input,
            recurse: e.recurse,
        },
        P::TaskScheduled(e) => EventKind::TaskScheduled {
            name: e.name,
            version: e.version,
            input: e.input,
            parent_trace_context: e.parent_trace_context.map(trace_from_proto),
            tags: tags_from_proto(e.tags),
        },
        P::TaskCompleted(e) => EventKind::TaskCompleted {
            task_scheduled_id: e.task_scheduled_id,
            result: e.result,
        },
        P::TaskFailed(e) => EventKind::TaskFailed {
            task_scheduled_id: e.task_scheduled_id,
            failure_details: failure(e.failure_details),
        },
        P::SubOrchestrationInstanceCreated(e) => EventKind::SubOrchestrationInstanceCreated {
            instance_id: e.instance_id,
            name: e.name,
            version: e.version,
            input: e.input,
            parent_trace_context: e.parent_trace_context.map(trace_from_proto),
            tags: tags_from_proto(e.tags),
        },
        P::SubOrchestrationInstanceCompleted(e) => EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id: e.task_scheduled_id,
            result: e.result,
        },
        P::SubOrchestrationInstanceFailed(e) => EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id: e.task_scheduled_id,
            failure_details: failure(e.failure_details),
        },
        P::TimerCreated(e) => EventKind::TimerCreated {
            fire_at: required_time(e.fire_at, "timerCreated.fireAt")?,
        },
        P::TimerFired(e) => EventKind::TimerFired {
            fire_at: required_time(e.fire_at, "timerFired.fireAt")?,
            timer_id: e.timer_id,
        },
        P::OrchestratorStarted(_) => EventKind::OrchestratorStarted,
        P::OrchestratorCompleted(_) => EventKind::OrchestratorCompleted,
        P::EventSent(e) => EventKind::EventSent {
            instance_id: e.instance_id,
            name: e.name,
            input: e.input,
        },
        P::EventRaised(e) => EventKind::EventRaised {
            name: e.name,
            input: e.input,
        },
        P::GenericEvent(e) => EventKind::GenericEvent { data: e.data },
        P::HistoryState(_) => EventKind::HistoryState {
            orchestration_state: None,
        },
        P::ContinueAsNew(e) => EventKind::ContinueAsNew { input: e.input },
        P::ExecutionSuspended(e) => EventKind::ExecutionSuspended { input: e.input },
        P::ExecutionResumed(e) => EventKind::ExecutionResumed { input: e.input },
        P::EntityOperationSignaled(e) => EventKind::EntityOperationSignaled {
            request_id: e.request_id,
            operation: e.operation,
            scheduled_time: opt_datetime(e.scheduled_time.as_ref())?,
            input: e.input,
            target_instance_id: e.target_instance_id,
        },
        P::EntityOperationCalled(e) => EventKind::EntityOperationCalled {
            request_id: e.request_id,
            operation: e.operation,
            scheduled_time: opt_datetime(e.scheduled_time.as_ref())?,
            input: e.input,
            parent_instance_id: e.parent_instance_id,
            parent_execution_id: e.parent_execution_id,
            target_instance_id: e.target_instance_id,
        },
        P::EntityOperationCompleted(e) => EventKind::EntityOperationCompleted {
            request_id: e.request_id,
            output: e.output,
        },
        P::EntityOperationFailed(e) => EventKind::EntityOperationFailed {
            request_id: e.request_id,
            failure_details: failure(e.failure_details),
        },
        P::EntityLockRequested(e) => EventKind::EntityLockRequested {
            critical_section_id: e.critical_section_id,
            lock_set: e.lock_set,
            position: e.position,
            parent_instance_id: e.parent_instance_id,
        },
        P::EntityLockGranted(e) => EventKind::EntityLockGranted {
            critical_section_id: e.critical_section_id,
        },
        P::EntityUnlockSent(e) => EventKind::EntityUnlockSent {
            critical_section_id: e.critical_section_id,
            parent_instance_id: e.parent_instance_id,
            target_instance_id: e.target_instance_id,
        },
        P::ExecutionRewound(e) => EventKind::ExecutionRewound {
            reason: e.reason,
            parent_execution_id: e.parent_execution_id,
            instance_id: e.instance_id,
            parent_trace_context: e.parent_trace_context.map(trace_from_proto),
            name: e.name,
            version: e.version,
            input: e.input,
            parent_instance: e.parent_instance.map(parent_from_proto),
            tags: tags_from_proto(e.tags),
        },
    })
}

#[cfg(test)]
mod tests {
    use durable::core::event::{OrchestrationInstance, ParentInstance};

    use super::*;

    fn round_trip(kind: EventKind) {
        let ts = DateTime::from_timestamp(1_700_000_000, 5_000).unwrap();
        let event = HistoryEvent::new(7, ts, kind);
        assert_eq!(event_from_proto(event_to_proto(&event)).unwrap(), event);
    }

    #[test]
    fn events_survive_a_round_trip() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut tags = Tags::new();
        tags.insert("k".into(), "v".into());
        round_trip(EventKind::ExecutionStarted {
            name: "orch".into(),
            version: Some("1.0".into()),
            input: Some("1".into()),
            orchestration_instance: OrchestrationInstance {
                instance_id: "i".into(),
                execution_id: Some("e".into()),
            },
            parent_instance: Some(ParentInstance {
                task_scheduled_id: 3,
                name: Some("p".into()),
                version: None,
                orchestration_instance: OrchestrationInstance {
                    instance_id: "p1".into(),
                    execution_id: Some("pe".into()),
                },
            }),
            scheduled_start_timestamp: Some(t),
            parent_trace_context: Some(TraceContext {
                trace_parent: "00-abc".into(),
                span_id: String::new(),
                trace_state: None,
            }),
            orchestration_span_id: None,
            tags: tags.clone(),
        });
        round_trip(EventKind::TaskFailed {
            task_scheduled_id: 1,
            failure_details: FailureDetails::new("E", "m"),
        });
        round_trip(EventKind::TimerFired {
            fire_at: t,
            timer_id: 2,
        });
        round_trip(EventKind::OrchestratorStarted);
        round_trip(EventKind::EventRaised {
            name: "Go".into(),
            input: None,
        });
        round_trip(EventKind::ExecutionCompleted {
            orchestration_status: RuntimeStatus::ContinuedAsNew,
            result: Some("4".into()),
            failure_details: None,
        });
        round_trip(EventKind::EntityLockRequested {
            critical_section_id: "c".into(),
            lock_set: vec!["@a@b".into()],
            position: 0,
            parent_instance_id: Some("x".into()),
        });
        round_trip(EventKind::ExecutionRewound {
            reason: Some("why".into()),
            parent_execution_id: None,
            instance_id: Some("i".into()),
            parent_trace_context: None,
            name: None,
            version: None,
            input: None,
            parent_instance: None,
            tags,
        });
    }

    #[test]
    fn events_without_a_type_or_fire_time_are_refused() {
        let e = proto::HistoryEvent {
            event_id: 1,
            timestamp: None,
            event_type: None,
        };
        assert!(event_from_proto(e).is_err());
        let e = proto::HistoryEvent {
            event_id: 1,
            timestamp: None,
            event_type: Some(P::TimerCreated(proto::TimerCreatedEvent { fire_at: None })),
        };
        assert!(event_from_proto(e).is_err());
    }
}
