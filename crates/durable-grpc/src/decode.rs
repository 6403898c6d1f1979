//! The sidecar's message decoders as plain functions over raw bytes: protobuf decoding, then
//! the conversions into the engine's types that the RPC handlers run before touching the store.
//! The fuzz targets (`fuzz/`) and the `durable-fuzz` corpus test call them; whatever the bytes,
//! they answer a value or a status of the caller's fault, and never panic.

use prost::Message;
use serde_json::value::RawValue;
use tonic::Status;

use crate::convert::{
    event_from_proto, event_to_proto, failure_from_proto, opt_datetime, status_filter, turn_actions,
};
use crate::error::{RpcError, RpcResult};
use crate::hub::{Kind, parse_token};
use crate::proto;

/// The request messages [`request`] decodes, chosen by the first byte of its input.
pub const REQUEST_KINDS: &[&str] = &[
    "CreateInstanceRequest",
    "OrchestratorResponse",
    "ActivityResponse",
    "QueryInstancesRequest",
    "ListInstanceIdsRequest",
    "PurgeInstancesRequest",
    "TerminateRequest",
    "RaiseEventRequest",
];

fn decoded<M: Message + Default>(bytes: &[u8]) -> RpcResult<M> {
    M::decode(bytes).map_err(|e| RpcError::bad(format!("malformed message: {e}")))
}

/// Decodes `data[1..]` as the request kind `data[0]` picks (modulo [`REQUEST_KINDS`]) and runs
/// the conversions its RPC runs before the store.
pub fn request(data: &[u8]) -> Result<(), Status> {
    let Some((&pick, bytes)) = data.split_first() else {
        return Ok(());
    };
    convert_request(pick as usize % REQUEST_KINDS.len(), bytes).map_err(RpcError::status)
}

fn convert_request(kind: usize, bytes: &[u8]) -> RpcResult<()> {
    match kind {
        0 => {
            let r: proto::CreateInstanceRequest = decoded(bytes)?;
            opt_datetime(r.scheduled_start_timestamp.as_ref())?;
            if let Some(policy) = r.orchestration_id_reuse_policy {
                status_filter(&policy.replaceable_status)?;
            }
            json_payload(r.input)
        }
        1 => {
            let r: proto::OrchestratorResponse = decoded(bytes)?;
            parse_token(&r.completion_token, Kind::Orchestration)?;
            turn_actions(r.actions).map(drop)
        }
        2 => {
            let r: proto::ActivityResponse = decoded(bytes)?;
            parse_token(&r.completion_token, Kind::Activity)?;
            r.failure_details.map(failure_from_proto);
            Ok(())
        }
        3 => {
            let r: proto::QueryInstancesRequest = decoded(bytes)?;
            let q = r.query.unwrap_or_default();
            status_filter(&q.runtime_status)?;
            opt_datetime(q.created_time_from.as_ref())?;
            opt_datetime(q.created_time_to.as_ref()).map(drop)
        }
        4 => {
            let r: proto::ListInstanceIdsRequest = decoded(bytes)?;
            status_filter(&r.runtime_status)?;
            opt_datetime(r.completed_time_from.as_ref())?;
            opt_datetime(r.completed_time_to.as_ref()).map(drop)
        }
        5 => {
            let r: proto::PurgeInstancesRequest = decoded(bytes)?;
            if let Some(proto::purge_instances_request::Request::PurgeInstanceFilter(f)) = r.request
            {
                status_filter(&f.runtime_status)?;
                opt_datetime(f.created_time_from.as_ref())?;
                opt_datetime(f.created_time_to.as_ref())?;
            }
            Ok(())
        }
        6 => {
            let r: proto::TerminateRequest = decoded(bytes)?;
            json_payload(r.output)
        }
        _ => {
            let r: proto::RaiseEventRequest = decoded(bytes)?;
            json_payload(r.input)
        }
    }
}

fn json_payload(text: Option<String>) -> RpcResult<()> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(()),
        Some(t) => RawValue::from_string(t)
            .map(drop)
            .map_err(|e| RpcError::bad(format!("not valid JSON: {e}"))),
    }
}

/// Decodes a protocol `HistoryEvent` (as a worker's rewind sends it) into the engine's event.
/// An event that converts must survive the way back: engine -> protocol -> engine is exact.
pub fn history_event(data: &[u8]) -> Result<(), Status> {
    let decoded = decoded::<proto::HistoryEvent>(data).map_err(RpcError::status)?;
    let event = event_from_proto(decoded).map_err(RpcError::status)?;
    let again = event_from_proto(event_to_proto(&event)).map_err(RpcError::status)?;
    assert_eq!(
        again, event,
        "a history event changed on its way through the protocol"
    );
    Ok(())
}
