//! The JSON bodies of successful answers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use durable::{FailureDetails, HistoryEvent, InstanceState, RuntimeStatus};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What `GET /instances/{id}` and `GET /instances` answer for one instance.
///
/// `input`, `output` and `customStatus` are JSON values as the orchestration produced them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The orchestration name.
    pub name: String,
    pub instance_id: String,
    /// Pending, Running, Completed, ContinuedAsNew, Failed, Terminated or Suspended.
    #[schema(value_type = String, example = "Running")]
    pub runtime_status: RuntimeStatus,
    /// Present unless `showInput=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Any JSON value (a string, a number, an object, ...).
    #[schema(value_type = Value)]
    pub input: Option<Box<RawValue>>,
    #[schema(value_type = Value)]
    pub custom_status: Box<RawValue>,
    /// The result; for a Failed instance the failure message (details in `failureDetails`).
    #[schema(value_type = Value)]
    pub output: Box<RawValue>,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
    /// Why a Failed instance failed: `errorType`, `errorMessage`, `stackTrace`, `innerFailure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub failure_details: Option<FailureDetails>,
    /// The current execution's history, with `showHistory=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Object>)]
    pub history_events: Option<Vec<HistoryEntry>>,
}

impl InstanceStatus {
    pub(crate) fn new(state: InstanceState, show_input: bool) -> Self {
        let output = match (&state.output, &state.failure) {
            (Some(text), _) => raw(text),
            (None, Some(failure)) if state.status == RuntimeStatus::Failed => {
                raw_of(&failure.to_string())
            }
            (None, _) => null(),
        };
        InstanceStatus {
            name: state.name,
            instance_id: state.instance_id,
            runtime_status: state.status,
            input: show_input.then(|| state.input.as_deref().map_or_else(null, raw)),
            custom_status: state.custom_status.as_deref().map_or_else(null, raw),
            output,
            created_time: state.created_at,
            last_updated_time: state.updated_at,
            failure_details: state.failure.map(|f| *f),
            history_events: None,
        }
    }

    pub(crate) fn with_history(mut self, history: Vec<HistoryEvent>, show_output: bool) -> Self {
        let entries = history
            .iter()
            .map(|e| HistoryEntry::new(e, show_output))
            .collect();
        self.history_events = Some(entries);
        self
    }
}

/// The fields of a history event that hold JSON payloads.
const PAYLOAD_FIELDS: [&str; 4] = ["input", "result", "data", "output"];

/// One history event in the engine's JSON form (`eventId`, `timestamp`, `eventType` and the
/// fields of that type), with payloads as JSON values; payloads only with
/// `showHistoryOutput=true`.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    #[serde(flatten)]
    fields: Map<String, Value>,
    #[serde(flatten)]
    payloads: BTreeMap<&'static str, Box<RawValue>>,
}

impl HistoryEntry {
    fn new(event: &HistoryEvent, show_output: bool) -> Self {
        let mut fields = match serde_json::to_value(event) {
            Ok(Value::Object(map)) => map,
            // Not reachable for the derived serialization; keep the type at least.
            _ => Map::from_iter([("eventType".into(), event.kind.type_name().into())]),
        };
        let mut payloads = BTreeMap::new();
        for key in PAYLOAD_FIELDS {
            let Some(value) = fields.remove(key) else {
                continue;
            };
            if show_output {
                let payload = match value {
                    Value::String(text) => raw(&text),
                    other => raw_of(&other),
                };
                payloads.insert(key, payload);
            }
        }
        HistoryEntry { fields, payloads }
    }
}

/// An entity's name and key, as Durable Functions writes an entity id in JSON.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct EntityKey {
    /// The entity name, in lower case.
    pub name: String,
    pub key: String,
}

/// What `GET /entities/{name}` answers for each entity (and `GET /entities/{name}/{key}` with
/// `showMetadata=true`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityStatus {
    pub entity_id: EntityKey,
    /// When an operation last ran.
    pub last_operation_time: DateTime<Utc>,
    /// The state as a JSON value; with `fetchState=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub state: Option<Box<RawValue>>,
    /// The orchestration instance holding the entity locked in a critical section.
    pub locked_by: Option<String>,
    /// Operations waiting for the lock to be released.
    pub backlog_queue_size: usize,
}

impl EntityStatus {
    pub(crate) fn new(entity: durable::EntityState, show_state: bool) -> Self {
        EntityStatus {
            entity_id: EntityKey {
                name: entity.name,
                key: entity.key,
            },
            last_operation_time: entity.last_modified,
            state: entity.state.as_deref().map(raw).filter(|_| show_state),
            locked_by: entity.lock_owner,
            backlog_queue_size: entity.backlog,
        }
    }
}

/// What a purge answers.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurgeResult {
    pub instances_deleted: u64,
}

/// What `GET /stats` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Every status with its number of orchestration instances (zero included), across the
    /// task hub. Entities are not in these counts.
    pub instances_by_status: BTreeMap<String, u64>,
    /// Durable entities in the task hub.
    pub entities: u64,
    /// Instances with work waiting to be claimed.
    pub orchestration_backlog: u64,
    /// Activity invocations waiting to run.
    pub activity_backlog: u64,
    /// Durable timers not yet due.
    pub pending_timers: u64,
    /// What this process has done since it started.
    pub process: ProcessCounters,
}

/// Monotonic counters of one process; they restart from zero with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessCounters {
    /// Orchestration turns committed.
    pub turns: u64,
    pub activities_completed: u64,
    pub activities_failed: u64,
}

/// What `/healthz` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// Stored JSON text as it is; text that is not JSON (written by a foreign worker) as a string.
pub(crate) fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).unwrap_or_else(|_| raw_of(text))
}

fn raw_of<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable::EventKind;

    #[test]
    fn history_payloads_are_values_and_optional() {
        let event = HistoryEvent::new(
            1,
            DateTime::from_timestamp(1, 0).unwrap(),
            EventKind::TaskCompleted {
                task_scheduled_id: 1,
                result: Some("{\"n\":1}".into()),
            },
        );
        let shown = serde_json::to_value(HistoryEntry::new(&event, true)).unwrap();
        assert_eq!(shown["eventType"], "TaskCompleted");
        assert_eq!(shown["result"], serde_json::json!({"n": 1}));
        let hidden = serde_json::to_value(HistoryEntry::new(&event, false)).unwrap();
        assert!(hidden.get("result").is_none());
        assert_eq!(hidden["taskScheduledId"], 1);
    }

    #[test]
    fn text_that_is_not_json_becomes_a_string() {
        assert_eq!(raw("not json").get(), "\"not json\"");
        assert_eq!(raw("[1, 2]").get(), "[1, 2]");
    }
}

/// One row of an instance's timeline (`GET /instances/{id}/timeline`): what `durable history`
/// and the dashboard show.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The event type, e.g. `TaskCompleted`.
    pub event: String,
    /// The call number the event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i32>,
    /// The orchestration, activity, timer or event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub time: chrono::DateTime<chrono::Utc>,
    /// For results: milliseconds since the task was scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The payload or failure message, shortened to 200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    pub failed: bool,
}

impl From<durable::core::timeline::TimelineRow> for TimelineEntry {
    fn from(r: durable::core::timeline::TimelineRow) -> Self {
        TimelineEntry {
            event: r.event,
            task_id: r.task_id,
            name: r.name,
            time: r.time,
            duration_ms: r.duration_ms,
            result: r.result,
            failed: r.failed,
        }
    }
}
