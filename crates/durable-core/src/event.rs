//! The history event model.
//!
//! One variant per member of the sidecar protocol's `HistoryEvent.eventType` oneof, with the same
//! fields, so the gRPC front end maps it 1:1. Payloads (`input`, `result`, `data`, ...) are JSON
//! text exactly as the protocol carries them: `None` means "absent", not "null".

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::failure::FailureDetails;
use crate::status::OrchestrationStatus;

/// Tags are free-form string pairs carried with starts and tasks.
pub type Tags = BTreeMap<String, String>;

/// One entry of an execution's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// The sequence number of the action that produced this event, or -1 where none did.
    pub event_id: i32,
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl HistoryEvent {
    pub fn new(event_id: i32, timestamp: DateTime<Utc>, kind: EventKind) -> Self {
        HistoryEvent {
            event_id,
            timestamp,
            kind,
        }
    }

    /// An event that confirms no action (`eventId` -1).
    pub fn unnumbered(timestamp: DateTime<Utc>, kind: EventKind) -> Self {
        Self::new(-1, timestamp, kind)
    }
}

/// Identifies one execution of an instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestrationInstance {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// The parent of a sub-orchestration, recorded in its `ExecutionStarted`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentInstance {
    /// The parent's action id that created this child.
    pub task_scheduled_id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub orchestration_instance: OrchestrationInstance,
}

/// W3C trace context (`traceparent` / `tracestate`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    pub trace_parent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<String>,
}

/// The payload of a history event. Field names follow the protocol (camelCase on the wire).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "eventType",
    rename_all = "PascalCase",
    rename_all_fields = "camelCase"
)]
pub enum EventKind {
    ExecutionStarted {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        orchestration_instance: OrchestrationInstance,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_instance: Option<ParentInstance>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_start_timestamp: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        orchestration_span_id: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
    ExecutionCompleted {
        orchestration_status: OrchestrationStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_details: Option<FailureDetails>,
    },
    ExecutionTerminated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default)]
        recurse: bool,
    },
    TaskScheduled {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
    TaskCompleted {
        task_scheduled_id: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    TaskFailed {
        task_scheduled_id: i32,
        failure_details: FailureDetails,
    },
    SubOrchestrationInstanceCreated {
        instance_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
    SubOrchestrationInstanceCompleted {
        task_scheduled_id: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    SubOrchestrationInstanceFailed {
        task_scheduled_id: i32,
        failure_details: FailureDetails,
    },
    TimerCreated {
        fire_at: DateTime<Utc>,
    },
    TimerFired {
        fire_at: DateTime<Utc>,
        timer_id: i32,
    },
    OrchestratorStarted,
    OrchestratorCompleted,
    EventSent {
        instance_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    EventRaised {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    GenericEvent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    /// Part of the protocol for completeness; never produced or sent by this engine.
    HistoryState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        orchestration_state: Option<serde_json::Value>,
    },
    /// Part of the protocol for completeness; continue-as-new is a fresh execution instead.
    ContinueAsNew {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    ExecutionSuspended {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    ExecutionResumed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    EntityOperationSignaled {
        request_id: String,
        operation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_instance_id: Option<String>,
    },
    EntityOperationCalled {
        request_id: String,
        operation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_instance_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_execution_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_instance_id: Option<String>,
    },
    EntityOperationCompleted {
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    EntityOperationFailed {
        request_id: String,
        failure_details: FailureDetails,
    },
    EntityLockRequested {
        critical_section_id: String,
        lock_set: Vec<String>,
        #[serde(default)]
        position: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_instance_id: Option<String>,
    },
    EntityLockGranted {
        critical_section_id: String,
    },
    EntityUnlockSent {
        critical_section_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_instance_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_instance_id: Option<String>,
    },
    ExecutionRewound {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_execution_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_instance: Option<ParentInstance>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Tags,
    },
}

impl EventKind {
    /// The protocol's name for this event type (PascalCase, as in the JSON `eventType`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ExecutionStarted { .. } => "ExecutionStarted",
            EventKind::ExecutionCompleted { .. } => "ExecutionCompleted",
            EventKind::ExecutionTerminated { .. } => "ExecutionTerminated",
            EventKind::TaskScheduled { .. } => "TaskScheduled",
            EventKind::TaskCompleted { .. } => "TaskCompleted",
            EventKind::TaskFailed { .. } => "TaskFailed",
            EventKind::SubOrchestrationInstanceCreated { .. } => "SubOrchestrationInstanceCreated",
            EventKind::SubOrchestrationInstanceCompleted { .. } => {
                "SubOrchestrationInstanceCompleted"
            }
            EventKind::SubOrchestrationInstanceFailed { .. } => "SubOrchestrationInstanceFailed",
            EventKind::TimerCreated { .. } => "TimerCreated",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::OrchestratorStarted => "OrchestratorStarted",
            EventKind::OrchestratorCompleted => "OrchestratorCompleted",
            EventKind::EventSent { .. } => "EventSent",
            EventKind::EventRaised { .. } => "EventRaised",
            EventKind::GenericEvent { .. } => "GenericEvent",
            EventKind::HistoryState { .. } => "HistoryState",
            EventKind::ContinueAsNew { .. } => "ContinueAsNew",
            EventKind::ExecutionSuspended { .. } => "ExecutionSuspended",
            EventKind::ExecutionResumed { .. } => "ExecutionResumed",
            EventKind::EntityOperationSignaled { .. } => "EntityOperationSignaled",
            EventKind::EntityOperationCalled { .. } => "EntityOperationCalled",
            EventKind::EntityOperationCompleted { .. } => "EntityOperationCompleted",
            EventKind::EntityOperationFailed { .. } => "EntityOperationFailed",
            EventKind::EntityLockRequested { .. } => "EntityLockRequested",
            EventKind::EntityLockGranted { .. } => "EntityLockGranted",
            EventKind::EntityUnlockSent { .. } => "EntityUnlockSent",
            EventKind::ExecutionRewound { .. } => "ExecutionRewound",
        }
    }

    /// For completion events: the id of the action they complete.
    pub fn completes_task(&self) -> Option<i32> {
        match self {
            EventKind::TaskCompleted {
                task_scheduled_id, ..
            }
            | EventKind::TaskFailed {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            } => Some(*task_scheduled_id),
            EventKind::TimerFired { timer_id, .. } => Some(*timer_id),
            _ => None,
        }
    }

    /// The name an event carries, where it has one (activity, orchestration, event name).
    pub fn name(&self) -> Option<&str> {
        match self {
            EventKind::ExecutionStarted { name, .. }
            | EventKind::TaskScheduled { name, .. }
            | EventKind::SubOrchestrationInstanceCreated { name, .. }
            | EventKind::EventSent { name, .. }
            | EventKind::EventRaised { name, .. } => Some(name),
            EventKind::EntityOperationSignaled { operation, .. }
            | EventKind::EntityOperationCalled { operation, .. } => Some(operation),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_flat_and_camel_case() {
        let ts = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ev = HistoryEvent::new(
            3,
            ts,
            EventKind::TaskScheduled {
                name: "F1".into(),
                version: None,
                input: Some("\"x\"".into()),
                parent_trace_context: None,
                tags: Tags::new(),
            },
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["eventId"], 3);
        assert_eq!(json["eventType"], "TaskScheduled");
        assert_eq!(json["name"], "F1");
        assert_eq!(json["input"], "\"x\"");
        assert!(json.get("version").is_none());
        let back: HistoryEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn unit_variants_round_trip() {
        let ts = DateTime::from_timestamp(1, 0).unwrap();
        let ev = HistoryEvent::unnumbered(ts, EventKind::OrchestratorStarted);
        let text = serde_json::to_string(&ev).unwrap();
        assert!(
            text.contains("\"eventType\":\"OrchestratorStarted\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<HistoryEvent>(&text).unwrap(), ev);
    }

    #[test]
    fn completion_ids() {
        let k = EventKind::TimerFired {
            fire_at: DateTime::from_timestamp(1, 0).unwrap(),
            timer_id: 7,
        };
        assert_eq!(k.completes_task(), Some(7));
        assert_eq!(EventKind::OrchestratorStarted.completes_task(), None);
    }
}
