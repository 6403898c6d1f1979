//! Client RPCs on one instance: start, get, wait, raise, terminate, suspend, resume, restart,
//! rewind. They go through the engine's [`durable::Client`], so they validate and record exactly
//! what the Rust client and the HTTP API would.

use std::time::Duration;

use durable::core::ErrorCode;
use durable::core::ids::new_instance_id;
use durable::core::limits::MAX_INSTANCE_ID_BYTES;
use durable::{ClientError, IfExists, StartRequest};
use serde_json::value::RawValue;

use crate::convert::{instance_state, opt_datetime, status_filter, tags_from_proto};
use crate::error::{RpcError, RpcResult};
use crate::hub::Hub;
use crate::proto;

/// How long a wait RPC without a gRPC deadline blocks before answering DEADLINE_EXCEEDED.
const WAIT_WITHOUT_DEADLINE: Duration = Duration::from_secs(60);

/// An id over the limit names no instance: refused before the store is asked, as at a start.
pub(crate) fn check_id(id: &str) -> RpcResult<()> {
    if id.len() > MAX_INSTANCE_ID_BYTES {
        return Err(RpcError::Engine(
            ErrorCode::InvalidInstanceId,
            format!(
                "instance id is {} bytes; the limit is {MAX_INSTANCE_ID_BYTES} (MAX_INSTANCE_ID_BYTES)",
                id.len()
            ),
        ));
    }
    Ok(())
}

/// The SDKs send absent payloads as unset, but treat `""` as "none" too.
pub(crate) fn payload(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

pub(crate) async fn start(
    hub: &Hub,
    r: proto::CreateInstanceRequest,
) -> RpcResult<proto::CreateInstanceResponse> {
    let mut request = StartRequest::new(r.name);
    request.instance_id = Some(if r.instance_id.is_empty() {
        new_instance_id()
    } else {
        r.instance_id
    });
    request.input = payload(r.input);
    request.version = r.version;
    request.scheduled_start_at = opt_datetime(r.scheduled_start_timestamp.as_ref())?;
    request.tags = tags_from_proto(r.tags);
    request.trace_context = r.parent_trace_context.map(crate::convert::trace_from_proto);
    // Without a reuse policy an existing id is refused whatever its status (protocol rule).
    request.if_exists = match r.orchestration_id_reuse_policy {
        None => IfExists::Fail,
        Some(policy) => IfExists::ReplaceIf(status_filter(&policy.replaceable_status)?),
    };
    let instance_id = hub.client.start_with(request).await?;
    Ok(proto::CreateInstanceResponse { instance_id })
}

pub(crate) async fn get(
    hub: &Hub,
    r: proto::GetInstanceRequest,
) -> RpcResult<proto::GetInstanceResponse> {
    check_id(&r.instance_id)?;
    let state = hub.store.get_instance(&r.instance_id).await?;
    Ok(found(state, r.get_inputs_and_outputs))
}

fn found(state: Option<durable::InstanceState>, payloads: bool) -> proto::GetInstanceResponse {
    proto::GetInstanceResponse {
        exists: state.is_some(),
        orchestration_state: state.map(|s| instance_state(s, payloads)),
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    Started,
    Finished,
}

/// A long poll: blocks until the instance started (or finished), bounded by the call's
/// deadline. An unknown instance answers `exists = false` at once.
pub(crate) async fn wait(
    hub: &Hub,
    r: proto::GetInstanceRequest,
    until: Until,
    deadline: Option<Duration>,
) -> RpcResult<proto::GetInstanceResponse> {
    check_id(&r.instance_id)?;
    let timeout = deadline.unwrap_or(WAIT_WITHOUT_DEADLINE);
    let id = &r.instance_id;
    let waited = async {
        match until {
            Until::Started => hub.client.wait_for_start(id, timeout).await,
            Until::Finished => hub.client.wait_for_completion(id, timeout).await,
        }
    };
    let mut shutdown = hub.shutdown_signal();
    let outcome = tokio::select! {
        outcome = waited => outcome,
        _ = shutdown.wait_for(|stopping| *stopping) => return Err(RpcError::ShuttingDown),
    };
    match outcome {
        Ok(state) => Ok(found(Some(state), r.get_inputs_and_outputs)),
        Err(ClientError::NotFound(_)) => Ok(found(None, false)),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn raise(hub: &Hub, r: proto::RaiseEventRequest) -> RpcResult<()> {
    check_id(&r.instance_id)?;
    match hub
        .client
        .raise_event_json(&r.instance_id, &r.name, payload(r.input))
        .await
    {
        // A finished instance drops the event; the sender is not told (protocol rule).
        Ok(()) | Err(ClientError::InvalidState(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn terminate(hub: &Hub, r: proto::TerminateRequest) -> RpcResult<()> {
    check_id(&r.instance_id)?;
    // The output is JSON text already; RawValue keeps it byte for byte.
    let output = payload(r.output)
        .map(RawValue::from_string)
        .transpose()
        .map_err(|e| RpcError::bad(format!("the output is not valid JSON: {e}")))?;
    match hub
        .client
        .terminate(&r.instance_id, output, r.recursive)
        .await
    {
        // Terminating a finished instance does nothing.
        Ok(()) | Err(ClientError::InvalidState(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn suspend(hub: &Hub, r: proto::SuspendRequest) -> RpcResult<()> {
    check_id(&r.instance_id)?;
    Ok(hub
        .client
        .suspend(&r.instance_id, r.reason.as_deref())
        .await?)
}

/// Resuming an instance that is not suspended must not reach a Python worker (it would fail the
/// orchestration); the dispatcher drops such a resume, and a finished instance is left alone.
pub(crate) async fn resume(hub: &Hub, r: proto::ResumeRequest) -> RpcResult<()> {
    check_id(&r.instance_id)?;
    let state = hub
        .store
        .get_instance(&r.instance_id)
        .await?
        .ok_or_else(|| RpcError::from(ClientError::NotFound(r.instance_id.clone())))?;
    if state.status.is_terminal() {
        return Ok(());
    }
    Ok(hub
        .client
        .resume(&r.instance_id, r.reason.as_deref())
        .await?)
}

pub(crate) async fn restart(
    hub: &Hub,
    r: proto::RestartInstanceRequest,
) -> RpcResult<proto::RestartInstanceResponse> {
    check_id(&r.instance_id)?;
    let instance_id = hub
        .client
        .restart(&r.instance_id, r.restart_with_new_instance_id)
        .await?;
    Ok(proto::RestartInstanceResponse { instance_id })
}

/// Unknown: NOT_FOUND; not failed: FAILED_PRECONDITION (the store checks both atomically).
pub(crate) async fn rewind(hub: &Hub, r: proto::RewindInstanceRequest) -> RpcResult<()> {
    check_id(&r.instance_id)?;
    Ok(hub
        .client
        .rewind(&r.instance_id, r.reason.as_deref())
        .await?)
}
