//! Orchestrator actions: what one turn of an orchestration asks for.
//!
//! Mirrors the protocol's `OrchestratorAction` and `OrchestratorResponse`, so the Rust replay
//! engine's output and a gRPC worker's response are the same value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{HistoryEvent, OrchestrationInstance, Tags, TraceContext};
use crate::failure::FailureDetails;
use crate::status::OrchestrationStatus;

/// One action with the orchestrator's sequence number (`id`, from 1 per execution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: i32,
    #[serde(flatten)]
    pub kind: ActionKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "actionType",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ActionKind {
    ScheduleTask {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
    },
    CreateSubOrchestration {
        /// Empty means "derive one": `<parent>:<id as 4 lower-case hex digits>`.
        instance_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_trace_context: Option<TraceContext>,
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
    },
    CreateTimer {
        fire_at: DateTime<Utc>,
    },
    SendEvent {
        instance: OrchestrationInstance,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    CompleteOrchestration {
        orchestration_status: OrchestrationStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_version: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        carryover_events: Vec<HistoryEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_details: Option<FailureDetails>,
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
    },
    TerminateOrchestration {
        instance_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default)]
        recurse: bool,
    },
    /// Holds one of the entity message events: `EntityOperationSignaled`,
    /// `EntityOperationCalled`, `EntityLockRequested` or `EntityUnlockSent`.
    SendEntityMessage {
        event: crate::event::EventKind,
    },
    RewindOrchestration {
        new_history: Vec<HistoryEvent>,
    },
}

impl ActionKind {
    /// Whether the action starts a task that stays pending until a result or firing arrives
    /// (an activity, a timer, a sub-orchestration): what the pending-tasks limit counts.
    pub fn is_task(&self) -> bool {
        matches!(
            self,
            ActionKind::ScheduleTask { .. }
                | ActionKind::CreateTimer { .. }
                | ActionKind::CreateSubOrchestration { .. }
        )
    }

    /// A short description used in non-determinism errors, e.g. `activity 'F1'`.
    pub fn describe(&self) -> String {
        match self {
            ActionKind::ScheduleTask { name, .. } => format!("activity '{name}'"),
            ActionKind::CreateSubOrchestration { name, .. } => {
                format!("sub-orchestration '{name}'")
            }
            ActionKind::CreateTimer { .. } => "timer".to_string(),
            ActionKind::SendEvent { instance, name, .. } => {
                format!("send event '{name}' to '{}'", instance.instance_id)
            }
            ActionKind::CompleteOrchestration {
                orchestration_status,
                ..
            } => format!("complete orchestration ({orchestration_status})"),
            ActionKind::TerminateOrchestration { instance_id, .. } => {
                format!("terminate '{instance_id}'")
            }
            ActionKind::SendEntityMessage { event } => match event {
                crate::event::EventKind::EntityOperationSignaled {
                    operation,
                    target_instance_id,
                    ..
                } => format!(
                    "signal '{operation}' to {}",
                    target_instance_id.as_deref().unwrap_or("?")
                ),
                crate::event::EventKind::EntityOperationCalled {
                    operation,
                    target_instance_id,
                    ..
                } => format!(
                    "call '{operation}' on {}",
                    target_instance_id.as_deref().unwrap_or("?")
                ),
                crate::event::EventKind::EntityLockRequested { lock_set, .. } => {
                    format!("lock {}", lock_set.join(", "))
                }
                crate::event::EventKind::EntityUnlockSent {
                    target_instance_id, ..
                } => format!("unlock {}", target_instance_id.as_deref().unwrap_or("?")),
                other => other.type_name().to_string(),
            },
            ActionKind::RewindOrchestration { .. } => "rewind".to_string(),
        }
    }
}

/// The result of one orchestration turn: the protocol's `OrchestratorResponse` minus transport
/// fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnOutput {
    pub actions: Vec<Action>,
    /// `Some` overwrites the stored custom status; `None` keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_status: Option<String>,
    /// Timers this turn no longer waits for (dropped futures): their pending firings are removed.
    /// Not part of the protocol; gRPC workers leave it empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancelled_timers: Vec<i32>,
    /// Tasks the execution has pending after this turn (its new ones included), when the
    /// producer knows; the planner fails the instance past the pending-tasks limit.
    #[serde(skip)]
    pub open_tasks: Option<usize>,
}

impl TurnOutput {
    /// A turn that only ends the execution: one `CompleteOrchestration` action with id `id`.
    pub fn ending(
        id: i32,
        status: OrchestrationStatus,
        result: Option<String>,
        failure: Option<FailureDetails>,
    ) -> Self {
        TurnOutput {
            actions: vec![Action {
                id,
                kind: ActionKind::CompleteOrchestration {
                    orchestration_status: status,
                    result,
                    details: None,
                    new_version: None,
                    carryover_events: Vec::new(),
                    failure_details: failure,
                    tags: Tags::new(),
                },
            }],
            custom_status: None,
            cancelled_timers: Vec::new(),
            open_tasks: None,
        }
    }

    /// The completion action, if the turn ended the execution.
    pub fn completion(&self) -> Option<&ActionKind> {
        self.actions
            .iter()
            .map(|a| &a.kind)
            .find(|k| matches!(k, ActionKind::CompleteOrchestration { .. }))
    }
}
