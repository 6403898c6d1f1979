//! Conversions between the protocol's messages and the engine's model. The engine's event and
//! action types mirror the protocol field for field, so most of this is mechanical; presence is
//! kept exactly (`Option` stays `Option`), because the SDKs test wrapper fields with `HasField`.

mod actions;
mod entities;
mod events;
mod state;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use durable::FailureDetails;
use durable::RuntimeStatus;
use durable::core::event::{OrchestrationInstance, ParentInstance, Tags, TraceContext};
use prost_types::value::Kind;

use crate::error::{RpcError, RpcResult};
use crate::proto;

pub(crate) use actions::turn_actions;
pub(crate) use entities::{entity_metadata, entity_outcome};
pub(crate) use events::{event_from_proto, event_to_proto, events_from_proto};
pub(crate) use state::{instance_state, status_filter};

pub(crate) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        // chrono reports leap seconds as nanos >= 1e9; protobuf does not allow that.
        nanos: t.timestamp_subsec_nanos().min(999_999_999) as i32,
    }
}

pub(crate) fn datetime(t: &prost_types::Timestamp) -> RpcResult<DateTime<Utc>> {
    let nanos = u32::try_from(t.nanos).unwrap_or(0).min(999_999_999);
    DateTime::from_timestamp(t.seconds, nanos)
        .ok_or_else(|| RpcError::bad(format!("timestamp out of range: {t:?}")))
}

pub(crate) fn opt_datetime(t: Option<&prost_types::Timestamp>) -> RpcResult<Option<DateTime<Utc>>> {
    t.map(datetime).transpose()
}

/// The protocol number of a status, exactly (`ContinuedAsNew` is 2): for completions and events.
pub(crate) fn status_to_proto(s: RuntimeStatus) -> i32 {
    let p = match s {
        RuntimeStatus::Running => proto::OrchestrationStatus::Running,
        RuntimeStatus::Completed => proto::OrchestrationStatus::Completed,
        RuntimeStatus::ContinuedAsNew => proto::OrchestrationStatus::ContinuedAsNew,
        RuntimeStatus::Failed => proto::OrchestrationStatus::Failed,
        RuntimeStatus::Terminated => proto::OrchestrationStatus::Terminated,
        RuntimeStatus::Pending => proto::OrchestrationStatus::Pending,
        RuntimeStatus::Suspended => proto::OrchestrationStatus::Suspended,
    };
    p as i32
}

/// The status an instance reports: the transient `ContinuedAsNew` reads as RUNNING (the SDKs
/// never expect it as an instance status).
pub(crate) fn runtime_status_to_proto(s: RuntimeStatus) -> i32 {
    match s {
        RuntimeStatus::ContinuedAsNew => status_to_proto(RuntimeStatus::Running),
        other => status_to_proto(other),
    }
}

pub(crate) fn status_from_proto(n: i32) -> RpcResult<RuntimeStatus> {
    use proto::OrchestrationStatus as P;
    match P::try_from(n) {
        Ok(P::Running) => Ok(RuntimeStatus::Running),
        Ok(P::Completed) => Ok(RuntimeStatus::Completed),
        Ok(P::ContinuedAsNew) => Ok(RuntimeStatus::ContinuedAsNew),
        Ok(P::Failed) => Ok(RuntimeStatus::Failed),
        Ok(P::Terminated) => Ok(RuntimeStatus::Terminated),
        Ok(P::Pending) => Ok(RuntimeStatus::Pending),
        Ok(P::Suspended) => Ok(RuntimeStatus::Suspended),
        Ok(P::Canceled) | Err(_) => Err(RpcError::bad(format!(
            "orchestration status {n} is not supported"
        ))),
    }
}

pub(crate) fn failure_to_proto(f: &FailureDetails) -> proto::TaskFailureDetails {
    proto::TaskFailureDetails {
        error_type: f.error_type.clone(),
        error_message: f.error_message.clone(),
        stack_trace: f.stack_trace.clone(),
        inner_failure: f
            .inner_failure
            .as_deref()
            .map(|inner| Box::new(failure_to_proto(inner))),
        is_non_retriable: f.is_non_retriable,
        properties: f
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

pub(crate) fn failure_from_proto(f: proto::TaskFailureDetails) -> FailureDetails {
    FailureDetails {
        error_type: f.error_type,
        error_message: f.error_message,
        stack_trace: f.stack_trace,
        inner_failure: f
            .inner_failure
            .map(|inner| Box::new(failure_from_proto(*inner))),
        is_non_retriable: f.is_non_retriable,
        properties: f
            .properties
            .into_iter()
            .map(|(k, v)| (k, value_to_json(v)))
            .collect(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn value_to_json(v: prost_types::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(b),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(n).map_or(J::Null, J::Number),
        Some(Kind::StringValue(s)) => J::String(s),
        Some(Kind::ListValue(list)) => {
            J::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => J::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, value_to_json(v)))
                .collect(),
        ),
    }
}

pub(crate) fn tags_to_proto(tags: &Tags) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(crate) fn tags_from_proto(tags: HashMap<String, String>) -> Tags {
    tags.into_iter().collect::<BTreeMap<_, _>>()
}

pub(crate) fn trace_to_proto(t: &TraceContext) -> proto::TraceContext {
    #[allow(deprecated)] // spanID is deprecated in the protocol but still carried
    proto::TraceContext {
        trace_parent: t.trace_parent.clone(),
        span_id: t.span_id.clone(),
        trace_state: t.trace_state.clone(),
    }
}

pub(crate) fn trace_from_proto(t: proto::TraceContext) -> TraceContext {
    #[allow(deprecated)]
    TraceContext {
        trace_parent: t.trace_parent,
        span_id: t.span_id,
        trace_state: t.trace_state,
    }
}

pub(crate) fn instance_to_proto(i: &OrchestrationInstance) -> proto::OrchestrationInstance {
    proto::OrchestrationInstance {
        instance_id: i.instance_id.clone(),
        execution_id: i.execution_id.clone(),
    }
}

pub(crate) fn instance_from_proto(i: proto::OrchestrationInstance) -> OrchestrationInstance {
    OrchestrationInstance {
        instance_id: i.instance_id,
        execution_id: i.execution_id,
    }
}

pub(crate) fn parent_to_proto(p: &ParentInstance) -> proto::ParentInstanceInfo {
    proto::ParentInstanceInfo {
        task_scheduled_id: p.task_scheduled_id,
        name: p.name.clone(),
        version: p.version.clone(),
        orchestration_instance: Some(instance_to_proto(&p.orchestration_instance)),
    }
}

pub(crate) fn parent_from_proto(p: proto::ParentInstanceInfo) -> ParentInstance {
    ParentInstance {
        task_scheduled_id: p.task_scheduled_id,
        name: p.name,
        version: p.version,
        orchestration_instance: p
            .orchestration_instance
            .map(instance_from_proto)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_stay_in_range() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(datetime(&timestamp(t)).unwrap(), t);
        let bad = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(datetime(&bad).is_err());
    }

    #[test]
    fn statuses_map_both_ways_and_continued_as_new_reads_as_running() {
        for s in RuntimeStatus::ALL {
            assert_eq!(status_from_proto(status_to_proto(s)).unwrap(), s);
        }
        assert_eq!(
            runtime_status_to_proto(RuntimeStatus::ContinuedAsNew),
            proto::OrchestrationStatus::Running as i32
        );
        assert!(status_from_proto(proto::OrchestrationStatus::Canceled as i32).is_err());
    }

    #[test]
    fn failure_details_pass_through_verbatim() {
        let mut f = FailureDetails::new("builtins.ValueError", "boom")
            .with_inner(FailureDetails::new("inner", "cause"));
        f.stack_trace = Some("trace".into());
        f.properties
            .insert("k".into(), serde_json::json!({"a": [1.5, true, null, "s"]}));
        assert_eq!(failure_from_proto(failure_to_proto(&f)), f);
    }
}
