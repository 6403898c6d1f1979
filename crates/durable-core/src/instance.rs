//! What a store keeps about instances, and how they are created and queried.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    EventKind, HistoryEvent, OrchestrationInstance, ParentInstance, Tags, TraceContext,
};
use crate::failure::FailureDetails;
use crate::status::RuntimeStatus;

/// The state of one instance: the protocol's `OrchestrationState`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    pub instance_id: String,
    pub name: String,
    pub version: Option<String>,
    /// The current execution (a new one after continue-as-new, restart or rewind).
    pub execution_id: String,
    pub status: RuntimeStatus,
    pub input: Option<String>,
    pub output: Option<String>,
    pub custom_status: Option<String>,
    /// Boxed, like `parent`: rarely set, and the store keeps a state per instance in memory.
    pub failure: Option<Box<FailureDetails>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub scheduled_start_at: Option<DateTime<Utc>>,
    pub parent: Option<Box<ParentInstance>>,
    pub tags: Tags,
}

impl InstanceState {
    /// The output decoded as `T` (`null` when there is none).
    pub fn output_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.output.as_deref().unwrap_or("null"))
    }

    /// The custom status decoded as `T` (`null` when there is none).
    pub fn custom_status_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.custom_status.as_deref().unwrap_or("null"))
    }

    pub fn parent_instance_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .map(|p| p.orchestration_instance.instance_id.as_str())
    }
}

/// What to do when `create_instance` meets an existing instance with the same id.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IfExists {
    /// Refuse with `AlreadyExists`, whatever the existing status.
    #[default]
    Fail,
    /// Replace the existing instance if it is in one of these statuses, else `AlreadyExists`.
    ReplaceIf(Vec<RuntimeStatus>),
}

impl IfExists {
    /// Replace a finished (Completed, Failed or Terminated) instance; refuse a live one.
    pub fn replace_terminal() -> Self {
        IfExists::ReplaceIf(vec![
            RuntimeStatus::Completed,
            RuntimeStatus::Failed,
            RuntimeStatus::Terminated,
        ])
    }

    pub fn allows(&self, existing: RuntimeStatus) -> bool {
        match self {
            IfExists::Fail => false,
            IfExists::ReplaceIf(statuses) => statuses.contains(&existing),
        }
    }
}

/// A request to create an instance (a client start, a sub-orchestration or a restart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewInstance {
    pub instance_id: String,
    /// Minted by the caller: stores never invent ids.
    pub execution_id: String,
    pub name: String,
    pub version: Option<String>,
    pub input: Option<String>,
    /// Not dispatched before this time.
    pub scheduled_start_at: Option<DateTime<Utc>>,
    pub parent: Option<ParentInstance>,
    pub tags: Tags,
    pub trace_context: Option<TraceContext>,
    pub if_exists: IfExists,
}

impl NewInstance {
    pub fn new(name: impl Into<String>, instance_id: impl Into<String>) -> Self {
        NewInstance {
            instance_id: instance_id.into(),
            execution_id: crate::ids::new_execution_id(),
            name: name.into(),
            version: None,
            input: None,
            scheduled_start_at: None,
            parent: None,
            tags: Tags::new(),
            trace_context: None,
            if_exists: IfExists::Fail,
        }
    }

    /// The `ExecutionStarted` event that opens the instance's first execution.
    pub fn started_event(&self, now: DateTime<Utc>) -> HistoryEvent {
        HistoryEvent::unnumbered(
            now,
            EventKind::ExecutionStarted {
                name: self.name.clone(),
                version: self.version.clone(),
                input: self.input.clone(),
                orchestration_instance: OrchestrationInstance {
                    instance_id: self.instance_id.clone(),
                    execution_id: Some(self.execution_id.clone()),
                },
                parent_instance: self.parent.clone(),
                scheduled_start_timestamp: self.scheduled_start_at,
                parent_trace_context: self.trace_context.clone(),
                orchestration_span_id: None,
                tags: self.tags.clone(),
            },
        )
    }
}

/// Filters for listing instances. Every set filter must match (AND).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceQuery {
    /// Any of these statuses; empty means any.
    pub statuses: Vec<RuntimeStatus>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub instance_id_prefix: Option<String>,
    /// Page size; `None` means the store's default (100).
    pub page_size: Option<usize>,
    /// The cursor returned with the previous page.
    pub continuation_token: Option<String>,
    /// Include input and output (they can be large).
    pub fetch_payloads: bool,
    /// `Some(false)`: orchestrations only; `Some(true)`: entities (`@name@key`) only; `None`:
    /// both.
    pub entities: Option<bool>,
}

/// One page of results; `continuation_token` is `Some` only when more pages exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub continuation_token: Option<String>,
}

impl Page<InstanceState> {
    /// One page of a listing, from its first `size + 1` matches in listing order (the extra
    /// match only tells that more exist). Input and output are kept only with `payloads`.
    pub fn of_instances(mut items: Vec<InstanceState>, size: usize, payloads: bool) -> Self {
        let more = items.len() > size;
        items.truncate(size);
        if !payloads {
            for s in &mut items {
                s.input = None;
                s.output = None;
            }
        }
        let continuation_token = more
            .then(|| items.last())
            .flatten()
            .map(|s| encode_cursor(s.created_at, &s.instance_id));
        Page {
            items,
            continuation_token,
        }
    }
}

/// Which finished instances a purge removes. Only terminal instances are ever purged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PurgeFilter {
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Any of these terminal statuses; empty means all terminal statuses.
    pub statuses: Vec<RuntimeStatus>,
}

/// The keyset cursor used by stores for instance listings: `<created micros>|<instance id>`.
pub fn encode_cursor(created_at: DateTime<Utc>, instance_id: &str) -> String {
    format!("{}|{}", created_at.timestamp_micros(), instance_id)
}

pub fn decode_cursor(token: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = token.split_once('|')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let token = encode_cursor(at, "a|b");
        assert_eq!(decode_cursor(&token), Some((at, "a|b".to_string())));
        assert_eq!(decode_cursor("nonsense"), None);
    }

    #[test]
    fn replace_policy() {
        assert!(IfExists::replace_terminal().allows(RuntimeStatus::Failed));
        assert!(!IfExists::replace_terminal().allows(RuntimeStatus::Running));
        assert!(!IfExists::Fail.allows(RuntimeStatus::Completed));
    }
}
