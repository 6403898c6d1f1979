//! Entities: a worker's `EntityBatchResult` into the engine's [`BatchOutcome`], and entity
//! records into the protocol's `EntityMetadata`.

use durable::core::ErrorCode;
use durable::core::entity::{Batch, BatchOutcome, EntityId, EntitySchedule};
use durable::core::event::{EventKind, HistoryEvent};
use durable::core::ids::new_instance_id;
use durable::core::instance::{InstanceState, NewInstance};
use durable::core::limits::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_NAME_BYTES, check_json};
use durable::core::work::NewMessage;
use proto::operation_action::OperationActionType as A;
use proto::operation_result::ResultType as R;

use super::*;

/// Checks a batch result against its batch: one result per operation, a state that is JSON
/// within the payload limit, actions with their required fields.
pub(crate) fn entity_outcome(
    r: proto::EntityBatchResult,
    batch: &Batch,
    now: DateTime<Utc>,
) -> RpcResult<BatchOutcome> {
    if let Some(f) = r.failure_details {
        return Err(RpcError::bad(format!(
            "the worker could not run the batch ({}: {})",
            f.error_type, f.error_message
        )));
    }
    if r.results.len() != batch.operations.len() {
        return Err(RpcError::bad(format!(
            "the batch of '{}' has {} operations but the result has {} results",
            batch.id,
            batch.operations.len(),
            r.results.len()
        )));
    }
    let results = r
        .results
        .into_iter()
        .enumerate()
        .map(|(i, result)| match result.result_type {
            Some(R::Success(s)) => Ok(Ok(s.result.filter(|v| !v.is_empty()))),
            Some(R::Failure(f)) => Ok(Err(f
                .failure_details
                .map(failure_from_proto)
                .unwrap_or_else(|| {
                    FailureDetails::new("EntityOperationFailed", "the operation failed")
                }))),
            None => Err(RpcError::bad(format!(
                "result #{i} has neither success nor failure"
            ))),
        })
        .collect::<RpcResult<Vec<_>>>()?;
    let state = r.entity_state;
    if let Some(text) = &state {
        check_payload("entityState", text)?;
    }
    let mut outcome = BatchOutcome {
        results,
        state,
        ..Default::default()
    };
    for (i, action) in r.actions.into_iter().enumerate() {
        match action.operation_action_type {
            Some(A::SendSignal(s)) => outcome.signals.push(signal(i, s, now)?),
            Some(A::StartNewOrchestration(s)) => outcome.starts.push(start(i, s)?),
            None => return Err(RpcError::bad(format!("action #{i} has no action type"))),
        }
    }
    Ok(outcome)
}

fn check_payload(what: &str, text: &str) -> RpcResult<()> {
    if text.len() > DEFAULT_MAX_PAYLOAD_BYTES {
        return Err(RpcError::Engine(
            ErrorCode::PayloadTooLarge,
            format!(
                "{what} is {} bytes, over the {DEFAULT_MAX_PAYLOAD_BYTES}-byte payload limit",
                text.len()
            ),
        ));
    }
    serde_json::from_str::<&serde_json::value::RawValue>(text)
        .map_err(|e| e.to_string())
        .and_then(|_| check_json(text))
        .map_err(|e| RpcError::bad(format!("{what} is not valid JSON: {e}")))
}

fn name(i: usize, value: String, what: &str) -> RpcResult<String> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(RpcError::bad(format!(
            "action #{i}: {what} must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(value)
}

/// A signal an operation sent: a new request with its own id, delivered at its scheduled time.
fn signal(i: usize, s: proto::SendSignalAction, now: DateTime<Utc>) -> RpcResult<NewMessage> {
    let target = EntityId::parse(&s.instance_id).ok_or_else(|| {
        RpcError::bad(format!(
            "action #{i}: sendSignal.instanceId '{}' is not an entity id (@name@key)",
            s.instance_id
        ))
    })?;
    if let Some(input) = &s.input {
        check_payload(&format!("action #{i}: the signal's input"), input)?;
    }
    let at = opt_datetime(s.scheduled_time.as_ref())?;
    let target = target.to_string();
    let kind = EventKind::EntityOperationSignaled {
        request_id: uuid::Uuid::new_v4().to_string(),
        operation: name(i, s.name, "sendSignal.name")?,
        scheduled_time: at,
        input: s.input,
        target_instance_id: Some(target.clone()),
    };
    Ok(NewMessage {
        instance_id: target,
        execution_id: None,
        event: HistoryEvent::unnumbered(now, kind),
        visible_at: at,
    })
}

fn start(i: usize, s: proto::StartNewOrchestrationAction) -> RpcResult<NewInstance> {
    let id = if s.instance_id.is_empty() {
        new_instance_id()
    } else {
        s.instance_id
    };
    durable::core::ids::validate_instance_id(&id)
        .map_err(|e| RpcError::bad(format!("action #{i}: startNewOrchestration: {e}")))?;
    if let Some(input) = &s.input {
        check_payload(&format!("action #{i}: the orchestration's input"), input)?;
    }
    let mut new = NewInstance::new(name(i, s.name, "startNewOrchestration.name")?, id);
    new.version = s.version;
    new.input = s.input;
    new.scheduled_start_at = opt_datetime(s.scheduled_time.as_ref())?;
    Ok(new)
}

/// An entity's record as `EntityMetadata`: `lockedBy` is the orchestration holding the lock,
/// the backlog the operations waiting for it; the state only when asked for.
pub(crate) fn entity_metadata(s: &InstanceState, include_state: bool) -> proto::EntityMetadata {
    let schedule = EntitySchedule::from_json(s.input.as_deref());
    proto::EntityMetadata {
        instance_id: s.instance_id.clone(),
        last_modified_time: Some(timestamp(s.updated_at)),
        backlog_queue_size: i32::try_from(schedule.queue.len()).unwrap_or(i32::MAX),
        locked_by: schedule.lock.map(|l| l.owner),
        serialized_state: if include_state {
            s.custom_status.clone()
        } else {
            None
        },
    }
}
