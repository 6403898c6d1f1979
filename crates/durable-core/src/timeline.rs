//! A readable timeline of a history: one row per meaningful event, with the name of the task it
//! concerns, how long the task took and its result. The CLI and the dashboard both show this.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, HistoryEvent};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineRow {
    /// The event type, e.g. `TaskCompleted`.
    pub event: String,
    /// The action id the event belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i32>,
    /// The orchestration, activity, timer or event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub time: DateTime<Utc>,
    /// For results: milliseconds since the task was scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The payload or failure message, shortened to at most 200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Whether the row reports a failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

const MAX_RESULT: usize = 200;

fn short(text: &str) -> String {
    if text.chars().count() <= MAX_RESULT {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_RESULT - 1).collect();
    format!("{cut}…")
}

/// Builds the timeline. Turn bookkeeping (`OrchestratorStarted`, `OrchestratorCompleted`) is left
/// out; everything else gets a row.
pub fn timeline(history: &[HistoryEvent]) -> Vec<TimelineRow> {
    let mut scheduled: HashMap<i32, (String, DateTime<Utc>)> = HashMap::new();
    let mut rows = Vec::new();
    for event in history {
        let mut row = TimelineRow {
            event: event.kind.type_name().to_string(),
            task_id: (event.event_id >= 0).then_some(event.event_id),
            name: event.kind.name().map(str::to_string),
            time: event.timestamp,
            duration_ms: None,
            result: None,
            failed: false,
        };
        match &event.kind {
            EventKind::OrchestratorStarted | EventKind::OrchestratorCompleted => continue,
            EventKind::TaskScheduled { name, input, .. }
            | EventKind::SubOrchestrationInstanceCreated { name, input, .. } => {
                scheduled.insert(event.event_id, (name.clone(), event.timestamp));
                row.result = input.as_deref().map(short);
            }
            EventKind::TimerCreated { fire_at } => {
                scheduled.insert(event.event_id, ("timer".into(), event.timestamp));
                row.name = Some("timer".into());
                row.result = Some(format!("fires at {}", fire_at.to_rfc3339()));
            }
            EventKind::ExecutionStarted { input, .. } | EventKind::EventRaised { input, .. } => {
                row.result = input.as_deref().map(short);
            }
            EventKind::ExecutionCompleted {
                orchestration_status,
                result,
                failure_details,
            } => {
                row.name = Some(orchestration_status.to_string());
                row.failed = failure_details.is_some();
                row.result = failure_details
                    .as_ref()
                    .map(|f| short(&f.error_message))
                    .or_else(|| result.as_deref().map(short));
            }
            EventKind::ExecutionTerminated { input, .. } => {
                row.result = input.as_deref().map(short);
            }
            _ => {}
        }
        if let Some(id) = event.kind.completes_task() {
            row.task_id = Some(id);
            if let Some((name, at)) = scheduled.get(&id) {
                row.name = Some(name.clone());
                row.duration_ms = Some((event.timestamp - *at).num_milliseconds());
            }
            match &event.kind {
                EventKind::TaskCompleted { result, .. }
                | EventKind::SubOrchestrationInstanceCompleted { result, .. } => {
                    row.result = result.as_deref().map(short);
                }
                EventKind::TaskFailed {
                    failure_details, ..
                }
                | EventKind::SubOrchestrationInstanceFailed {
                    failure_details, ..
                } => {
                    row.failed = true;
                    row.result = Some(short(&failure_details.error_message));
                }
                _ => {}
            }
        }
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureDetails;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn results_carry_names_and_durations() {
        let history = vec![
            HistoryEvent::unnumbered(at(0), EventKind::OrchestratorStarted),
            HistoryEvent::new(
                1,
                at(1),
                EventKind::TaskScheduled {
                    name: "F1".into(),
                    version: None,
                    input: Some("\"x\"".into()),
                    parent_trace_context: None,
                    tags: Default::default(),
                },
            ),
            HistoryEvent::unnumbered(
                at(251),
                EventKind::TaskFailed {
                    task_scheduled_id: 1,
                    failure_details: FailureDetails::new("E", "boom"),
                },
            ),
        ];
        let rows = timeline(&history);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].event, "TaskFailed");
        assert_eq!(rows[1].name.as_deref(), Some("F1"));
        assert_eq!(rows[1].duration_ms, Some(250));
        assert_eq!(rows[1].result.as_deref(), Some("boom"));
        assert!(rows[1].failed);
    }

    #[test]
    fn long_results_are_shortened() {
        assert_eq!(short(&"a".repeat(500)).chars().count(), MAX_RESULT);
        assert_eq!(short("ok"), "ok");
    }
}
