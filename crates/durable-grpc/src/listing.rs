//! Client RPCs over many instances: query, list ids, purge, and streaming one history.

use chrono::{DateTime, Utc};
use durable::core::instance::decode_cursor;
use durable::{InstanceQuery, InstanceState, PurgeFilter, RuntimeStatus};
use prost::Message;

use crate::convert::{event_to_proto, instance_state, opt_datetime, status_filter};
use crate::error::{RpcError, RpcResult};
use crate::hub::Hub;
use crate::proto;

/// Largest page a query returns; "everything" is served in pages of this size.
const MAX_PAGE: usize = 1000;
const DEFAULT_ID_PAGE: usize = 100;
/// Events per history chunk (each chunk also stays under half the message limit).
const CHUNK_EVENTS: usize = 100;
/// Most instance ids one purge batch may name.
const MAX_PURGE_BATCH: usize = 500;

pub(crate) async fn query(
    hub: &Hub,
    r: proto::QueryInstancesRequest,
) -> RpcResult<proto::QueryInstancesResponse> {
    let q = r.query.unwrap_or_default();
    let page = usize::try_from(q.max_instance_count)
        .ok()
        .filter(|n| *n > 0)
        .map_or(MAX_PAGE, |n| n.min(MAX_PAGE));
    let token = q.continuation_token.filter(|t| !t.is_empty());
    if let Some(t) = &token
        && decode_cursor(t).is_none()
    {
        return Err(RpcError::bad(format!("malformed continuation token '{t}'")));
    }
    let query = InstanceQuery {
        statuses: status_filter(&q.runtime_status)?,
        created_from: opt_datetime(q.created_time_from.as_ref())?,
        created_to: opt_datetime(q.created_time_to.as_ref())?,
        name: None,
        instance_id_prefix: q.instance_id_prefix.filter(|p| !p.is_empty()),
        page_size: Some(page),
        continuation_token: token,
        fetch_payloads: q.fetch_inputs_and_outputs,
        entities: Some(false),
    };
    let page = hub.store.query_instances(&query).await?;
    let payloads = q.fetch_inputs_and_outputs;
    Ok(proto::QueryInstancesResponse {
        orchestration_state: page
            .items
            .into_iter()
            .map(|s| instance_state(s, payloads))
            .collect(),
        continuation_token: page.continuation_token,
    })
}

/// Ids of finished instances ordered by (completion time, id). The cursor is
/// `<completed RFC 3339>|<last id>`, returned only when another page exists.
///
/// The store has no index on completion time, so this reads the finished instances' rows (without
/// payloads) and sorts them here: fine for the sizes a task hub's clients page through, but
/// linear in the number of finished instances.
pub(crate) async fn list_ids(
    hub: &Hub,
    r: proto::ListInstanceIdsRequest,
) -> RpcResult<proto::ListInstanceIdsResponse> {
    let from = opt_datetime(r.completed_time_from.as_ref())?;
    let to = opt_datetime(r.completed_time_to.as_ref())?;
    let after = match r.last_instance_key.filter(|k| !k.is_empty()) {
        None => None,
        Some(key) => Some(parse_id_cursor(&key)?),
    };
    let page = usize::try_from(r.page_size)
        .ok()
        .filter(|n| *n > 0)
        .map_or(DEFAULT_ID_PAGE, |n| n.min(MAX_PAGE));
    let mut statuses = terminal(status_filter(&r.runtime_status)?);
    if statuses.is_empty() {
        if !r.runtime_status.is_empty() {
            return Ok(proto::ListInstanceIdsResponse::default());
        }
        statuses = terminal(RuntimeStatus::ALL.to_vec());
    }
    let mut done: Vec<(DateTime<Utc>, String)> = finished(hub, statuses)
        .await?
        .into_iter()
        .filter_map(|s| Some((s.completed_at?, s.instance_id)))
        .filter(|(at, _)| from.is_none_or(|f| *at >= f) && to.is_none_or(|t| *at < t))
        .filter(|key| after.as_ref().is_none_or(|a| key > a))
        .collect();
    done.sort();
    let more = done.len() > page;
    done.truncate(page);
    let last_instance_key = match done.last() {
        Some((at, id)) if more => Some(format!("{}|{id}", at.to_rfc3339())),
        _ => None,
    };
    Ok(proto::ListInstanceIdsResponse {
        instance_ids: done.into_iter().map(|(_, id)| id).collect(),
        last_instance_key,
    })
}

fn terminal(statuses: Vec<RuntimeStatus>) -> Vec<RuntimeStatus> {
    statuses.into_iter().filter(|s| s.is_terminal()).collect()
}

fn parse_id_cursor(key: &str) -> RpcResult<(DateTime<Utc>, String)> {
    let bad = || RpcError::bad(format!("malformed lastInstanceKey '{key}'"));
    let (at, id) = key.split_once('|').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    Ok((at.with_timezone(&Utc), id.to_string()))
}

async fn finished(hub: &Hub, statuses: Vec<RuntimeStatus>) -> RpcResult<Vec<InstanceState>> {
    let mut query = InstanceQuery {
        statuses,
        page_size: Some(MAX_PAGE),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let page = hub.store.query_instances(&query).await?;
        all.extend(page.items);
        match page.continuation_token {
            Some(token) => query.continuation_token = Some(token),
            None => return Ok(all),
        }
    }
}

pub(crate) async fn purge(
    hub: &Hub,
    r: proto::PurgeInstancesRequest,
) -> RpcResult<proto::PurgeInstancesResponse> {
    use proto::purge_instances_request::Request;
    let deleted = match r.request {
        Some(Request::InstanceId(id)) => hub.client.purge(&id, r.recursive).await?,
        Some(Request::PurgeInstanceFilter(f)) => {
            let statuses = terminal(status_filter(&f.runtime_status)?);
            if statuses.is_empty() && !f.runtime_status.is_empty() {
                0 // only unfinished statuses were named, and only finished instances are purged
            } else {
                let filter = PurgeFilter {
                    created_from: opt_datetime(f.created_time_from.as_ref())?,
                    created_to: opt_datetime(f.created_time_to.as_ref())?,
                    statuses,
                };
                hub.client.purge_by(&filter).await?
            }
        }
        Some(Request::InstanceBatch(batch)) => {
            if batch.instance_ids.len() > MAX_PURGE_BATCH {
                return Err(RpcError::bad(format!(
                    "a purge batch names at most {MAX_PURGE_BATCH} instances"
                )));
            }
            let mut deleted = 0;
            for id in &batch.instance_ids {
                deleted += hub.client.purge(id, r.recursive).await?;
            }
            deleted
        }
        None => {
            return Err(RpcError::bad(
                "a purge needs an instance id, a filter or an instance batch",
            ));
        }
    };
    Ok(proto::PurgeInstancesResponse {
        deleted_instance_count: i32::try_from(deleted).unwrap_or(i32::MAX),
        is_complete: Some(true),
    })
}

/// The current execution's history, in chunks. Only the current execution is kept, so asking for
/// another execution id is NOT_FOUND.
pub(crate) async fn history(
    hub: &Hub,
    r: proto::StreamInstanceHistoryRequest,
) -> RpcResult<Vec<proto::HistoryChunk>> {
    crate::instances::check_id(&r.instance_id)?;
    let state = hub
        .store
        .get_instance(&r.instance_id)
        .await?
        .ok_or_else(|| durable::ClientError::NotFound(r.instance_id.clone()))?;
    if let Some(execution) = r.execution_id.filter(|e| !e.is_empty())
        && execution != state.execution_id
    {
        return Err(durable::ClientError::NotFound(format!(
            "{} (execution '{execution}'; only the current execution's history is kept)",
            r.instance_id
        ))
        .into());
    }
    let budget = hub.options.max_message_bytes / 2;
    let mut chunks = Vec::new();
    let mut chunk = proto::HistoryChunk::default();
    let mut size = 0;
    for event in hub.store.read_history(&r.instance_id).await? {
        let event = event_to_proto(&event);
        let len = event.encoded_len();
        if !chunk.events.is_empty() && (chunk.events.len() == CHUNK_EVENTS || size + len > budget) {
            chunks.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += len;
        chunk.events.push(event);
    }
    if !chunk.events.is_empty() {
        chunks.push(chunk);
    }
    Ok(chunks)
}
